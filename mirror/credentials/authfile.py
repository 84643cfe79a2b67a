"""The containers auth files (containers-auth.json(5)), searched as containers/image searches them.

See docs/collector.md ("Credentials") for the order and the keys; the helpers are docker-credential-* programs.
"""

from __future__ import annotations

import base64
import binascii
import os
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mirror.credentials.base import Credentials
from mirror.errors import UsageError
from mirror.oci.document import bounded_json

# Docker Hub credentials are stored under the old index URL by `docker login`.
_HOST_ALIASES = {
    "docker.io": ("docker.io", "index.docker.io", "registry-1.docker.io", "https://index.docker.io/v1/"),
}
_DOCKER_HUB_NAMES = ("docker.io", "registry-1.docker.io")


@dataclass(frozen=True)
class AuthPath:
    path: Path
    legacy: bool = False  # ~/.dockercfg: the entries at the top level, no credHelpers, keys are hosts only


def auth_file_paths(env: Mapping[str, str] | None = None) -> list[AuthPath]:
    """The auth files in the order they are searched (some may not exist).

    REGISTRY_AUTH_FILE (podman's and skopeo's --authfile default) is the only one when set. Otherwise
    containers/image's getAuthFilePaths on Linux: podman's own file in $XDG_RUNTIME_DIR (/run/containers/UID
    without it; skipped when the variable names a directory that does not exist), then
    $XDG_CONFIG_HOME/containers/auth.json, $DOCKER_CONFIG/config.json or ~/.docker/config.json, ~/.dockercfg.
    """
    env = os.environ if env is None else env
    if env.get("REGISTRY_AUTH_FILE"):
        return [AuthPath(Path(env["REGISTRY_AUTH_FILE"]))]
    paths: list[AuthPath] = []
    runtime_dir = env.get("XDG_RUNTIME_DIR")
    if runtime_dir:
        if Path(runtime_dir).exists():
            paths.append(AuthPath(Path(runtime_dir) / "containers" / "auth.json"))
    else:
        paths.append(AuthPath(Path(f"/run/containers/{os.getuid()}/auth.json")))
    home = env.get("HOME")
    config_home = env.get("XDG_CONFIG_HOME") or (str(Path(home) / ".config") if home else None)
    if config_home:
        paths.append(AuthPath(Path(config_home) / "containers" / "auth.json"))
    if env.get("DOCKER_CONFIG"):
        paths.append(AuthPath(Path(env["DOCKER_CONFIG"]) / "config.json"))
    elif home:
        paths.append(AuthPath(Path(home) / ".docker" / "config.json"))
    if home:
        paths.append(AuthPath(Path(home) / ".dockercfg", legacy=True))
    return paths


def credentials_from_auth_file(
    host: str, env: Mapping[str, str] | None = None, *, repository: str = ""
) -> Credentials | None:
    """Credentials for `host` (the host actually contacted) and, where a key names it or a namespace above it,
    `repository` on that host; None when no auth file has any. The first file with credentials wins."""
    for auth_path in auth_file_paths(env):
        config = _read(auth_path)
        if config is None:
            continue
        found = _from_file(config, host, repository, auth_path)
        if found is not None:
            return found
    return None


def _read(auth_path: AuthPath) -> dict[str, Any] | None:
    path = auth_path.path
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        if not path.exists():
            return None
        raise UsageError(f"{path}: not a readable JSON auth file: {exc}") from exc
    try:
        config = bounded_json(raw)
    except ValueError as exc:
        raise UsageError(f"{path}: not a readable JSON auth file: {exc}") from exc
    if not isinstance(config, dict):
        raise UsageError(f"{path}: expected a JSON object")
    return {"auths": config} if auth_path.legacy else config


def _keys_for(host: str) -> tuple[str, ...]:
    return _HOST_ALIASES.get(host, (host, f"https://{host}", f"http://{host}"))


def _lookup_keys(host: str, repository: str, legacy: bool) -> Iterator[str]:
    """The repository's key, then each namespace above it, then the host: the most specific first."""
    if legacy or not repository:
        yield host
        return
    key = f"{host}/{repository.strip('/')}"
    while True:
        yield key
        if "/" not in key:
            return
        key = key.rsplit("/", 1)[0]


def _normalized(key: str, legacy: bool) -> str:
    """An auth file key as a registry host: a URL's scheme and path dropped, Docker Hub's names made one."""
    stripped = key.removeprefix("http://").removeprefix("https://")
    if legacy or stripped != key:
        stripped = stripped.split("/", 1)[0]
    return "index.docker.io" if stripped in _DOCKER_HUB_NAMES else stripped


def _from_file(config: dict[str, Any], host: str, repository: str, auth_path: AuthPath) -> Credentials | None:
    path = auth_path.path
    helpers = config.get("credHelpers") or {}
    if isinstance(helpers, dict):
        for key in _keys_for(host):
            if key in helpers:
                return _from_helper(str(helpers[key]), key, path)
    auths = config.get("auths") or {}
    if not isinstance(auths, dict):
        auths = {}
    for key in _lookup_keys(host, repository, auth_path.legacy):
        if key in auths:
            return _decode_entry(auths[key], path, key)
    wanted = _normalized(host, legacy=False)
    for key, value in auths.items():
        if _normalized(key, auth_path.legacy) == wanted:
            return _decode_entry(value, path, key)
    if config.get("credsStore") and not auth_path.legacy:
        return _from_helper(str(config["credsStore"]), _keys_for(host)[-1] if host == "docker.io" else host, path)
    return None


def _decode_entry(entry: object, path: Path, key: str) -> Credentials | None:
    """An `auths` entry; None for an empty one (`{}` marks a credential helper's host), which moves on."""
    if not isinstance(entry, dict):
        return None
    token = entry.get("identitytoken")
    token = token if isinstance(token, str) else ""
    if entry.get("auth"):
        user, password = _decode_auth(str(entry["auth"]), path, key)
        return Credentials(user, password, identity_token=token)
    if entry.get("username") and entry.get("password"):
        return Credentials(str(entry["username"]), str(entry["password"]), identity_token=token)
    if token:
        return Credentials(str(entry.get("username") or ""), "", identity_token=token)
    return None


def _decode_auth(value: str, path: Path, key: str) -> tuple[str, str]:
    try:
        user, sep, password = base64.b64decode(value, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: auths.{key}.auth is not base64 of user:password") from exc
    if not sep:
        raise UsageError(f"{path}: auths.{key}.auth is not base64 of user:password")
    return user, password.strip("\x00")


def _from_helper(helper: str, host: str, path: Path) -> Credentials | None:
    program = shutil.which(f"docker-credential-{helper}")
    if program is None:
        raise UsageError(f"{path}: credential helper docker-credential-{helper} for {host} is not on PATH")
    result = subprocess.run([program, "get"], input=host.encode(), capture_output=True, timeout=30, check=False)
    if result.returncode != 0:
        return None  # helpers exit non-zero for "no credentials for this host"
    try:
        answer = bounded_json(result.stdout)
        username, secret = answer["Username"], answer["Secret"]
    except (ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"docker-credential-{helper} gave an unreadable answer for {host}") from exc
    # Helpers answer an identity token with the user name "<token>" (docker-credential-helpers' convention).
    if username == "<token>":
        return Credentials("", "", identity_token=str(secret))
    return Credentials(str(username), str(secret))
