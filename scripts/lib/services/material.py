"""One-time material, generated when missing and then kept: a CA and the internal registry's
server certificate, the token server's signing certificate, passwords and their htpasswd files."""

from __future__ import annotations

import datetime as dt
import filecmp
import ipaddress
import secrets
import shutil
import subprocess
from pathlib import Path
from typing import Any

from .files import non_empty, replace_file
from .layout import Layout, ServicesError

INTERNAL_USER = "mirror"
TOKEN_USER = "alice"
GIT_USER = "mirror"
CHARTS_USER = "charts-reader"


def _require_cryptography() -> None:
    # Imported where used: only generating material needs it, `status` and `stop` do not.
    try:
        import cryptography  # noqa: F401
    except ImportError as exc:
        raise ServicesError(
            "the python package cryptography is missing; run scripts/setup (scripts/services prefers <repo>/.venv)"
        ) from exc


def _key_usage(*allowed: str) -> Any:
    from cryptography import x509

    names = (
        "digital_signature",
        "content_commitment",
        "key_encipherment",
        "data_encipherment",
        "key_agreement",
        "key_cert_sign",
        "crl_sign",
        "encipher_only",
        "decipher_only",
    )
    return x509.KeyUsage(**{name: name in allowed for name in names})


def _certificate(subject: Any, issuer: Any, public_key: Any, signing_key: Any, days: int, extensions: list) -> bytes:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization

    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
    )
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    certificate = builder.sign(signing_key, hashes.SHA256())
    return certificate.public_bytes(serialization.Encoding.PEM)


def _private_pem(key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _name(**attributes: str) -> Any:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    oids = {"common_name": NameOID.COMMON_NAME, "organization": NameOID.ORGANIZATION_NAME}
    return x509.Name([x509.NameAttribute(oids[key], value) for key, value in attributes.items()])


def make_ca(layout: Layout) -> None:
    _require_cryptography()
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID

    ca = layout.dir / "ca"
    ca.mkdir(parents=True, exist_ok=True)
    if not (non_empty(ca / "ca.pem") and non_empty(ca / "ca.key")):
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = _name(common_name="mirror test CA", organization="mirror tests")
        pem = _certificate(
            name,
            name,
            key.public_key(),
            key,
            3650,
            [
                (x509.BasicConstraints(ca=True, path_length=0), True),
                (_key_usage("key_cert_sign", "crl_sign"), True),
                (x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False),
            ],
        )
        replace_file(ca / "ca.key", _private_pem(key), mode=0o600)
        replace_file(ca / "ca.pem", pem)
        # A new CA invalidates the server certificate.
        (ca / "server.pem").unlink(missing_ok=True)
        (ca / "server.key").unlink(missing_ok=True)
    if not (non_empty(ca / "server.pem") and non_empty(ca / "server.key")):
        from cryptography.hazmat.primitives import serialization

        ca_key = serialization.load_pem_private_key((ca / "ca.key").read_bytes(), password=None)
        ca_cert = x509.load_pem_x509_certificate((ca / "ca.pem").read_bytes())
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = _certificate(
            _name(common_name="localhost"),
            ca_cert.subject,
            key.public_key(),
            ca_key,
            825,
            [
                (x509.BasicConstraints(ca=False, path_length=None), True),
                (_key_usage("digital_signature", "key_encipherment"), True),
                (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False),
                (
                    x509.SubjectAlternativeName(
                        [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                    ),
                    False,
                ),
                (x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False),
                (x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False),
            ],
        )
        replace_file(ca / "server.key", _private_pem(key), mode=0o600)
        replace_file(ca / "server.pem", pem)
    # skopeo/containers-image --cert-dir: *.crt are CAs (a *.cert without *.key is an error).
    certs = ca / "certs.d"
    certs.mkdir(exist_ok=True)
    if not (certs / "ca.crt").exists() or not filecmp.cmp(ca / "ca.pem", certs / "ca.crt", shallow=False):
        replace_file(certs / "ca.crt", (ca / "ca.pem").read_bytes())


def make_token_signing(layout: Layout) -> None:
    token = layout.dir / "token"
    token.mkdir(parents=True, exist_ok=True)
    if not (non_empty(token / "signing.pem") and non_empty(token / "signing.key")):
        _require_cryptography()
        from cryptography import x509
        from cryptography.hazmat.primitives.asymmetric import ec

        key = ec.generate_private_key(ec.SECP256R1())
        name = _name(common_name="mirror-test-issuer token signing")
        pem = _certificate(
            name,
            name,
            key.public_key(),
            key,
            3650,
            [
                (x509.BasicConstraints(ca=False, path_length=None), True),
                (_key_usage("digital_signature"), True),
                (x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False),
            ],
        )
        replace_file(token / "signing.key", _private_pem(key), mode=0o600)
        replace_file(token / "signing.pem", pem)
    make_password(token / "password")
    (token / "requests.log").touch()


def make_password(path: Path) -> None:
    if not non_empty(path):
        replace_file(path, f"{secrets.token_hex(16)}\n".encode(), mode=0o600)


def read_password(path: Path) -> str:
    return path.read_text(encoding="utf-8").strip()


def _stale(htpasswd: Path, password: Path) -> bool:
    """Missing or older than the password it was made from."""
    return not non_empty(htpasswd) or password.stat().st_mtime > htpasswd.stat().st_mtime


def _tool(name: str, package: str) -> str:
    found = shutil.which(name)
    if not found:
        raise ServicesError(f"{name} not found (install {package})")
    return found


def make_internal_auth(layout: Layout) -> None:
    directory = layout.dir / "internal"
    directory.mkdir(parents=True, exist_ok=True)
    password = directory / "password"
    make_password(password)
    if _stale(directory / "htpasswd", password):
        # distribution accepts bcrypt only; htpasswd reads the password on stdin with -i.
        done = subprocess.run(
            [_tool("htpasswd", "apache2-utils"), "-Bin", INTERNAL_USER],
            input=read_password(password),
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise ServicesError(f"internal: htpasswd failed: {done.stderr.strip()}")
        lines = [line for line in done.stdout.splitlines() if line]
        replace_file(directory / "htpasswd", ("\n".join(lines) + "\n").encode(), mode=0o600)


def _make_nginx_auth(directory: Path, user: str, service: str) -> None:
    """<directory>/password (made once) and the htpasswd nginx reads, remade when the password is newer."""
    directory.mkdir(parents=True, exist_ok=True)
    password = directory / "password"
    make_password(password)
    # nginx checks apr1 ($apr1$) hashes itself, whatever the system's crypt() supports.
    if _stale(directory / "htpasswd", password):
        done = subprocess.run(
            [_tool("openssl", "openssl"), "passwd", "-apr1", "-stdin"],
            input=read_password(password),
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0 or not done.stdout.strip():
            raise ServicesError(f"{service}: openssl passwd -apr1 failed")
        replace_file(directory / "htpasswd", f"{user}:{done.stdout.strip()}\n".encode(), mode=0o600)


def make_git_auth(layout: Layout) -> None:
    _make_nginx_auth(layout.dir / "git", GIT_USER, "git")


def make_charts_auth(layout: Layout) -> None:
    """The charts nginx's /private/ location asks for basic auth (CHARTS_USER, <dir>/charts/password)."""
    _make_nginx_auth(layout.dir / "charts", CHARTS_USER, "charts")


def prepare_all(layout: Layout) -> None:
    make_ca(layout)
    make_token_signing(layout)
    make_internal_auth(layout)
    (layout.dir / "tokenserver").mkdir(exist_ok=True)
    make_git_auth(layout)
    make_charts_auth(layout)
