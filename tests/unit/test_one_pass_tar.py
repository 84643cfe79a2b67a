"""OnePassTar: members reserved before their bytes arrive, filled in any order, the rest appended behind them."""

from __future__ import annotations

import hashlib
import tarfile
from pathlib import Path

import pytest

from mirror.bundle.inventory import INVENTORY_PATH
from mirror.bundle.layout import LayoutWriter
from mirror.bundle.reader import TarBundle, read_small
from mirror.bundle.tarball import OnePassTar, append_staged, write_tar
from mirror.errors import MirrorError
from mirror.oci.digest import sha256_digest

FIELDS = {"bundle_id": "b", "created": "2025-01-01T00:00:00Z", "tool": "t", "artifacts": ()}


def test_reserved_members_filled_in_any_order_read_back_whole(tmp_path: Path) -> None:
    blobs = {f"blobs/sha256/{n}": bytes([n]) * (700 * n + 1) for n in range(1, 5)}
    tar = OnePassTar(tmp_path / "t.tar")
    tar.reserve([(name, len(data)) for name, data in blobs.items()])
    for name in reversed(blobs):
        with tar.filling(name) as slot:
            slot.write(blobs[name][:100])
            slot.seek(0)  # a download that starts over
            slot.truncate()
            slot.write(blobs[name])
    tar.finish()
    reader = TarBundle(tmp_path / "t.tar")
    for name, data in blobs.items():
        with reader.open(name) as handle:
            assert handle.read() == data
    with tarfile.open(tmp_path / "t.tar") as archive:
        assert archive.getnames() == ["blobs", "blobs/sha256", *blobs]


def test_a_member_never_filled_refuses_to_finish(tmp_path: Path) -> None:
    with OnePassTar(tmp_path / "t.tar") as tar:
        tar.reserve([("blobs/sha256/a", 10)])
        with pytest.raises(MirrorError, match="never filled"):
            tar.finish()


def test_more_bytes_than_reserved_are_refused(tmp_path: Path) -> None:
    with OnePassTar(tmp_path / "t.tar") as tar:
        tar.reserve([("blobs/sha256/a", 10)])
        with pytest.raises(MirrorError, match="more than the 10 bytes"), tar.filling("blobs/sha256/a") as slot:
            slot.write(b"x" * 11)


def test_fewer_bytes_than_reserved_leave_the_member_unfilled(tmp_path: Path) -> None:
    with OnePassTar(tmp_path / "t.tar") as tar:
        tar.reserve([("blobs/sha256/a", 10)])
        with pytest.raises(MirrorError, match="4 bytes written where 10"), tar.filling("blobs/sha256/a") as slot:
            slot.write(b"x" * 4)
        with pytest.raises(MirrorError, match="never filled"):
            tar.finish()


def test_a_layout_writer_puts_reserved_blobs_in_the_tar_and_the_rest_after_them(tmp_path: Path) -> None:
    tar = OnePassTar(tmp_path / "t.tar")
    writer = LayoutWriter(tmp_path / "staging", tar)
    small, big = b"manifest", b"layer" * 1000
    writer.put_bytes(sha256_digest(small), small)
    writer.reserve({sha256_digest(big): len(big)})
    with writer.blob_file(sha256_digest(big), len(big)) as handle:
        handle.write(big)
    assert not (tmp_path / "staging" / "blobs" / "sha256" / hashlib.sha256(big).hexdigest()).exists()
    inventory = writer.finish([], FIELDS)
    (tmp_path / "staging" / "signatures").mkdir()
    (tmp_path / "staging" / "signatures" / "s.json").write_bytes(b"{}")
    append_staged(tar, tmp_path / "staging", inventory, ["signatures/s.json"])
    tar.finish()
    with tarfile.open(tmp_path / "t.tar") as archive:
        names = archive.getnames()
    assert names == [
        "blobs",
        "blobs/sha256",
        f"blobs/sha256/{hashlib.sha256(big).hexdigest()}",
        "oci-layout",
        "index.json",
        f"blobs/sha256/{hashlib.sha256(small).hexdigest()}",
        INVENTORY_PATH,
        "signatures",
        "signatures/s.json",
    ]
    assert read_small(TarBundle(tmp_path / "t.tar"), INVENTORY_PATH, 1 << 20) == inventory.to_bytes()


def test_write_tar_of_a_staging_layout_ends_with_the_inventory(tmp_path: Path) -> None:
    writer = LayoutWriter(tmp_path / "staging")
    writer.put_bytes(sha256_digest(b"x"), b"x")
    inventory = writer.finish([], FIELDS)
    write_tar(tmp_path / "staging", inventory, tmp_path / "t.tar")
    with tarfile.open(tmp_path / "t.tar") as archive:
        assert archive.getnames()[-1] == INVENTORY_PATH


def test_a_download_still_writing_after_the_tar_was_closed_is_refused(tmp_path: Path) -> None:
    tar = OnePassTar(tmp_path / "t.tar")
    tar.reserve([("blobs/sha256/a", 10)])
    with pytest.raises(MirrorError, match="closed while a blob"), tar.filling("blobs/sha256/a") as slot:
        tar.close()  # an interrupted collect unwinding while a worker thread still downloads
        slot.write(b"x" * 10)
