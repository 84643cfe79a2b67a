"""URL paths normalised as a server reads them (decoded, dot segments resolved), or refused."""

from __future__ import annotations

import itertools
import posixpath
from urllib.parse import unquote, urlsplit

import pytest

from mirror.errors import UsageError
from mirror.urlpath import UnsafeUrlPath, encoded_separator, join_under, normalise_path, url_path

NORMALISED = [
    # (raw path, what the server resolves it to)
    ("/fleet/infra.git", "fleet/infra.git"),
    ("fleet/infra.git/", "fleet/infra.git"),
    ("/org/team/sub/group/repo.git", "org/team/sub/group/repo.git"),  # legitimate nested paths
    ("/a/./b.git", "a/b.git"),
    ("/a/b/../c.git", "a/c.git"),
    ("/a/b/c/..", "a/b"),  # a trailing '..'
    ("/a/%2e%2e/b.git", "b.git"),  # encoded, but it stays inside: resolved, not refused
    ("/a/%2E%2e/b.git", "b.git"),  # mixed case
    ("/a/.%2e/b.git", "b.git"),
    ("/a/%2e/b.git", "a/b.git"),
    ("/a%2fb%2f..%2fc.git", "a/c.git"),  # an encoded slash is a separator once decoded
    ("/a\\b\\..\\c.git", "a/c.git"),  # a backslash too
    ("/a%5cb%5C..%5cc.git", "a/c.git"),
    ("/a//b.git", "a/b.git"),
    ("/caf%C3%A9.git", "café.git"),
    ("/v1.2..3/x.git", "v1.2..3/x.git"),  # dots inside a segment are not dot segments
    ("/...git", "...git"),
]

REFUSED = [
    # (raw path, why)
    ("/a/%2e%2e/%2e%2e/escape.git", "climbs above its root"),
    ("/../x.git", "climbs above its root"),
    ("/a/../../x.git", "climbs above its root"),
    ("/a/%2E%2E/..%2F..%2fx.git", "climbs above its root"),
    ("/a\\..\\..\\x.git", "climbs above its root"),
    ("/a/%252e%252e/%252e%252e/x.git", "percent-encoded twice"),  # a second decoding would climb
    ("/a/%25252e%25252e/x.git", "percent-encoded twice"),
    ("/a%252fb.git", "percent-encoded twice"),
    ("/a%2541.git", "percent-encoded twice"),
    ("/a/%00/x.git", "control character U+0000"),
    ("/a/\x00/x.git", "control character U+0000"),
    ("/a/.\t./x.git", "control character U+0009"),
    ("/a/%0a/x.git", "control character U+000A"),
    ("/a/%7f/x.git", "control character U+007F"),
    ("/a/%c2%85/x.git", "control character U+0085"),
    ("/a/\u202e/x.git", "control character U+202E"),
    ("/a/%ff/x.git", "not UTF-8"),
    ("/", "no path left"),
    ("", "no path left"),
    ("/a/..", "no path left"),
    ("/./%2e/", "no path left"),
]


@pytest.mark.parametrize(("raw", "resolved"), NORMALISED)
def test_a_path_is_normalised_as_a_server_resolves_it(raw, resolved):
    assert normalise_path(raw) == resolved


@pytest.mark.parametrize(("raw", "why"), REFUSED)
def test_a_path_that_escapes_or_hides_something_is_refused(raw, why):
    with pytest.raises(UnsafeUrlPath) as refused:
        normalise_path(raw)
    assert why in refused.value.reason


def test_a_refusal_is_a_usage_error_naming_the_path():
    with pytest.raises(UsageError, match=r"escape\.git"):
        normalise_path("/a/%2e%2e/%2e%2e/escape.git")


def test_a_tab_in_a_whole_url_is_refused_although_urlsplit_would_remove_it():
    with pytest.raises(UnsafeUrlPath, match="U\\+0009"):
        url_path("http://host/a/.\t./x.git")


def test_a_url_path_ignores_query_and_host():
    assert url_path("https://git.example.com:8443/fleet/%69nfra.git?x=1") == "fleet/infra.git"


JOINED = [
    ("https://git.internal/base", "fleet/infra.git", "https://git.internal/base/fleet/infra.git"),
    ("https://git.internal/base/", "/fleet/infra.git", "https://git.internal/base/fleet/infra.git"),
    ("https://git.internal", "a/%2e%2e/b.git", "https://git.internal/b.git"),
    ("https://git.internal/base", "caf%C3%A9 x.git", "https://git.internal/base/caf%C3%A9%20x.git"),
    ("https://git.internal/base", "a;b.git", "https://git.internal/base/a%3Bb.git"),
]


@pytest.mark.parametrize(("base", "path", "landing"), JOINED)
def test_a_landing_url_is_built_from_the_normalised_path(base, path, landing):
    assert join_under(base, path) == landing


@pytest.mark.parametrize(
    "path", ["a/%2e%2e/%2e%2e/escape.git", "../x.git", "%2e%2e/x.git", "a%2f..%2f..%2fx.git", "a\\..\\..\\x"]
)
def test_a_landing_url_that_would_leave_base_is_refused(path):
    with pytest.raises(UnsafeUrlPath):
        join_under("https://git.internal/base", path)


@pytest.mark.parametrize(
    ("path", "found"),
    [
        ("/a/%2e%2e/x.git", "%2e"),
        ("/a/%2E./x.git", "%2E"),
        ("/a%2Fb.git", "%2F"),
        ("/a%5cb.git", "%5c"),
        ("/a\\b.git", "\\"),
        ("/a%2541.git", "%25"),
    ],
)
def test_encoded_dots_slashes_and_percents_in_a_source_path_are_found(path, found):
    assert encoded_separator(path) == found


@pytest.mark.parametrize("path", ["/fleet/infra.git", "/caf%C3%A9.git", "/a%20b.git", "/v1.2/x"])
def test_an_honest_source_path_has_no_encoded_separator(path):
    assert encoded_separator(path) is None


# Every path built from these pieces, up to four of them: whatever is accepted must land under BASE as each kind
# of server reads it (decoding once, twice as a proxy in front may, or taking '\' for a separator).
PIECES = ["a", ".", "..", "%2e", "%2E", "/", "%2f", "%2F", "\\", "%5c", "%25", "%252e", "%00"]
SERVERS = {
    "decodes once": lambda path: unquote(path),
    "decodes twice": lambda path: unquote(unquote(path)),
    "backslash is a separator": lambda path: unquote(path).replace("\\", "/"),
}


def test_no_accepted_path_of_these_pieces_lands_outside_base_for_any_server():
    accepted = 0
    for count in range(1, 5):
        for pieces in itertools.product(PIECES, repeat=count):
            raw = "/" + "".join(pieces)
            try:
                landing = join_under("https://git.internal/base", raw)
            except UnsafeUrlPath:
                continue
            accepted += 1
            for server, decode in SERVERS.items():
                served = posixpath.normpath(decode(urlsplit(landing).path))
                assert served.startswith("/base/"), (raw, landing, server, served)
    assert accepted > 1000  # the pieces do make legitimate paths too
