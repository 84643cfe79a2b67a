"""`spec.rewrite` rules: a URL under a rule's `from` prefix is fetched at its `to` prefix.

For a connected side that reaches Git hosts and HTTP Helm repositories only through a proxy or an internal
mirror, as `registries.HOST.endpoint` does for images. Only the fetch changes: the artifact keeps its upstream
URL as its identity (the inventory's source, the Flux objects, the landing path on the high side). Prefixes
match whole path segments (both end in `/`); scheme and host compare case-insensitively; the first matching rule
wins. Rules from `ssh://` are not fetch rules: they say which http(s) URL an ssh:// GitRepository is read as
(mirror.flux.giturls).
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

from mirror.manifest.model import UrlRewrite

__all__ = ["apply_rule", "fetch_url"]


def _split(url: str) -> tuple[str, str] | None:
    """(scheme://netloc lowercased, the rest as written), or None for what is not an absolute URL."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if not parts.scheme or not parts.netloc:
        return None
    head = f"{parts.scheme}://{parts.netloc}"
    if not url.lower().startswith(head.lower()):
        return None
    return head.lower(), url[len(head) :]


def apply_rule(url: str, rule: UrlRewrite) -> str | None:
    """`url` under `rule`'s target, or None when the rule does not cover it."""
    split, prefix = _split(url), _split(rule.source)
    if split is None or prefix is None or split[0] != prefix[0]:
        return None
    rest = split[1] or "/"
    if not rest.startswith(prefix[1] or "/"):
        return None
    return rule.target + rest[len(prefix[1] or "/") :]


def fetch_url(url: str, rules: Sequence[UrlRewrite]) -> str:
    """Where `url` is fetched: under the first http(s) rule that covers it, else `url` itself."""
    for rule in rules:
        if rule.source.startswith("ssh://"):
            continue
        rewritten = apply_rule(url, rule)
        if rewritten is not None:
            return rewritten
    return url
