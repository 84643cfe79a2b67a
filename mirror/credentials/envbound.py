"""A user and password from the environment, bound to the one origin they are for (Git, chart repositories)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

from mirror.credentials.base import BoundCredentials, credentials_from_env, url_origin
from mirror.errors import UsageError


def bound_env_credentials(
    prefix: str, what: str, env: Mapping[str, str], named: Iterable[str]
) -> BoundCredentials | None:
    """PREFIX_USERNAME/PREFIX_PASSWORD, bound to PREFIX_HOST's origin when set (`https://host[:port]`,
    `http://host[:port]`, or `host[:port]` meaning https), else to the one origin of the `named` URLs (the
    MirrorSet's own sources of this kind). Several named origins without PREFIX_HOST are ambiguous (exit 2);
    none: unused."""
    credentials = credentials_from_env(f"{prefix}_USERNAME", f"{prefix}_PASSWORD", dict(env))
    if credentials is None:
        return None
    chosen = env.get(f"{prefix}_HOST", "").strip()
    if chosen:
        url = chosen if "://" in chosen else f"https://{chosen}"
        if "@" in url.split("://", 1)[1].split("/", 1)[0]:  # userinfo: the message must not echo it
            raise UsageError(
                f"{prefix}_HOST must not carry credentials",
                hint=f"write https://host[:port]; the credentials are {prefix}_USERNAME and {prefix}_PASSWORD",
            )
        origin = url_origin(url)
        if origin is None or urlsplit(url).path.strip("/"):
            raise UsageError(
                f"{prefix}_HOST: {chosen!r} is not a {what} origin",
                hint="write https://host[:port] (or http://host[:port]), the host the credentials are for",
            )
        return BoundCredentials(credentials.username, credentials.password, origins=(origin,))
    origins = sorted({o for o in (url_origin(u) for u in named) if o is not None})
    if not origins:
        return None
    if len(origins) > 1:
        raise UsageError(
            f"{prefix}_USERNAME/{prefix}_PASSWORD are set and the MirrorSet names {len(origins)} {what} hosts "
            f"({', '.join(origins)}); credentials go to one host only",
            hint=f"set {prefix}_HOST to the origin they are for, e.g. {prefix}_HOST=" + origins[0],
        )
    return BoundCredentials(credentials.username, credentials.password, origins=(origins[0],))
