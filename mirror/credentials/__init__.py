"""Credentials, and where they come from: the containers auth files and their credential helpers, `.netrc`, and
the environment, each bound to the origin it is for. See docs/collector.md ("Credentials").
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

from mirror.credentials.authfile import AuthPath, auth_file_paths, credentials_from_auth_file
from mirror.credentials.base import BoundCredentials, Credentials, credentials_from_env, url_origin
from mirror.errors import UsageError

__all__ = [
    "AuthPath",
    "BoundCredentials",
    "Credentials",
    "auth_file_paths",
    "credentials_from_auth_file",
    "credentials_from_env",
    "git_credentials",
    "target_git_credentials",
    "target_registry_credentials",
    "url_origin",
]


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
