"""LayoutWriter: small blobs put whole (manifests) are held until the layout is finished or a caller needs their
file, so that one the base chain carries, and that is dropped, never costs a file (a nothing-changed night drops
every manifest it resolved)."""

from __future__ import annotations

import json
from pathlib import Path

from mirror.bundle.inventory import blob_path
from mirror.bundle.layout import LayoutWriter
from mirror.oci.digest import sha256_digest

FIELDS = {"bundle_id": "b", "created": "2025-01-01T00:00:00Z", "tool": "t", "artifacts": ()}


def _blobs(root: Path) -> list[str]:
    return sorted(p.name for p in (root / "blobs" / "sha256").iterdir())


def test_a_blob_put_then_dropped_never_reaches_the_disk(tmp_path: Path) -> None:
    writer = LayoutWriter(tmp_path / "layout")
    data = b'{"schemaVersion": 2}'
    digest = sha256_digest(data)
    writer.put_bytes(digest, data)
    assert writer.has(digest) and writer.blob_sizes() == {digest: len(data)}
    assert _blobs(tmp_path / "layout") == []
    writer.drop(digest)
    inventory = writer.finish([], FIELDS)
    assert not writer.has(digest)
    assert _blobs(tmp_path / "layout") == []
    assert blob_path(digest) not in {f.path for f in inventory.files}


def test_a_blob_put_is_written_when_the_layout_is_finished_and_listed_with_its_hash(tmp_path: Path) -> None:
    writer = LayoutWriter(tmp_path / "layout")
    data = b"manifest bytes"
    digest = sha256_digest(data)
    writer.put_bytes(digest, data)
    inventory = writer.finish([], FIELDS)
    assert (tmp_path / "layout" / blob_path(digest)).read_bytes() == data
    [record] = [f for f in inventory.files if f.path == blob_path(digest)]
    assert (f"sha256:{record.sha256}", record.size) == (digest, len(data))
    assert json.loads((tmp_path / "layout" / "inventory.json").read_bytes())["files"]


def test_the_location_of_a_blob_put_holds_its_bytes(tmp_path: Path) -> None:
    writer = LayoutWriter(tmp_path / "layout")
    data = b"read by a path: a chart archive, a signature layer"
    digest = sha256_digest(data)
    writer.put_bytes(digest, data)
    assert writer.blob_location(digest).read_bytes() == data
    assert writer.read_bytes(digest) == data


def test_a_blob_put_is_read_back_without_its_file_being_written(tmp_path: Path) -> None:
    writer = LayoutWriter(tmp_path / "layout")
    data = b"a manifest the collect parses again"
    digest = sha256_digest(data)
    writer.put_bytes(digest, data)
    assert writer.read_bytes(digest) == data
    assert _blobs(tmp_path / "layout") == []


def test_blobs_beyond_what_is_held_in_memory_are_written_at_once(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr("mirror.bundle.layout.HELD_BYTES", 10)
    writer = LayoutWriter(tmp_path / "layout")
    small, large = b"12345678", b"more than ten bytes"
    writer.put_bytes(sha256_digest(small), small)
    writer.put_bytes(sha256_digest(large), large)
    assert _blobs(tmp_path / "layout") == [sha256_digest(large).removeprefix("sha256:")]
    writer.finish([], FIELDS)
    assert len(_blobs(tmp_path / "layout")) == 2
