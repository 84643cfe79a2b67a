"""Split bundles: data volumes of at most SIZE cut from one ustar stream, read back across volume borders, and
every wrong volume (missing, reordered, foreign, damaged, truncated, stray) named with what was expected."""

from __future__ import annotations

import hashlib
import shutil
import tarfile
from pathlib import Path

import pytest

from mirror.bundle.inventory import VolumeRecord, blob_path, parse_inventory
from mirror.bundle.layout import LayoutWriter
from mirror.bundle.opening import open_bundle
from mirror.bundle.reader import opened
from mirror.bundle.signatures import add_envelope, read_envelopes
from mirror.bundle.splitting import VolumeSink, check_split_out, write_split
from mirror.bundle.tarball import write_tar
from mirror.bundle.verify import check_bundle
from mirror.bundle.volumes import SplitBundle, volume_path
from mirror.errors import BundleFormatError, UsageError
from mirror.oci.digest import sha256_digest

ENVELOPE = b'{"payload": "e30=", "payloadType": "application/vnd.in-toto+json", "signatures": []}\n'


def make_blobs(sizes: list[int], salt: bytes = b"") -> list[bytes]:
    return [(hashlib.sha256(salt + bytes([i])).digest() * (size // 32 + 1))[:size] for i, size in enumerate(sizes)]


def make_bundle(directory: Path, blobs: list[bytes], volume_size: int, signatures: list[bytes] = ()) -> Path:
    """A split bundle of `blobs` at directory/night.tar.000; returns the head volume."""
    directory.mkdir(parents=True, exist_ok=True)
    staging = directory / "staging"
    writer = LayoutWriter(staging)
    for blob in blobs:
        writer.put_bytes(sha256_digest(blob), blob)
    inventory = writer.finish(
        [], {"bundle_id": "b-1", "created": "2025-01-01T00:00:00Z", "tool": "test", "artifacts": ()}
    )

    def sign(_inventory):
        return [add_envelope(staging, raw) for raw in signatures]

    _, paths = write_split(staging, inventory, directory / "night.tar", volume_size, sign)
    shutil.rmtree(staging)
    return paths[0]


def data_volumes(head: Path) -> list[Path]:
    return sorted(p for p in head.parent.iterdir() if p.name.startswith("night.tar.") and p != head)


def problems_of(head: Path) -> list:
    return check_bundle(open_bundle(head)).problems


# -- the sink


def test_sink_cuts_a_stream_into_volumes_of_at_most_size(tmp_path: Path) -> None:
    data = bytes(range(256)) * 40  # 10240 bytes
    sink = VolumeSink(lambda n: tmp_path / f"v.{n:03d}", 3000)
    for start in range(0, len(data), 700):
        sink.write(data[start : start + 700])
    sink.close()
    sizes = [p.stat().st_size for p in sink.paths]
    assert sizes == [3000, 3000, 3000, 1240]
    assert b"".join(p.read_bytes() for p in sink.paths) == data
    assert [(sha, size) for _, sha, size in sink.volumes] == [
        (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_size) for p in sink.paths
    ]


def test_sink_leaves_no_empty_volume_when_the_stream_ends_exactly_at_a_border(tmp_path: Path) -> None:
    sink = VolumeSink(lambda n: tmp_path / f"v.{n:03d}", 1024)
    sink.write(b"x" * 3072)
    sink.close()
    assert [p.name for p in sink.paths] == ["v.001", "v.002", "v.003"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.001", "v.002", "v.003"]


def test_abort_removes_every_volume_written(tmp_path: Path) -> None:
    sink = VolumeSink(lambda n: tmp_path / f"v.{n:03d}", 1024)
    sink.write(b"x" * 2500)
    sink.abort()
    assert list(tmp_path.iterdir()) == []


# -- writing and reading back


def test_members_straddling_borders_read_back_whole(tmp_path: Path) -> None:
    blobs = make_blobs([5000, 1, 700, 12000, 513])
    head = make_bundle(tmp_path, blobs, 1000)
    volumes = data_volumes(head)
    assert len(volumes) > 10
    assert all(p.stat().st_size <= 1000 for p in volumes)
    reader = open_bundle(head)
    assert isinstance(reader, SplitBundle)
    assert problems_of(head) == []
    for blob in blobs:
        with opened(reader, blob_path(sha256_digest(blob))) as handle:
            assert handle.read() == blob


def test_a_member_read_from_the_middle_crosses_into_the_next_volume(tmp_path: Path) -> None:
    blob = make_blobs([4000])[0]
    head = make_bundle(tmp_path, [blob], 1024)
    with opened(open_bundle(head), blob_path(sha256_digest(blob))) as handle:
        handle.seek(1500)
        assert handle.read(2000) == blob[1500:3500]


def test_members_beginning_exactly_at_borders_read_back_whole(tmp_path: Path) -> None:
    # Two directory headers and one member header fill the first 1536 bytes; every 1024-byte member and the
    # next header then fill 1536 more, so each member's data starts exactly at a volume border.
    blobs = make_blobs([1024, 1024, 1024])
    head = make_bundle(tmp_path, blobs, 1536)
    volumes = data_volumes(head)
    assert [p.stat().st_size for p in volumes] == [1536, 1536, 1536, 1536, 512]
    in_stream_order = sorted(blobs, key=sha256_digest)
    assert [volumes[n].read_bytes()[:1024] for n in (1, 2, 3)] == in_stream_order
    reader = open_bundle(head)
    assert check_bundle(reader).problems == []
    for blob in blobs:
        with opened(reader, blob_path(sha256_digest(blob))) as handle:
            assert handle.read() == blob


def test_volumes_as_small_as_one_block_work(tmp_path: Path) -> None:
    blobs = make_blobs([900, 100])
    head = make_bundle(tmp_path, blobs, 512)
    assert {p.stat().st_size for p in data_volumes(head)} == {512}
    assert problems_of(head) == []


def test_the_head_holds_the_inventory_signatures_and_index_but_no_blob(tmp_path: Path) -> None:
    head = make_bundle(tmp_path, make_blobs([3000]), 1024, signatures=[ENVELOPE])
    with tarfile.open(head) as tar:
        names = tar.getnames()
    assert names[0] == "inventory.json"
    assert set(names) == {"inventory.json", "signatures", f"signatures/{hashlib.sha256(ENVELOPE).hexdigest()}.json"} | {
        "oci-layout",
        "index.json",
    }


def test_the_inventory_lists_every_data_volume_with_its_digest_and_size(tmp_path: Path) -> None:
    head = make_bundle(tmp_path, make_blobs([3000, 2000]), 1024)
    with tarfile.open(head) as tar:
        inventory = parse_inventory(tar.extractfile("inventory.json").read())
    assert inventory.volumes == tuple(
        VolumeRecord(p.name, hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_size) for p in data_volumes(head)
    )


def test_no_temporary_file_is_left_behind(tmp_path: Path) -> None:
    make_bundle(tmp_path, make_blobs([3000]), 1024)
    assert [p.name for p in tmp_path.iterdir() if ".partial" in p.name] == []


def test_existing_volumes_of_the_same_name_are_never_overwritten(tmp_path: Path) -> None:
    (tmp_path / "night.tar.004").write_bytes(b"old")
    with pytest.raises(UsageError, match=r"night\.tar\.004: already exists"):
        check_split_out(tmp_path / "night.tar")


def test_split_output_must_be_named_tar(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"\.tar"):
        check_split_out(tmp_path / "night")


def test_files_are_listed_before_verification_from_the_headers(tmp_path: Path) -> None:
    blobs = make_blobs([3000])
    head = make_bundle(tmp_path, blobs, 1024)
    assert blob_path(sha256_digest(blobs[0])) in open_bundle(head).files()


def test_approval_appends_to_the_head_and_leaves_data_volumes_untouched(tmp_path: Path) -> None:
    head = make_bundle(tmp_path, make_blobs([3000, 100]), 1024)
    before = {p.name: p.read_bytes() for p in data_volumes(head)}
    add_envelope(head, ENVELOPE)
    assert {p.name: p.read_bytes() for p in data_volumes(head)} == before
    reader = open_bundle(head)
    assert list(read_envelopes(reader)[0].values()) == [ENVELOPE]
    assert check_bundle(reader).problems == []


# -- wrong volumes


@pytest.fixture
def split(tmp_path: Path) -> Path:
    """Four data volumes of 2048 bytes and a shorter fifth."""
    return make_bundle(tmp_path / "a", make_blobs([2000, 3000, 2500]), 2048)


def only(problems: list, code: str) -> str:
    assert [p.code for p in problems] == [code], problems
    return problems[0].message


def test_a_missing_volume_is_named_with_its_digest_and_size(split: Path) -> None:
    volume = volume_path(split.with_name("night.tar"), 2)
    listed = open_bundle(split).listed_volumes()[1]
    volume.unlink()
    message = only(problems_of(split), "VOLUME_MISSING")
    assert str(volume) in message
    assert listed.sha256 in message and f"{listed.size} bytes" in message


def test_swapped_volumes_are_each_named_as_the_other(split: Path) -> None:
    first, second = (volume_path(split.with_name("night.tar"), n) for n in (1, 2))
    first.rename(split.with_name("swap"))
    second.rename(first)
    split.with_name("swap").rename(second)
    problems = problems_of(split)
    assert [p.code for p in problems] == ["VOLUME_ORDER", "VOLUME_ORDER"]
    assert problems[0].message.startswith(f"{first}: holds data volume 2 (night.tar.002), not volume 1")
    assert problems[1].message.startswith(f"{second}: holds data volume 1 (night.tar.001), not volume 2")


def test_a_volume_from_another_bundle_is_refused(split: Path, tmp_path: Path) -> None:
    other = make_bundle(tmp_path / "b", make_blobs([2000, 3000, 2500], salt=b"other"), 2048)
    volume = volume_path(split.with_name("night.tar"), 3)
    shutil.copyfile(volume_path(other.with_name("night.tar"), 3), volume)
    message = only(problems_of(split), "VOLUME_DIGEST")
    expected = open_bundle(split).listed_volumes()[2].sha256
    found = hashlib.sha256(volume.read_bytes()).hexdigest()
    assert message == (
        f"{volume}: damaged or from another bundle (expected sha256 {expected}, 2048 bytes; "
        f"found sha256 {found}, 2048 bytes)"
    )


def test_a_damaged_volume_is_named(split: Path) -> None:
    volume = volume_path(split.with_name("night.tar"), 4)
    data = bytearray(volume.read_bytes())
    data[100] ^= 1
    volume.write_bytes(bytes(data))
    assert str(volume) in only(problems_of(split), "VOLUME_DIGEST")


def test_a_truncated_volume_is_named(split: Path) -> None:
    volume = volume_path(split.with_name("night.tar"), 3)
    volume.write_bytes(volume.read_bytes()[:1000])
    message = only(problems_of(split), "VOLUME_SIZE")
    assert message.startswith(f"{volume}: truncated (expected sha256 ")
    assert "found sha256" in message and "1000 bytes)" in message


def test_a_stray_volume_beyond_the_list_is_named(split: Path) -> None:
    count = len(open_bundle(split).listed_volumes())
    stray = volume_path(split.with_name("night.tar"), 7)
    stray.write_bytes(b"\0" * 2048)
    message = only(problems_of(split), "VOLUME_UNLISTED")
    assert message.startswith(f"{stray}: not a volume of this bundle; the inventory lists {count} data volume(s)")


def test_a_volume_renamed_beyond_the_list_is_named_as_missing_and_as_what_it_holds(split: Path) -> None:
    last = len(open_bundle(split).listed_volumes())
    volume = volume_path(split.with_name("night.tar"), last)
    moved = volume_path(split.with_name("night.tar"), last + 3)
    volume.rename(moved)
    problems = problems_of(split)
    assert [p.code for p in problems] == ["VOLUME_MISSING", "VOLUME_UNLISTED"]
    assert problems[1].message.startswith(f"{moved}: it holds data volume {last} (night.tar.{last:03d})")


def test_a_bundle_whose_inventory_lists_volumes_must_be_opened_by_its_head(split: Path, tmp_path: Path) -> None:
    flat = tmp_path / "flat.tar"
    shutil.copyfile(split, flat)
    message = only(check_bundle(open_bundle(flat)).problems, "VOLUME_MISSING")
    assert "open the bundle by its head volume (night.tar.000)" in message


def test_reading_a_blob_of_an_unchecked_damaged_set_names_the_member(split: Path) -> None:
    volume_path(split.with_name("night.tar"), 1).unlink()
    reader = open_bundle(split)
    with pytest.raises(BundleFormatError, match="no member"):
        reader.open("blobs/sha256/" + "0" * 64)


def test_a_data_volume_given_as_the_bundle_is_a_usage_error_naming_the_head(split: Path) -> None:
    with pytest.raises(UsageError, match=r"a data volume of a split bundle") as caught:
        open_bundle(volume_path(split.with_name("night.tar"), 2))
    assert caught.value.hint == f"give its head volume: {split}"


def test_a_volume_set_renamed_as_a_whole_still_verifies(split: Path) -> None:
    for volume in sorted(split.parent.glob("night.tar.*")):
        volume.rename(volume.with_name(volume.name.replace("night", "friday")))
    assert problems_of(split.with_name("friday.tar.000")) == []


def test_a_plain_tar_named_like_a_head_volume_reads_as_a_plain_tar(tmp_path: Path) -> None:
    staging = tmp_path / "staging"
    writer = LayoutWriter(staging)
    blob = make_blobs([3000])[0]
    writer.put_bytes(sha256_digest(blob), blob)
    inventory = writer.finish([], {"bundle_id": "b", "created": "2025-01-01T00:00:00Z", "tool": "t", "artifacts": ()})
    write_tar(staging, inventory, tmp_path / "plain.tar.000")
    assert problems_of(tmp_path / "plain.tar.000") == []


def test_a_failure_before_the_set_is_complete_leaves_no_volume_and_no_temporary_file(tmp_path: Path) -> None:
    staging = tmp_path / "staging"
    writer = LayoutWriter(staging)
    for blob in make_blobs([3000, 2000]):
        writer.put_bytes(sha256_digest(blob), blob)
    inventory = writer.finish([], {"bundle_id": "b", "created": "2025-01-01T00:00:00Z", "tool": "t", "artifacts": ()})

    def sign(_inventory):
        raise RuntimeError("the signing key went away")

    with pytest.raises(RuntimeError):
        write_split(staging, inventory, tmp_path / "night.tar", 1024, sign)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["staging"]


def test_a_volume_name_taken_while_writing_is_never_replaced(tmp_path: Path) -> None:
    from mirror.bundle.splitting import _place

    temporary, final = tmp_path / ".v.partial", tmp_path / "night.tar.001"
    temporary.write_bytes(b"ours")
    final.write_bytes(b"someone else's")
    with pytest.raises(UsageError, match="appeared while the bundle was written"):
        _place(temporary, final)
    assert final.read_bytes() == b"someone else's"
