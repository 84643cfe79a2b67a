"""What a credential is, the origin it may be answered to, and the environment variables that give one."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from mirror.errors import UsageError


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str = field(repr=False)
    # An OAuth2 refresh token (an auth file's `identitytoken`): exchanged at the registry's token realm.
    identity_token: str = field(default="", repr=False, kw_only=True)

    def __repr__(self) -> str:
        token = ", identity_token=<redacted>" if self.identity_token else ""
        return f"Credentials(username={self.username!r}, password=<redacted>{token})"


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
