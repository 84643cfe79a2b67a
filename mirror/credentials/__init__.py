"""Credentials, and where they come from: the containers auth files and their credential helpers, `.netrc`, and
the environment, each bound to the origin it is for. See docs/collector.md ("Credentials").
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

from mirror.credentials.authfile import AuthPath, auth_file_paths, credentials_from_auth_file
from mirror.credentials.base import BoundCredentials, Credentials, credentials_from_env, url_origin
from mirror.credentials.charts import ChartCredentials, chart_credentials
from mirror.credentials.envbound import bound_env_credentials
from mirror.credentials.gitcreds import GitCredentials, git_credential_set
from mirror.credentials.netrc import netrc_path

__all__ = [
    "AuthPath",
    "BoundCredentials",
    "ChartCredentials",
    "Credentials",
    "GitCredentials",
    "auth_file_paths",
    "chart_credentials",
    "credentials_from_auth_file",
    "credentials_from_env",
    "git_credential_set",
    "git_credentials",
    "netrc_path",
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
    return bound_env_credentials("MIRROR_GIT", "Git", os.environ if env is None else env, named)


def target_git_credentials(target: str, env: Mapping[str, str] | None = None) -> BoundCredentials | None:
    """The import's Git credentials, bound to the internal Git server's origin (`--git`) alone."""
    env = os.environ if env is None else env
    credentials = credentials_from_env("MIRROR_GIT_USERNAME", "MIRROR_GIT_PASSWORD", dict(env))
    origin = url_origin(target)
    if credentials is None or origin is None:
        return None
    return BoundCredentials(credentials.username, credentials.password, origins=(origin,))
