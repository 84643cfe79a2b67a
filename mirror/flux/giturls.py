"""How a GitRepository's `ssh://` URL is fetched over HTTP(S): a listed Git source of the same repository, or a
MirrorSet rewrite rule.

`flux bootstrap` writes `ssh://git@github.com/org/fleet` into every fleet's root GitRepository; the collector
fetches Git over HTTP(S) only (ssh needs keys and known hosts the connected side rarely has for every host). So
an ssh URL is read as the HTTP(S) URL of the same repository: a `spec.git` entry with the same host and path
(`https://github.com/org/fleet.git`; a `.git` suffix, a user name and ports aside), else the first
`spec.rewrite` rule whose `from` is a prefix of it. The result is the source's identity from then on (it lands
on the internal Git server at the same path either way).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from urllib.parse import urlsplit

from mirror.manifest.model import UrlRewrite
from mirror.urlrewrite import apply_rule

__all__ = ["SshUrlMap", "repository_identity"]


def repository_identity(url: str) -> tuple[str, str] | None:
    """(host, path) of a Git URL, the path without slashes around it or a `.git` suffix; None if not a URL."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return None
    if not host:
        return None
    path = parts.path.strip("/").removesuffix(".git").strip("/")
    return host.lower(), path


class SshUrlMap:
    """Maps an ssh:// Git URL to the http(s):// URL it is fetched as, or None when nothing says how."""

    def __init__(self, listed: Iterable[str], rewrites: Sequence[UrlRewrite] = ()) -> None:
        self._listed: dict[tuple[str, str], str] = {}
        for url in listed:
            identity = repository_identity(url)
            if identity is not None and urlsplit(url).scheme in ("https", "http"):
                self._listed.setdefault(identity, url)
        self._rewrites = [r for r in rewrites if r.source.startswith("ssh://")]

    def __call__(self, url: str) -> str | None:
        identity = repository_identity(url)
        if identity is not None and identity in self._listed:
            return self._listed[identity]
        for rule in self._rewrites:
            mapped = apply_rule(url, rule)
            if mapped is not None:
                return mapped
        return None
