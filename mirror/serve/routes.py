"""A request target read by the distribution API's grammar: which endpoint, which repository, which reference.

The target is untrusted. Its path is split into segments first, each segment percent-decoded on its own (strict
UTF-8), so an encoded `/` can only ever join a name's components; the repository must then match the distribution
name grammar. Nothing here, nor anywhere in serve, opens a file by a name taken from a request: a route only names
keys of the verified view. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from urllib.parse import parse_qsl, unquote, urlsplit

from mirror.oci.reference import is_repository_name


class Endpoint(Enum):
    BASE = "base"  # /v2/
    CATALOG = "catalog"  # /v2/_catalog
    TAGS = "tags"  # /v2/<name>/tags/list
    MANIFEST = "manifest"  # /v2/<name>/manifests/<reference>
    BLOB = "blob"  # /v2/<name>/blobs/<digest>
    REFERRERS = "referrers"  # /v2/<name>/referrers/<digest>
    BAD_NAME = "bad-name"  # one of those, but the name breaks the grammar: no such repository
    UNKNOWN = "unknown"  # not an endpoint of the API


_ACTIONS = {"manifests": Endpoint.MANIFEST, "blobs": Endpoint.BLOB, "referrers": Endpoint.REFERRERS}


@dataclass(frozen=True)
class Route:
    endpoint: Endpoint
    name: str = ""
    reference: str = ""  # as decoded, unchecked: each endpoint holds it to its own grammar
    query: dict[str, str] = field(default_factory=dict)  # the first value of each parameter


def _segments(path: str) -> list[str] | None:
    try:
        return [unquote(part, errors="strict") for part in path.split("/")]
    except UnicodeDecodeError:
        return None


def parse_route(target: str, max_chars: int) -> Route:
    """The route a request target (path and query, as sent) asks for."""
    if len(target) > max_chars:
        return Route(Endpoint.UNKNOWN)
    try:
        split = urlsplit(target)
    except ValueError:  # an unbalanced `[` where urlsplit looks for a host: no endpoint, not a crash
        return Route(Endpoint.UNKNOWN)
    if split.scheme or split.netloc:
        return Route(Endpoint.UNKNOWN)  # the absolute form is for proxies
    query: dict[str, str] = {}
    for key, value in parse_qsl(split.query, keep_blank_values=True, errors="replace"):
        query.setdefault(key, value)
    if split.path in ("/v2", "/v2/"):
        return Route(Endpoint.BASE, query=query)
    parts = _segments(split.path.removeprefix("/v2/")) if split.path.startswith("/v2/") else None
    if parts == ["_catalog"]:
        return Route(Endpoint.CATALOG, query=query)
    if parts is None or len(parts) < 3:
        return Route(Endpoint.UNKNOWN)
    if parts[-2:] == ["tags", "list"]:
        endpoint, reference = Endpoint.TAGS, ""
    elif parts[-2] in _ACTIONS:
        endpoint, reference = _ACTIONS[parts[-2]], parts[-1]
    else:
        return Route(Endpoint.UNKNOWN)
    name = "/".join(parts[:-2])
    if not is_repository_name(name):
        return Route(Endpoint.BAD_NAME)
    return Route(endpoint, name, reference, query)
