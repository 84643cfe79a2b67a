"""A counting reverse proxy on a HostileServer: every request is forwarded to a real registry (the local
distribution upstream) and answered with what it answered, while ``server.requests`` records method and path.

``forward_to(base_url, extra_headers=None, answer=None)``: ``extra_headers(request)`` adds headers to every answer
(Docker Hub's ``ratelimit-remaining``, for instance); ``answer(request)`` may answer a request itself (a 429)
instead of forwarding it, by returning an Answer, or forward it by returning None. Point a MirrorSet at it with
``spec.registries.HOST.endpoint``; the images keep their upstream names.

Only the standard library is used.
"""

from __future__ import annotations

import http.client
from collections.abc import Callable
from urllib.parse import urlsplit

from tests.support.hostile import Answer, Request, Route

# Hop-by-hop headers and those the HostileServer writes itself are not copied from the upstream's answer.
_NOT_COPIED = {"connection", "keep-alive", "transfer-encoding", "date", "server"}


def manifest_requests(requests: list[Request], method: str) -> list[str]:
    """The paths of the manifest requests of `method` (GET is what Docker Hub counts against the pull quota)."""
    return [r.path for r in requests if r.method == method and "/manifests/" in r.path]


def forward_to(
    base_url: str,
    extra_headers: Callable[[Request], dict[str, str]] | None = None,
    answer: Callable[[Request], Answer | None] | None = None,
) -> Route:
    upstream = urlsplit(base_url)
    assert upstream.scheme == "http" and upstream.hostname and upstream.port

    def route(request: Request) -> Answer:
        own = answer(request) if answer is not None else None
        if own is not None:
            return own
        connection = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=60)
        try:
            # The Host header goes through: the registry builds its upload Locations on it, so the PUT that
            # finishes an upload comes back through the proxy too, and is counted.
            headers = {k: v for k, v in request.headers.items() if k != "connection"}
            connection.request(request.method, request.path, body=request.body or None, headers=headers)
            response = connection.getresponse()
            body = response.read()
            copied = {k: v for k, v in response.getheaders() if k.lower() not in _NOT_COPIED}
        finally:
            connection.close()
        if extra_headers is not None:
            copied.update(extra_headers(request))
        return Answer(response.status, copied, body)

    return route
