"""The bundle inventory: what to_bytes writes parses back, and an inventory naming unsafe files is refused."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from typing import Any

import pytest

from mirror.bundle.inventory import (
    ArtifactRecord,
    BaseRecord,
    ExpectedBlob,
    FileRecord,
    Inventory,
    blob_path,
    is_layout_path,
    parse_inventory,
)
from mirror.errors import BundleFormatError, VerificationError
from mirror.oci import mediatypes as mt

BLOB = b"layer bytes"
BLOB_HEX = hashlib.sha256(BLOB).hexdigest()
OTHER_HEX = "e" * 64


def sample() -> Inventory:
    files = (
        FileRecord(f"blobs/sha256/{BLOB_HEX}", BLOB_HEX, len(BLOB)),
        FileRecord("index.json", "a" * 64, 300),
        FileRecord("oci-layout", "b" * 64, 31),
    )
    artifacts = (
        ArtifactRecord(
            kind="image",
            source="ghcr.io/org/app:1.2",
            digest="sha256:" + "d" * 64,
            media_type=mt.OCI_INDEX,
            size=1234,
            extra={"platforms": ["linux/amd64"]},
        ),
    )
    return Inventory(
        bundle_id="b-1", created="2025-01-01T00:00:00Z", tool="mirror 0.1.0", artifacts=artifacts, files=files
    )


def body_with_files(*files: dict[str, Any]) -> bytes:
    body = json.loads(sample().to_bytes())
    body["files"] = list(files)
    return json.dumps(body).encode()


def record(path: str, sha256: str, size: int = 1, **extra: Any) -> dict[str, Any]:
    return {"path": path, "sha256": sha256, "size": size, **extra}


def refuse(raw: bytes) -> BundleFormatError:
    with pytest.raises(BundleFormatError) as caught:
        parse_inventory(raw)
    assert caught.value.exit_code == 3
    return caught.value


def test_inventory_round_trips_through_bytes():
    assert parse_inventory(sample().to_bytes()) == sample()


def test_inventory_bytes_are_deterministic_whatever_the_file_order():
    shuffled = Inventory(**{**sample().__dict__, "files": tuple(reversed(sample().files))})
    assert shuffled.to_bytes() == sample().to_bytes()


def test_inventory_total_size_sums_files():
    assert sample().total_size == len(BLOB) + 300 + 31


def test_inventory_finds_a_file_by_path():
    assert sample().file("index.json") == FileRecord("index.json", "a" * 64, 300)


def test_blob_path_strips_the_algorithm():
    assert blob_path(f"sha256:{BLOB_HEX}") == f"blobs/sha256/{BLOB_HEX}"


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("../x", id="parent-directory"),
        pytest.param("/index.json", id="absolute"),
        pytest.param("./index.json", id="dot-prefix"),
        pytest.param(f"blobs/sha256/{BLOB_HEX.upper()}", id="uppercase-hex-blob-name"),
        pytest.param(f"blobs/sha256/{BLOB_HEX}/../../../etc/passwd", id="traversal-after-blob-name"),
        pytest.param(f"blobs/sha256/../{BLOB_HEX}", id="traversal-inside-blobs"),
        pytest.param(f"blobs/sha512/{BLOB_HEX}", id="other-algorithm-directory"),
        pytest.param("blobs/sha256/abc", id="short-blob-name"),
        pytest.param("inventory.json", id="the-inventory-itself"),
        pytest.param("extra.txt", id="file-outside-the-layout"),
    ],
)
def test_path_outside_the_layout_is_refused(path):
    assert "not a file of an OCI layout" in str(refuse(body_with_files(record(path, BLOB_HEX))))


@pytest.mark.parametrize(
    "path",
    ["oci-layout", "index.json", f"blobs/sha256/{BLOB_HEX}"],
)
def test_layout_paths_are_recognised(path):
    assert is_layout_path(path)


def test_blob_listed_under_another_digest_is_refused():
    error = refuse(body_with_files(record(f"blobs/sha256/{BLOB_HEX}", OTHER_HEX)))
    assert "another digest" in str(error)


def test_duplicate_path_is_refused():
    error = refuse(body_with_files(record("index.json", OTHER_HEX), record("index.json", OTHER_HEX)))
    assert "listed twice" in str(error)


@pytest.mark.parametrize(
    "item",
    [
        pytest.param(record("index.json", OTHER_HEX, mode=0o755), id="extra-key"),
        pytest.param({"path": "index.json", "sha256": OTHER_HEX}, id="missing-size"),
        pytest.param("index.json", id="not-an-object"),
    ],
)
def test_file_record_with_other_keys_is_refused(item):
    assert "exactly path, sha256 and size" in str(refuse(body_with_files(item)))


@pytest.mark.parametrize(
    "sha256",
    [
        pytest.param(OTHER_HEX.upper(), id="uppercase"),
        pytest.param(OTHER_HEX[:-1], id="63-hex"),
        pytest.param(f"sha256:{OTHER_HEX}", id="with-algorithm-prefix"),
        pytest.param("z" * 64, id="not-hex"),
    ],
)
def test_bad_sha256_is_refused(sha256):
    assert "files[0].sha256" in str(refuse(body_with_files(record("index.json", sha256))))


@pytest.mark.parametrize(
    "size",
    [pytest.param(-1, id="negative"), pytest.param(True, id="bool"), pytest.param("1", id="string")],
)
def test_bad_file_size_is_refused(size):
    assert "files[0].size" in str(refuse(body_with_files(record("index.json", OTHER_HEX, size))))


def test_artifact_with_bad_digest_is_refused():
    body = json.loads(sample().to_bytes())
    body["artifacts"][0]["digest"] = "sha256:../../x"
    assert "artifacts[0].digest" in str(refuse(json.dumps(body).encode()))


@pytest.mark.parametrize(
    ("key", "value"),
    [pytest.param("apiVersion", "mirror/v2", id="api-version"), pytest.param("kind", "Bundle", id="kind")],
)
def test_wrong_api_version_or_kind_is_refused(key, value):
    body = json.loads(sample().to_bytes())
    body[key] = value
    refuse(json.dumps(body).encode())


def test_inventory_that_is_not_an_object_is_refused():
    refuse(b"[]")


def test_duplicate_json_key_in_inventory_is_refused():
    raw = sample().to_bytes().replace(b'"bundleId":"b-1"', b'"bundleId":"b-1","bundleId":"b-2"')
    with pytest.raises(VerificationError) as caught:
        parse_inventory(raw)
    assert caught.value.exit_code == 3


def test_unknown_top_level_field_is_refused():
    body = json.loads(sample().to_bytes())
    body["signedBy"] = "someone"
    assert "signedBy" in str(refuse(json.dumps(body).encode()))


@pytest.mark.parametrize("name", ["files", "artifacts"])
def test_missing_file_or_artifact_list_is_refused(name):
    body = json.loads(sample().to_bytes())
    del body[name]
    assert name in str(refuse(json.dumps(body).encode()))


# --- Kind-specific artifact fields: each type-checked at parse time, so review and import never meet a wrong type.

OID = "1" * 40


def with_artifact_fields(kind: str = "image", **fields: Any) -> bytes:
    body = json.loads(sample().to_bytes())
    body["artifacts"][0] = {**body["artifacts"][0], "kind": kind, **fields}
    return json.dumps(body).encode()


WELL_TYPED = [
    ("image", {"platforms": ["linux/amd64"], "sourceDigest": "sha256:" + "f" * 64, "foundBy": ["chart a"]}),
    ("image", {"via": "listed"}),
    ("chart", {"chart": "app", "version": "1.0.0", "repo": "https://c.example", "via": "dependency"}),
    ("chart", {"archiveSha256": "a" * 64, "requiredBy": "parent@1.0.0"}),
    ("git", {"name": "fleet", "ref": {"branch": "main"}, "refName": "refs/heads/main", "commit": OID}),
    ("git", {"heads": {"refs/heads/main": OID}, "prerequisites": [OID], "unchanged": {"refs/tags/v1": "2" * 64}}),
    ("git", {"refName": None}),
    ("flux", {"path": "clusters/prod", "git": "fleet", "objects": 3}),
    ("flux", {"git": None, "objects": 0}),
    ("image", {"someFutureField": {"any": ["thing"]}}),
]


@pytest.mark.parametrize(("kind", "fields"), WELL_TYPED, ids=[f"{k}-{i}" for i, (k, _) in enumerate(WELL_TYPED)])
def test_well_typed_artifact_fields_parse_into_extra(kind, fields):
    [artifact] = parse_inventory(with_artifact_fields(kind, **fields)).artifacts
    assert {k: artifact.extra[k] for k in fields} == fields


WRONGLY_TYPED = [
    ("image", "foundBy", 5),
    ("image", "foundBy", ["ok", 5]),
    ("image", "platforms", "linux/amd64"),
    ("image", "sourceDigest", "sha256:short"),
    ("image", "via", ["listed"]),
    ("chart", "chart", None),
    ("chart", "version", 1.5),
    ("chart", "repo", {"url": "x"}),
    ("chart", "archiveSha256", "ABC"),
    ("chart", "requiredBy", ["x"]),
    ("git", "name", 7),
    ("git", "ref", {"branch": 1}),
    ("git", "refName", 3),
    ("git", "commit", "--output=/tmp/x"),
    ("git", "heads", ["refs/heads/main"]),
    ("git", "heads", {"refs/heads/main": "abc123"}),
    ("git", "prerequisites", "abc"),
    ("git", "unchanged", {"refs/heads/main": 5}),
    ("flux", "path", 5),
    ("flux", "git", 5),
    ("flux", "objects", "many"),
    ("flux", "objects", -1),
    ("flux", "objects", True),
]


@pytest.mark.parametrize(
    ("kind", "field", "value"), WRONGLY_TYPED, ids=[f"{k}-{f}-{i}" for i, (k, f, _) in enumerate(WRONGLY_TYPED)]
)
def test_a_wrongly_typed_artifact_field_is_refused_naming_artifact_and_field(kind, field, value):
    error = refuse(with_artifact_fields(kind, **{field: value}))
    assert error.exit_code == 3
    assert f"artifacts[0].{field}" in error.message


def test_a_deeply_nested_inventory_is_refused_as_malformed():
    with pytest.raises(VerificationError) as caught:
        parse_inventory(b'{"apiVersion": "mirror/v1", "artifacts": ' + b"[" * 100_000 + b"]" * 100_000 + b"}")
    assert caught.value.exit_code == 3
    assert "inventory.json" in caught.value.message


# --- What the officer's report names: the MirrorSets collected ------------------------------------------------


def test_the_mirrorset_names_round_trip_through_bytes():
    inventory = Inventory("b-1", "2025-01-01T00:00:00Z", "mirror 0.1.0", (), (), mirror_sets=("platform", "apps"))
    assert parse_inventory(inventory.to_bytes()).mirror_sets == ("platform", "apps")


def test_an_inventory_without_mirrorset_names_writes_no_field_and_parses_to_no_names():
    raw = sample().to_bytes()
    assert "mirrorSets" not in json.loads(raw)
    assert parse_inventory(raw).mirror_sets == ()


@pytest.mark.parametrize("value", ['"platform"', "[1]", '[""]', '{"name": "platform"}'])
def test_mirrorset_names_that_are_not_a_list_of_names_are_refused(value):
    body = json.loads(sample().to_bytes())
    body["mirrorSets"] = json.loads(value)
    assert "mirrorSets" in str(refuse(json.dumps(body).encode()))


def incremental(expected: tuple[ExpectedBlob, ...] = ()) -> Inventory:
    """sample() as a nothing-changed night: its image's manifest is not among the files."""
    full = sample()
    return replace(full, base=BaseRecord("sha256:" + "c" * 64, "base-id", "2026-01-01T00:00:00Z"), expected=expected)


