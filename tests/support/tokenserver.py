"""A minimal Docker registry token server, for tests only.

It implements the token protocol that distribution's ``auth.token`` backend
expects (https://distribution.github.io/distribution/spec/auth/token/):

* ``GET /token?service=S&scope=repository:NAME:ACTIONS[&scope=...]``, with
  optional HTTP Basic credentials;
* ``POST /token`` with an OAuth2 form (https://distribution.github.io/distribution/spec/auth/oauth/):
  ``grant_type=password`` (containerd's preferred form), answering the same way, and with
  ``access_type=offline`` also a ``refresh_token``; ``grant_type=refresh_token`` exchanges such a
  refresh token (an auth file's ``identitytoken``) for a token as its user (with a ``client_id``);
  an unknown refresh token gets 401. Refresh tokens live as long as the server;
* ``GET /healthz`` for readiness probes (never logged).

Policy: the configured user (``--user``, password read from
``--password-file``) gets ``pull`` and ``push`` on every repository, and ``*``
on ``registry:catalog:*``. Anonymous callers get ``pull`` only. A wrong
password, or an unknown user, gets 401. The token grants only what was asked
for *and* is allowed.

Tokens are ES256 JWTs whose header carries the signing certificate in
``x5c``; distribution verifies that chain against its ``rootcertbundle`` (the
same certificate), checks ``iss``, ``aud`` (a plain string in 2.8.2), ``exp``
and ``nbf`` (each with 60 s leeway) and the raw ``r||s`` signature.

Every token request appends one JSON line to ``--log``:
``{"time", "user", "service", "scopes", "granted", "status", "method", "grant"}``;
passwords and refresh tokens are never logged. Tests count these lines to prove that clients reuse tokens.

Only the standard library and ``cryptography`` are used.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import datetime as dt
import hmac
import json
import secrets
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

USER_ACTIONS = ("pull", "push")
ANONYMOUS_ACTIONS = ("pull",)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def parse_scope(scope: str) -> tuple[str, str, list[str]] | None:
    """Split ``type:name:actions``; the name may itself contain ``:`` (host:port)."""
    first = scope.find(":")
    last = scope.rfind(":")
    if first <= 0 or last == first:
        return None
    kind, name, actions = scope[:first], scope[first + 1 : last], scope[last + 1 :]
    if not name:
        return None
    wanted: list[str] = []
    for action in actions.split(","):
        action = action.strip()
        if action and action not in wanted:
            wanted.append(action)
    return kind, name, wanted


class Signer:
    def __init__(self, cert_path: Path, key_path: Path) -> None:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
            raise SystemExit(f"{key_path}: the signing key must be an EC P-256 key (ES256)")
        if cert.public_key().public_numbers() != key.public_key().public_numbers():
            raise SystemExit(f"{cert_path} does not match {key_path}")
        self._key = key
        der = cert.public_bytes(serialization.Encoding.DER)
        # x5c uses standard base64 with padding (RFC 7515 4.1.6), not base64url.
        self._header = b64url(
            json.dumps(
                {"typ": "JWT", "alg": "ES256", "x5c": [base64.b64encode(der).decode("ascii")]},
                separators=(",", ":"),
            ).encode()
        )

    def sign(self, claims: dict[str, Any]) -> str:
        payload = b64url(json.dumps(claims, separators=(",", ":")).encode())
        signing_input = f"{self._header}.{payload}".encode("ascii")
        r, s = decode_dss_signature(self._key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
        # JOSE wants the raw 64-byte r||s, not the DER encoding.
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        return f"{self._header}.{payload}.{b64url(signature)}"


class TokenServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        *,
        signer: Signer,
        issuer: str,
        service: str,
        users: dict[str, str],
        log_path: Path,
        expires_in: int,
    ) -> None:
        super().__init__(address, Handler)
        self.signer = signer
        self.issuer = issuer
        self.service = service
        self.users = users
        self.log_path = log_path
        self.expires_in = expires_in
        self.log_lock = threading.Lock()
        self.refresh_tokens: dict[str, str] = {}  # refresh token -> user

    def record(self, entry: dict[str, Any]) -> None:
        line = json.dumps(entry, sort_keys=True) + "\n"
        with self.log_lock, self.log_path.open("a", encoding="utf-8") as fh:
            fh.write(line)
            fh.flush()


class Handler(BaseHTTPRequestHandler):
    server: TokenServer
    protocol_version = "HTTP/1.1"
    server_version = "mirror-test-tokenserver/1"

    # --- plumbing -----------------------------------------------------------------
    def log_message(self, format: str, *args: Any) -> None:
        sys.stderr.write(f"{self.log_date_time_string()} {self.address_string()} {format % args}\n")

    def send_json(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def error(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        self.send_json(status, {"errors": [{"code": code, "message": message, "detail": None}]}, headers)

    # --- routes -------------------------------------------------------------------
    def do_GET(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/healthz":
            self.send_json(200, {"ok": True})
            return
        if url.path != "/token":
            self.error(404, "NOT_FOUND", "no such endpoint")
            return
        params = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        self.issue(params, self.basic_credentials())

    def do_POST(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        if url.path != "/token":
            self.error(404, "NOT_FOUND", "no such endpoint")
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace") if length else ""
        params = urllib.parse.parse_qs(body, keep_blank_values=True)
        grant = (params.get("grant_type") or [""])[0]
        credentials: tuple[str, str] | bool | None
        if grant == "refresh_token" and not (params.get("client_id") or [""])[0]:
            self.error(400, "INVALID_REQUEST", "client_id is required")
            return
        if grant == "password":
            credentials = ((params.get("username") or [""])[0], (params.get("password") or [""])[0])
        elif grant == "refresh_token":
            user = self.server.refresh_tokens.get((params.get("refresh_token") or [""])[0])
            # A known refresh token stands for its user's password; an unknown one is refused like a wrong one.
            credentials = (user, self.server.users[user]) if user is not None else ("", "\0unknown refresh token")
        elif grant == "":
            credentials = self.basic_credentials()
        else:
            self.error(400, "UNSUPPORTED", f"grant_type {grant!r} is not supported")
            return
        offline = grant == "password" and (params.get("access_type") or [""])[0] == "offline"
        self.issue(params, credentials, oauth=True, grant=grant, offline=offline)

    # --- logic --------------------------------------------------------------------
    def basic_credentials(self) -> tuple[str, str] | bool | None:
        """None: anonymous; False: malformed header; (user, password) otherwise."""
        header = self.headers.get("Authorization")
        if not header:
            return None
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return False
        user, sep, password = decoded.partition(":")
        if not sep:
            return False
        return user, password

    def issue(
        self,
        params: dict[str, list[str]],
        credentials: tuple[str, str] | bool | None,
        oauth: bool = False,
        grant: str = "",
        offline: bool = False,
    ) -> None:
        service = (params.get("service") or [""])[0] or self.server.service
        scopes: list[str] = []
        for value in params.get("scope", []):
            scopes.extend(part for part in value.split(" ") if part)
        entry: dict[str, Any] = {
            "time": time.time(),
            "user": None,
            "service": service,
            "scopes": scopes,
            "granted": [],
            "method": self.command,
            "grant": grant or None,
        }

        user: str | None = None
        if credentials is False:
            entry["status"] = 401
            self.server.record(entry)
            self.unauthorized("malformed credentials")
            return
        if isinstance(credentials, tuple):
            name, password = credentials
            entry["user"] = name
            expected = self.server.users.get(name)
            if expected is None or not hmac.compare_digest(password.encode(), expected.encode()):
                entry["status"] = 401
                self.server.record(entry)
                self.unauthorized("invalid username or password")
                return
            user = name

        if service != self.server.service:
            entry["status"] = 400
            self.server.record(entry)
            self.error(400, "INVALID_SERVICE", f"unknown service {service!r}")
            return

        access: list[dict[str, Any]] = []
        for scope in scopes:
            parsed = parse_scope(scope)
            if parsed is None:
                continue
            kind, name, wanted = parsed
            if kind == "repository":
                allowed: tuple[str, ...] = USER_ACTIONS if user else ANONYMOUS_ACTIONS
            elif kind == "registry" and name == "catalog" and user:
                allowed = ("*",)
            else:
                allowed = ()
            granted = [action for action in wanted if action in allowed]
            if not granted:
                continue
            for item in access:  # merge repeated scopes for the same resource
                if item["type"] == kind and item["name"] == name:
                    item["actions"] += [a for a in granted if a not in item["actions"]]
                    break
            else:
                access.append({"type": kind, "name": name, "actions": granted})

        now = int(time.time())
        claims = {
            "iss": self.server.issuer,
            "sub": user or "",
            "aud": service,
            "exp": now + self.server.expires_in,
            "nbf": now,
            "iat": now,
            "jti": secrets.token_hex(16),
            "access": access,
        }
        token = self.server.signer.sign(claims)
        entry["granted"] = access
        entry["status"] = 200
        self.server.record(entry)
        issued_at = dt.datetime.fromtimestamp(now, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        body: dict[str, Any] = {
            "token": token,
            "access_token": token,
            "expires_in": self.server.expires_in,
            "issued_at": issued_at,
        }
        if oauth:
            body["scope"] = " ".join(scopes)
        if offline and user:
            refresh_token = secrets.token_urlsafe(32)
            self.server.refresh_tokens[refresh_token] = user
            body["refresh_token"] = refresh_token
        self.send_json(200, body)

    def unauthorized(self, message: str) -> None:
        self.error(
            401,
            "UNAUTHORIZED",
            message,
            {"WWW-Authenticate": f'Basic realm="{self.server.service}"'},
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--listen", required=True, help="host:port (scripts/services passes the configured port)")
    parser.add_argument("--cert", type=Path, required=True, help="PEM signing certificate (rootcertbundle)")
    parser.add_argument("--key", type=Path, required=True, help="PEM EC P-256 private key of --cert")
    parser.add_argument("--issuer", default="mirror-test-issuer")
    parser.add_argument("--service", default="mirror-token-test")
    parser.add_argument("--user", default="alice")
    parser.add_argument("--password-file", type=Path, required=True)
    parser.add_argument("--log", type=Path, required=True, help="JSON-lines request log")
    parser.add_argument("--expires-in", type=int, default=300, help="token lifetime, seconds")
    args = parser.parse_args(argv)

    host, _, port = args.listen.rpartition(":")
    password = args.password_file.read_text(encoding="utf-8").strip()
    if not password:
        raise SystemExit(f"{args.password_file} is empty")
    args.log.parent.mkdir(parents=True, exist_ok=True)
    server = TokenServer(
        (host, int(port)),
        signer=Signer(args.cert, args.key),
        issuer=args.issuer,
        service=args.service,
        users={args.user: password},
        log_path=args.log,
        expires_in=args.expires_in,
    )
    print(f"token server listening on {args.listen} for service {args.service}", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
