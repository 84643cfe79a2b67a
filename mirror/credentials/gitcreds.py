"""The collector's Git credentials: MIRROR_GIT_* and `.netrc` entries, each bound to one origin it is for."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

from mirror.credentials.base import BoundCredentials, url_origin
from mirror.credentials.envbound import bound_env_credentials
from mirror.credentials.netrc import netrc_entries


class GitCredentials:
    """For each Git URL fetched: the credentials bound to its origin.

    MIRROR_GIT_USERNAME/MIRROR_GIT_PASSWORD for their one origin (mirror.credentials.git_credentials); a `.netrc`
    `machine` entry for each other http(s) origin of the MirrorSet's own Git sources on that host. A URL of no
    such origin gets the MIRROR_GIT_* credentials still bound to theirs (git never answers them there; an auth
    failure then says where they go), or none.
    """

    def __init__(self, given: BoundCredentials | None, per_origin: Mapping[str, BoundCredentials]) -> None:
        self._given = given
        self._per_origin = dict(per_origin)

    def for_url(self, url: str) -> BoundCredentials | None:
        origin = url_origin(url)
        if origin is not None and self._given is not None and origin in self._given.origins:
            return self._given
        return self._per_origin.get(origin or "") or self._given


def git_credential_set(env: Mapping[str, str] | None = None, *, named: Iterable[str] = ()) -> GitCredentials:
    """`named`: the URLs the MirrorSet's own Git sources are fetched from (after spec.rewrite)."""
    env = os.environ if env is None else env
    named = list(named)
    given = bound_env_credentials("MIRROR_GIT", "Git", env, named)
    origins = {o for o in (url_origin(u) for u in named) if o is not None}
    if given is not None:
        origins -= set(given.origins)
    entries = netrc_entries(env) if origins else {}
    per_origin = {}
    for origin in sorted(origins):
        found = entries.get((urlsplit(origin).hostname or "").lower())
        if found is not None:
            per_origin[origin] = BoundCredentials(found.username, found.password, origins=(origin,))
    return GitCredentials(given, per_origin)