def test_inventory_bytes_are_compact_json_without_indentation():
    raw = sample().to_bytes()
    assert raw.count(b"\n") == 1 and b": " not in raw and b", " not in raw


def test_an_artifact_not_among_the_files_of_an_incremental_bundle_is_expected_without_being_listed():
    inventory = parse_inventory(incremental().to_bytes())
    assert inventory.expected == ()
    assert inventory.expected_sizes == {"sha256:" + "d" * 64: 1234}


def test_a_full_bundle_expects_nothing_even_of_an_artifact_it_lacks():
    assert sample().expected_sizes == {}


def test_an_older_incremental_inventory_listing_the_artifacts_manifests_reads_the_same():
    listed = incremental((ExpectedBlob("sha256:" + "d" * 64, 1234), ExpectedBlob("sha256:" + "f" * 64, 10)))
    inventory = parse_inventory(listed.to_bytes())
    assert inventory.expected_sizes == {"sha256:" + "d" * 64: 1234, "sha256:" + "f" * 64: 10}


def test_an_artifact_left_to_the_base_with_another_size_than_expected_is_refused():
    raw = incremental((ExpectedBlob("sha256:" + "d" * 64, 999),)).to_bytes()
    with pytest.raises(BundleFormatError, match=r"artifacts\[0\].*another size"):
        parse_inventory(raw)
