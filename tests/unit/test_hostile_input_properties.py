"""Properties of every command that reads a bundle, on input built to break it (issue 12, "How it is shown").

Random bytes, random tar headers (well-formed ustar headers with random names, types and sizes, and garbage)
and random JSON (inventories with random types in every field, deep nesting, control characters in strings,
and random envelopes) are given as a bundle to `verify --trust`, `inspect` and `import --dry-run --trust`.
Whatever they are:
- the exit code is never 1 (an internal error): a bad bundle is exit 3, a wrong file exit 2;
- no traceback is printed;
- nothing on stdout or stderr holds a raw control character but the line feeds that end lines.

The import runs against a registry URL nothing listens on: a refusal must come before the network.
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from mirror.cli import app
from tests.support.signedbundles import Trust, make_trust

UNREACHABLE = "https://127.0.0.1:9/mirror"
RAW_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")
COMMANDS = ("verify", "inspect", "import")
PROPERTY = settings(
    max_examples=25,
    deadline=None,
    database=None,  # nothing written into the checkout
    # No shrinking: a failure is reported as found, in seconds rather than minutes of a shared machine.
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def trust(tmp_path_factory: pytest.TempPathFactory) -> Trust:
    return make_trust(tmp_path_factory.mktemp("trust"))


def run(command: str, bundle: Path, trust: Trust) -> tuple[int, str, str]:
    args: dict[str, list[object]] = {
        "verify": ["verify", bundle, "--trust", trust.policy],
        "inspect": ["inspect", bundle],
        "import": ["import", bundle, "--trust", trust.policy, "--registry", UNREACHABLE, "--dry-run"],
    }
    result = CliRunner().invoke(app, [str(a) for a in args[command]])
    return result.exit_code, result.stdout, result.stderr


def assert_handled(bundle: Path, trust: Trust, exit_codes: tuple[int, ...] = (0, 2, 3)) -> None:
    for command in COMMANDS:
        code, out, err = run(command, bundle, trust)
        shown = f"mirror {command} exited {code}\nstdout: {out!r}\nstderr: {err!r}"
        assert code in exit_codes, shown
        assert "Traceback" not in out + err, shown
        assert not RAW_CONTROL.search(out + err), shown


# --- strategies -----------------------------------------------------------------------------------------------

# Text that tries everything on a terminal: escape sequences, line breaks, C1, bidi overrides, NUL, and a lone
# surrogate (how Python carries a byte that is not UTF-8; JSON can spell one as \\udc9b).
hostile_text = st.lists(
    st.one_of(
        st.sampled_from(
            ["\x1b[2J", "\x1b]0;x\x07", "\n", "\r", "\x00", "\x7f", "\x9b", "\u202e", "\u2028", "\udc9b", "/", ".."]
        ),
        st.characters(min_codepoint=0x20, max_codepoint=0x7E),
        st.characters(max_codepoint=0x2FFF, exclude_categories=("Cs",)),
    ),
    min_size=1,
    max_size=20,
).map("".join)
json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False), st.just(""), hostile_text
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(hostile_text, inner, max_size=4)),
    max_leaves=12,
)
DIGEST = "sha256:" + "a" * 64


def field(right: st.SearchStrategy[Any], one_in: int = 10) -> st.SearchStrategy[Any]:
    """A required field: any JSON value one time in `one_in`, else of the right type, so parsing goes deep."""
    return st.sampled_from(range(one_in)).flatmap(lambda n: json_values if n == one_in - 1 else right)


def loose(right: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """An optional field that review code reads: more often of a wrong type (a scalar, mostly) than not."""
    return st.one_of(right, json_scalars, json_values)


artifacts = st.fixed_dictionaries(
    {
        "kind": field(st.sampled_from(["image", "chart", "git", "flux"]) | hostile_text, 30),
        "source": field(hostile_text, 30),
        "digest": field(st.just(DIGEST), 30),
        "mediaType": field(st.just("application/vnd.oci.image.manifest.v1+json"), 30),
        "size": field(st.integers(0, 2**40), 30),
        # Optional in an inventory, always here: each a chance for review code to meet a wrong type.
        "foundBy": loose(st.lists(hostile_text, max_size=3)),
        "requiredBy": loose(hostile_text),
        "platforms": loose(st.lists(hostile_text, max_size=3)),
        "heads": loose(st.dictionaries(hostile_text, st.just("a" * 40), max_size=3)),
        "chart": loose(hostile_text),
        "version": loose(hostile_text),
        "repo": loose(hostile_text),
        "tags": loose(st.lists(hostile_text, max_size=3)),
        "via": loose(st.sampled_from(["listed", "chart", "flux", "dependency"])),
        "commit": loose(st.just("a" * 40)),
    }
)
files = st.fixed_dictionaries(
    {
        "path": field(st.sampled_from(["oci-layout", "index.json", "blobs/sha256/" + "a" * 64]) | hostile_text),
        "sha256": field(st.just("a" * 64) | hostile_text),
        "size": field(st.integers(-1, 2**64)),
    }
)
inventory_bodies = st.fixed_dictionaries(
    {
        "apiVersion": field(st.just("mirror/v1"), 30),
        "kind": field(st.just("Inventory"), 30),
        "bundleId": field(hostile_text),
        "created": field(st.just("2026-01-01T00:00:00Z") | hostile_text),
        "tool": field(hostile_text),
        "artifacts": field(st.lists(field(artifacts, 30), min_size=1, max_size=4) | st.just([])),
        "files": field(st.lists(field(files), max_size=2) | st.just([])),
    }
)
# Mostly a full bundle's inventory; sometimes an incremental or split one's, or one with a field never defined.
inventory_extras = st.one_of(
    st.just({}),
    st.just({}),
    st.just({}),
    st.fixed_dictionaries(
        {
            "base": field(
                st.fixed_dictionaries({"inventory": field(st.just(DIGEST)), "bundleId": field(hostile_text)})
            ),
            "expected": field(st.lists(json_values, max_size=3)),
        }
    ),
    st.fixed_dictionaries({"volumes": field(st.lists(json_values, max_size=3))}),
    st.fixed_dictionaries({"unknown": json_values}),
)
inventories = st.builds(lambda body, extra: {**body, **extra}, inventory_bodies, inventory_extras)
envelopes = st.fixed_dictionaries(
    {
        "payload": field(hostile_text),
        "payloadType": field(st.just("application/vnd.in-toto+json") | hostile_text),
        "signatures": field(
            st.lists(st.fixed_dictionaries({"keyid": field(hostile_text), "sig": field(hostile_text)}))
        ),
    }
)

TYPEFLAGS = [b"0", b"\x00", b"1", b"2", b"3", b"5", b"6", b"7", b"x", b"g", b"L", b"K", b"S", b"Z"]
member_names = st.text(st.characters(max_codepoint=0x7F), min_size=1, max_size=99) | st.sampled_from(
    ["inventory.json", "oci-layout", "index.json", "blobs/sha256/" + "b" * 64, "../escape", "/abs", "a/./b"]
)


mostly = st.sampled_from([True] * 9 + [False])  # nine times in ten; st.integers would favour its bounds


@st.composite
def tar_members(draw: st.DrawFn) -> bytes:
    """One ustar header, well formed but for what is random in it, and its data (perhaps cut short)."""
    name = draw(member_names).encode("ascii")
    inventory = json.dumps(draw(inventories)).encode() if name == b"inventory.json" else None
    size = len(inventory) if inventory is not None else draw(st.integers(0, 3000))
    header = bytearray(512)
    header[0 : len(name)] = name
    header[100:108] = b"0000644\x00"
    header[124:136] = f"{size:011o}\x00".encode() if draw(st.booleans()) else draw(st.binary(min_size=12, max_size=12))
    header[136:148] = b"00000000000\x00"
    header[156:157] = draw(st.sampled_from(TYPEFLAGS))
    header[257:265] = b"ustar\x0000" if draw(mostly) else draw(st.binary(min_size=8, max_size=8))
    header[148:156] = b" " * 8
    header[148:156] = f"{sum(header):06o}\x00 ".encode() if draw(mostly) else b"garbage!"
    data = draw(st.binary(max_size=64)) * (size // 64 + 1)
    data = data[:size] if draw(mostly) else data[: size // 2]
    data = inventory if inventory is not None else data
    return bytes(header) + data + b"\x00" * (-len(data) % 512)


tar_files = st.builds(
    lambda members, garbage, end: b"".join(members) + garbage + end,
    st.lists(tar_members(), max_size=5),
    st.binary(max_size=600),
    st.sampled_from([b"", b"\x00" * 1024, b"\x00" * 512, b"\x00" * 1024 + b"tail"]),
)


# --- properties -------------------------------------------------------------------------------------------------


@PROPERTY
@given(data=st.binary(max_size=2048) | st.sampled_from([b"\x1f\x8b\x08", b"BZh9", b"\xfd7zXZ\x00", b"\x00" * 1024]))
def test_random_bytes_as_a_tar_bundle_are_refused_cleanly(trust: Trust, data: bytes) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        bundle = Path(scratch) / "bundle.tar"
        bundle.write_bytes(data)
        assert_handled(bundle, trust)


@PROPERTY
@given(tar=tar_files, name=st.sampled_from(["bundle.tar", "bundle.tar.000"]))
def test_random_tar_headers_are_refused_cleanly(trust: Trust, tar: bytes, name: str) -> None:
    """As a plain tar, and as the head volume of a split bundle."""
    with tempfile.TemporaryDirectory() as scratch:
        bundle = Path(scratch) / name
        bundle.write_bytes(tar)
        assert_handled(bundle, trust)


def directory_bundle(root: Path, inventory: bytes, envelope: bytes | None) -> Path:
    (root / "blobs" / "sha256").mkdir(parents=True)
    (root / "oci-layout").write_bytes(b'{"imageLayoutVersion": "1.0.0"}')
    (root / "index.json").write_bytes(b'{"schemaVersion": 2, "manifests": []}')
    (root / "inventory.json").write_bytes(inventory)
    if envelope is not None:
        (root / "signatures").mkdir()
        (root / "signatures" / f"{hashlib.sha256(envelope).hexdigest()}.json").write_bytes(envelope)
    return root


MISTYPED_FOUND_BY = {
    "apiVersion": "mirror/v1",
    "kind": "Inventory",
    "bundleId": "b-1",
    "created": "2026-01-01T00:00:00Z",
    "tool": "t",
    "artifacts": [
        {"kind": "image", "source": "r.example/a:1", "digest": DIGEST, "mediaType": "m", "size": 1, "foundBy": 5}
    ],
    "files": [],
}


@PROPERTY
@given(inventory=inventories, envelope=st.none() | envelopes | json_values)
@example(inventory=MISTYPED_FOUND_BY, envelope=None)  # the issue's own example, always tried
def test_random_inventories_and_envelopes_are_refused_cleanly(trust: Trust, inventory: Any, envelope: Any) -> None:
    raw = json.dumps(inventory).encode()
    with tempfile.TemporaryDirectory() as scratch:
        bundle = directory_bundle(
            Path(scratch) / "bundle", raw, None if envelope is None else json.dumps(envelope).encode()
        )
        assert_handled(bundle, trust)
        given_alone = Path(scratch) / "inventory.json"  # inspect also reads an inventory file by itself
        given_alone.write_bytes(raw)
        code, out, err = run("inspect", given_alone, trust)
        assert code in (0, 2, 3) and "Traceback" not in out + err and not RAW_CONTROL.search(out + err), (
            code,
            out,
            err,
        )


@pytest.mark.parametrize("opener", ["[", '{"a":'])
@pytest.mark.parametrize("depth", [10, 900, 5_000, 100_000])
def test_deeply_nested_json_is_refused_cleanly(trust: Trust, depth: int, opener: str) -> None:
    closer = "]" if opener == "[" else "}"
    with tempfile.TemporaryDirectory() as scratch:
        bundle = directory_bundle(Path(scratch) / "bundle", (opener * depth + "1" + closer * depth).encode(), None)
        assert_handled(bundle, trust, exit_codes=(2, 3))
