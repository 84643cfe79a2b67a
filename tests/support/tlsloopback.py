"""TLS on loopback for tests: a self-signed certificate for 127.0.0.1, and an https:// front whose TLS ends here
(an https proxy in front of a plain one, for the transport's TLS-inside-TLS tests)."""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import select
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def loopback_certificate(directory: Path) -> tuple[Path, Path]:
    """(certificate, key) PEM files in `directory`: self-signed, for 127.0.0.1, valid for an hour."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def _relay(front: ssl.SSLSocket, back: socket.socket) -> None:
    """Bytes both ways between a TLS client and a plain socket, in one thread (an SSLSocket is not for two)."""
    with front, back, contextlib.suppress(OSError):
        while True:
            ready = [front] if front.pending() else select.select([front, back], [], [], 30)[0]
            if not ready:
                return
            for source, sink in ((front, back), (back, front)):
                if source in ready:
                    data = source.recv(65536)
                    if not data:
                        return
                    sink.sendall(data)


@contextlib.contextmanager
def tls_front(context: ssl.SSLContext, behind: str) -> Iterator[str]:
    """An https:// address whose TLS ends here, every connection relayed to the plain `behind` (host:port)."""
    listener = socket.create_server(("127.0.0.1", 0))
    host, port = behind.rsplit(":", 1)

    def accept() -> None:
        with contextlib.suppress(OSError):
            while True:
                connection, _ = listener.accept()
                try:
                    front = context.wrap_socket(connection, server_side=True)
                except OSError:
                    continue
                back = socket.create_connection((host, int(port)))
                threading.Thread(target=_relay, args=(front, back), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield f"https://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        listener.close()
