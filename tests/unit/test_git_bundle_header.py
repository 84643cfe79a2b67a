"""The git bundle header parser reads untrusted bytes: what it accepts, and every malformed header it refuses."""

from __future__ import annotations

import io

import pytest

from mirror.errors import BundleFormatError
from mirror.git.bundles import parse_header
from mirror.limits import DEFAULT_LIMITS, Limits

A = "a" * 40
B = "b" * 40
PACK = b"PACK\x00\x00\x00\x02\x00\x00\x00\x00"


def header(*lines: str, signature: bytes = b"# v2 git bundle\n", pack: bytes = PACK) -> bytes:
    return signature + "".join(line + "\n" for line in lines).encode() + b"\n" + pack


def parse(raw: bytes, limits: Limits = DEFAULT_LIMITS):
    return parse_header(io.BytesIO(raw), "night3.tar.000: the git bundle sha256:0", limits)


def test_a_v2_header_gives_heads_prerequisites_and_where_the_pack_begins() -> None:
    raw = header(f"-{A} the base's tip", f"{B} refs/heads/main", f"{B} refs/tags/v1")
    parsed = parse(raw)
    assert parsed.version == 2
    assert parsed.heads == {"refs/heads/main": B, "refs/tags/v1": B}
    assert parsed.prerequisites == {A: "the base's tip"}
    assert raw[parsed.pack_offset :] == PACK


def test_a_v3_header_with_the_sha1_object_format_is_accepted() -> None:
    parsed = parse(header("@object-format=sha1", f"{B} refs/heads/main", signature=b"# v3 git bundle\n"))
    assert parsed.version == 3 and parsed.heads == {"refs/heads/main": B} and parsed.prerequisites == {}


def test_a_prerequisite_without_a_comment_is_accepted() -> None:
    assert parse(header(f"-{A}", f"{B} refs/heads/main")).prerequisites == {A: ""}


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (b"# v4 git bundle\n" + b"\n" + PACK, "not a git bundle"),
        (b"PACK" + PACK, "not a git bundle"),
        (b"", "not a git bundle"),
        (header("@object-format=sha1", f"{B} refs/heads/main"), "out of place"),
        (header(f"{B} refs/heads/main", "@object-format=sha1", signature=b"# v3 git bundle\n"), "out of place"),
        (header("@Bad Key", f"{B} refs/heads/main", signature=b"# v3 git bundle\n"), "malformed capability"),
        (header(f"{B} refs/heads/main", f"-{A} late"), "malformed prerequisite"),
        (header(f"-{A[:39]} short", f"{B} refs/heads/main"), "malformed prerequisite"),
        (header(f"-{'A' * 40} upper case", f"{B} refs/heads/main"), "malformed prerequisite"),
        (header(f"{B[:39]} refs/heads/main"), "malformed ref line"),
        (header(f"{'c' * 64} refs/heads/main"), "malformed ref line"),
        (header(f"{'z' * 40} refs/heads/main"), "malformed ref line"),
        (header(f"{B} refs/heads/a..b"), "malformed ref line"),
        (header(f"{B} HEAD"), "malformed ref line"),
        (header(f"{B}"), "malformed ref line"),
        (header(f"{B} refs/heads/main", f"{A} refs/heads/main"), "listed twice"),
        (header(f"-{A} only a prerequisite"), "lists no refs"),
        (header(f"{B} refs/heads/main", pack=b"NOPE"), "no pack data"),
        (header(f"{B} refs/heads/main", pack=b""), "no pack data"),
        (b"# v2 git bundle\n" + f"{B} refs/heads/main\n".encode(), "ends early"),
        (b"# v2 git bundle\n" + f"{B} refs/heads/main".encode(), "ends early"),
        (b"# v2 git bundle\n" + b"\xff\xfe refs/heads/main\n\n" + PACK, "not UTF-8"),
        (
            header("@object-format=sha256", f"{'c' * 40} refs/heads/main", signature=b"# v3 git bundle\n"),
            "object format 'sha256'",
        ),
        (header("@filter=blob:none", f"{B} refs/heads/main", signature=b"# v3 git bundle\n"), "partial bundle"),
        (header("@future", f"{B} refs/heads/main", signature=b"# v3 git bundle\n"), "unknown capabilities"),
    ],
    ids=[
        "v4-signature",
        "no-signature",
        "empty",
        "capability-in-v2",
        "capability-after-refs",
        "malformed-capability",
        "prerequisite-after-refs",
        "short-prerequisite-id",
        "upper-case-prerequisite-id",
        "short-ref-id",
        "sha256-length-id",
        "non-hex-id",
        "invalid-ref-name",
        "ref-outside-refs",
        "ref-line-without-name",
        "duplicate-ref",
        "no-refs",
        "no-pack-signature",
        "nothing-after-header",
        "no-blank-line",
        "no-final-newline",
        "non-utf8",
        "sha256-object-format",
        "filter",
        "unknown-capability",
    ],
)
def test_a_malformed_header_is_refused_naming_the_problem_and_the_file(raw: bytes, problem: str) -> None:
    with pytest.raises(BundleFormatError) as raised:
        parse(raw)
    assert problem in raised.value.message
    assert raised.value.message.startswith("night3.tar.000: the git bundle sha256:0: ")


def test_an_overlong_header_line_is_refused_without_reading_the_rest() -> None:
    with pytest.raises(BundleFormatError, match="overlong line"):
        parse(header(f"-{A} " + "x" * 200, f"{B} refs/heads/main"), Limits(max_git_bundle_header_line=100))


def test_a_header_larger_than_the_bound_is_refused() -> None:
    prerequisites = [f"-{n:040x} commit {n}" for n in range(40)]
    with pytest.raises(BundleFormatError, match="larger than 1000 bytes"):
        parse(header(*prerequisites, f"{B} refs/heads/main"), Limits(max_git_bundle_header_bytes=1000))
