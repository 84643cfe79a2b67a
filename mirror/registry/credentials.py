"""Credentials, and where they come from: the containers auth file and its credential helpers.

The auth file is looked up as podman and skopeo do for the contract's three places: REGISTRY_AUTH_FILE, then
$DOCKER_CONFIG/config.json, then ~/.docker/config.json.
"""

from __future__ import annotations

import base64
import binascii
import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from mirror.errors import UsageError
from mirror.oci.document import bounded_json

# Docker Hub credentials are stored under the old index URL by `docker login`.
_HOST_ALIASES = {
    "docker.io": ("docker.io", "index.docker.io", "registry-1.docker.io", "https://index.docker.io/v1/"),
}


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str = field(repr=False)

    def __repr__(self) -> str:
        return f"Credentials(username={self.username!r}, password=<redacted>)"


@dataclass(frozen=True, repr=False)
class BoundCredentials(Credentials):
    """Credentials that may be answered only to these origins (`scheme://host[:port]`, see `url_origin`)."""

    origins: tuple[str, ...] = ()


_DEFAULT_PORTS = {"http": 80, "https": 443}


def url_origin(url: str) -> str | None:
    """`scheme://host[:port]` of an http(s) URL: lower-case, the default port left out; None for other URLs."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}" if port in (None, _DEFAULT_PORTS[scheme]) else f"{scheme}://{host}:{port}"


def credentials_from_env(
    user_variable: str, password_variable: str, env: Mapping[str, str] | None = None
) -> Credentials | None:
    """A user and password from two environment variables: both set, or neither."""
    env = os.environ if env is None else env
    user, password = env.get(user_variable), env.get(password_variable)
    if not (user or password):
        return None
    if not (user and password):
        raise UsageError(f"set both {user_variable} and {password_variable}, or neither")
    return Credentials(user, password)


def auth_file_path(env: Mapping[str, str] | None = None) -> Path | None:
    env = os.environ if env is None else env
    if env.get("REGISTRY_AUTH_FILE"):
        return Path(env["REGISTRY_AUTH_FILE"])
    if env.get("DOCKER_CONFIG"):
        return Path(env["DOCKER_CONFIG"]) / "config.json"
    home = env.get("HOME")
    return Path(home) / ".docker" / "config.json" if home else None


def _keys_for(host: str) -> tuple[str, ...]:
    return _HOST_ALIASES.get(host, (host, f"https://{host}", f"http://{host}"))


def _decode_auth(value: str, path: Path, key: str) -> Credentials:
    try:
        user, sep, password = base64.b64decode(value, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: auths.{key}.auth is not base64 of user:password") from exc
    if not sep:
        raise UsageError(f"{path}: auths.{key}.auth is not base64 of user:password")
    return Credentials(user, password)


def _from_helper(helper: str, host: str, path: Path) -> Credentials | None:
    program = shutil.which(f"docker-credential-{helper}")
    if program is None:
        raise UsageError(f"{path}: credential helper docker-credential-{helper} for {host} is not on PATH")
    result = subprocess.run([program, "get"], input=host.encode(), capture_output=True, timeout=30, check=False)
    if result.returncode != 0:
        return None  # helpers exit non-zero for "no credentials for this host"
    try:
        answer = bounded_json(result.stdout)
        return Credentials(answer["Username"], answer["Secret"])
    except (ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"docker-credential-{helper} gave an unreadable answer for {host}") from exc


def credentials_from_auth_file(host: str, env: Mapping[str, str] | None = None) -> Credentials | None:
    """Credentials for `host` (the host actually contacted), or None when the auth file has none."""
    path = auth_file_path(env)
    if path is None or not path.is_file():
        return None
    try:
        config = bounded_json(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: not a readable JSON auth file: {exc}") from exc
    if not isinstance(config, dict):
        raise UsageError(f"{path}: expected a JSON object")
    keys = _keys_for(host)
    helpers = config.get("credHelpers") or {}
    for key in keys:
        if isinstance(helpers, dict) and key in helpers:
            return _from_helper(str(helpers[key]), key, path)
    auths = config.get("auths") or {}
    for key in keys:
        entry = auths.get(key) if isinstance(auths, dict) else None
        if isinstance(entry, dict) and entry.get("auth"):
            return _decode_auth(str(entry["auth"]), path, key)
        if isinstance(entry, dict) and entry.get("username") and entry.get("password"):
            return Credentials(str(entry["username"]), str(entry["password"]))
    if config.get("credsStore"):
        return _from_helper(str(config["credsStore"]), keys[-1] if host == "docker.io" else host, path)
    return None
