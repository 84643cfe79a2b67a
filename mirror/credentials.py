"""Credentials, and where they come from: the containers auth file and its credential helpers, and the Git
credentials bound to one origin. See docs/collector.md ("Credentials").
"""

from __future__ import annotations

import base64
import binascii
import os
import shutil
import subprocess
from collections.abc import Iterable, Mapping
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


def target_registry_credentials(netloc: str, env: Mapping[str, str] | None = None) -> Credentials | None:
    """The target registry's (import, prune, restore): MIRROR_REGISTRY_USERNAME and MIRROR_REGISTRY_PASSWORD, else
    the auth file's entry for `netloc`."""
    given = credentials_from_env("MIRROR_REGISTRY_USERNAME", "MIRROR_REGISTRY_PASSWORD", env)
    return given or credentials_from_auth_file(netloc, env)


def git_credentials(env: Mapping[str, str] | None = None, *, named: Iterable[str] = ()) -> BoundCredentials | None:
    """MIRROR_GIT_USERNAME/MIRROR_GIT_PASSWORD, bound to the one Git origin (scheme, host, port) they are for.

    That origin is MIRROR_GIT_HOST when set (`https://host[:port]`, `http://host[:port]`, or `host[:port]`
    meaning https), else the origin of the MirrorSet's own `spec.git` sources (`named`). Git is given them
    for that origin only: never for a host a named one redirects to, nor for a repository a Flux fleet names
    on another host. Several named origins without MIRROR_GIT_HOST are ambiguous (exit 2); none: unused.
    """
    env = os.environ if env is None else env
    credentials = credentials_from_env("MIRROR_GIT_USERNAME", "MIRROR_GIT_PASSWORD", dict(env))
    if credentials is None:
        return None
    chosen = env.get("MIRROR_GIT_HOST", "").strip()
    if chosen:
        origin = url_origin(chosen if "://" in chosen else f"https://{chosen}")
        if origin is None or urlsplit(chosen if "://" in chosen else f"https://{chosen}").path.strip("/"):
            raise UsageError(
                f"MIRROR_GIT_HOST: {chosen!r} is not a Git origin",
                hint="write https://host[:port] (or http://host[:port]), the host the credentials are for",
            )
        return BoundCredentials(credentials.username, credentials.password, origins=(origin,))
    origins = sorted({o for o in (url_origin(u) for u in named) if o is not None})
    if not origins:
        return None
    if len(origins) > 1:
        raise UsageError(
            f"MIRROR_GIT_USERNAME/MIRROR_GIT_PASSWORD are set and the MirrorSet names {len(origins)} Git hosts "
            f"({', '.join(origins)}); credentials go to one host only",
            hint="set MIRROR_GIT_HOST to the origin they are for, e.g. MIRROR_GIT_HOST=" + origins[0],
        )
    return BoundCredentials(credentials.username, credentials.password, origins=(origins[0],))


def target_git_credentials(target: str, env: Mapping[str, str] | None = None) -> BoundCredentials | None:
    """The import's Git credentials, bound to the internal Git server's origin (`--git`) alone."""
    env = os.environ if env is None else env
    credentials = credentials_from_env("MIRROR_GIT_USERNAME", "MIRROR_GIT_PASSWORD", dict(env))
    origin = url_origin(target)
    if credentials is None or origin is None:
        return None
    return BoundCredentials(credentials.username, credentials.password, origins=(origin,))
