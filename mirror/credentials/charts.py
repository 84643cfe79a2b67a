"""Basic-auth credentials for HTTP chart repositories, each bound to the origin it is for."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

from mirror.credentials.authfile import credentials_from_auth_file
from mirror.credentials.base import BoundCredentials, url_origin
from mirror.credentials.envbound import bound_env_credentials


class ChartCredentials:
    """For each chart repository URL fetched: the credentials for its origin, or None.

    MIRROR_CHARTS_USERNAME/MIRROR_CHARTS_PASSWORD go to the one HTTP chart repository origin the MirrorSet names
    (or MIRROR_CHARTS_HOST's). Otherwise a containers auth file entry for the URL's host[:port], or for a path
    above the URL (`host/charts`), the most specific first as for registry repositories; it applies to that
    origin only. A redirect never carries them to another origin (mirror.collector.httpfetch).
    """

    def __init__(self, given: BoundCredentials | None, env: Mapping[str, str] | None) -> None:
        self._given = given
        self._env = env
        self._found: dict[tuple[str, str], BoundCredentials | None] = {}
        self._lock = threading.Lock()

    def for_url(self, url: str) -> BoundCredentials | None:
        origin = url_origin(url)
        if origin is None:
            return None
        if self._given is not None and origin in self._given.origins:
            return self._given
        parts = urlsplit(url)
        key = (parts.netloc.lower(), parts.path.strip("/"))
        with self._lock:
            if key in self._found:
                return self._found[key]
        found = credentials_from_auth_file(key[0], self._env, repository=key[1])
        bound = (
            BoundCredentials(found.username, found.password, origins=(origin,))
            if found is not None and (found.username or found.password)
            else None
        )
        with self._lock:
            self._found[key] = bound
        return bound


def chart_credentials(env: Mapping[str, str] | None = None, *, named: Iterable[str] = ()) -> ChartCredentials:
    """The chart repositories' credentials; `named`: the MirrorSet's own chart repository URLs."""
    env = os.environ if env is None else env
    http = [u for u in named if urlsplit(u).scheme in ("http", "https")]
    return ChartCredentials(bound_env_credentials("MIRROR_CHARTS", "chart repository", env, http), env)
