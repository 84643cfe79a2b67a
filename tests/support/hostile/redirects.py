"""Routes for hosts that send the client elsewhere, and for hosts that ask for credentials.

``redirect_to(target)`` answers every request with a redirect to ``target`` (a base URL, to which the request
path is appended, or a fixed URL such as ``file:///etc/passwd``); ``basic_challenge`` asks every request for
Basic credentials and never accepts any, so a test can read from ``server.requests`` whether they were sent.
"""

from __future__ import annotations

from tests.support.hostile import Answer, Request, Route


def redirect_to(target: str, *, status: int = 302, append_path: bool = True) -> Route:
    def route(request: Request) -> Answer:
        location = target + request.path if append_path else target
        return Answer(status, {"Location": location, "Content-Type": "text/plain"}, b"moved\n")

    return route


def basic_challenge(_: Request) -> Answer:
    return Answer(401, {"WWW-Authenticate": 'Basic realm="hostile"', "Content-Type": "text/plain"}, b"who are you\n")


def authorization_headers(requests: list[Request]) -> list[str]:
    """Every Authorization header among `requests` (a test asserts this is empty for a host not trusted)."""
    return [r.headers["authorization"] for r in requests if "authorization" in r.headers]
