"""Where envelopes live in a bundle: signatures/<sha256>.json, added to a directory as a file and to a tar by
appending one member, without touching a byte of what was there before."""

from __future__ import annotations

import contextlib
import hashlib
import io
import tarfile
import threading
from pathlib import Path
from typing import Any

import pytest

from mirror.bundle.reader import DirectoryBundle, TarBundle, read_small
from mirror.bundle.signatures import add_envelope, is_signature_path, read_envelopes, signature_path
from mirror.bundle.ustar import BLOCK
from mirror.errors import UsageError

ENVELOPE = b'{"payload": "e30=", "payloadType": "application/vnd.in-toto+json", "signatures": []}\n'
OTHER_ENVELOPE = ENVELOPE.replace(b"e30=", b"e30")
LAYOUT = b'{"imageLayoutVersion": "1.0.0"}\n'
INDEX = b'{"schemaVersion": 2, "manifests": []}\n'
BLOB = bytes(range(256)) * 3 + b"tail"  # 772 bytes: not a whole number of blocks
BLOB_NAME = f"blobs/sha256/{hashlib.sha256(BLOB).hexdigest()}"
MEMBERS = {"oci-layout": LAYOUT, "index.json": INDEX, BLOB_NAME: BLOB, "inventory.json": b"{}\n"}


def name_of(raw: bytes) -> str:
    return f"signatures/{hashlib.sha256(raw).hexdigest()}.json"


@pytest.fixture
def directory_bundle(tmp_path: Path) -> Path:
    root = tmp_path / "bundle"
    for name, data in MEMBERS.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


@pytest.fixture
def tar_bundle(tmp_path: Path) -> Path:
    path = tmp_path / "bundle.tar"
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as archive:
        for name, data in MEMBERS.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            archive.addfile(info, io.BytesIO(data))
    return path


def end_of_last_member(path: Path) -> int:
    """Where the end-of-archive marker starts, by tarfile's own reading of the archive."""
    with tarfile.open(path, "r:") as archive:
        last = archive.getmembers()[-1]
    return last.offset_data + -(-last.size // BLOCK) * BLOCK


def tarfile_contents(path: Path) -> dict[str, bytes]:
    with tarfile.open(path, "r:") as archive:
        result = {}
        for member in archive.getmembers():
            handle = archive.extractfile(member)
            assert handle is not None
            result[member.name] = handle.read()
        return result


# --- names ------------------------------------------------------------------------------------------------


def test_signature_path_is_the_sha256_of_the_envelope() -> None:
    assert signature_path(ENVELOPE) == name_of(ENVELOPE)


@pytest.mark.parametrize(
    "path",
    [
        "signatures/" + "A" * 64 + ".json",
        "signatures/" + "a" * 63 + ".json",
        "signatures/" + "a" * 64,
        "signatures/" + "a" * 64 + ".json.bak",
        "signatures/sub/" + "a" * 64 + ".json",
        "x/signatures/" + "a" * 64 + ".json",
    ],
)
def test_other_names_under_signatures_are_not_signature_paths(path: str) -> None:
    assert not is_signature_path(path)


# --- directory bundles ------------------------------------------------------------------------------------


def test_add_envelope_to_a_directory_writes_it_under_its_hash(directory_bundle: Path) -> None:
    name = add_envelope(directory_bundle, ENVELOPE)
    assert name == name_of(ENVELOPE)
    assert (directory_bundle / name).read_bytes() == ENVELOPE


def test_add_envelope_to_a_directory_twice_keeps_one_file(directory_bundle: Path) -> None:
    first = add_envelope(directory_bundle, ENVELOPE)
    second = add_envelope(directory_bundle, ENVELOPE)
    assert first == second
    assert sorted(p.name for p in (directory_bundle / "signatures").iterdir()) == [Path(first).name]


def test_add_envelope_to_a_directory_leaves_other_files_alone(directory_bundle: Path) -> None:
    add_envelope(directory_bundle, ENVELOPE)
    for name, data in MEMBERS.items():
        assert (directory_bundle / name).read_bytes() == data


def test_two_envelopes_in_a_directory_are_both_read_back(directory_bundle: Path) -> None:
    add_envelope(directory_bundle, ENVELOPE)
    add_envelope(directory_bundle, OTHER_ENVELOPE)
    envelopes, problems = read_envelopes(DirectoryBundle(directory_bundle))
    assert problems == []
    assert envelopes == {name_of(ENVELOPE): ENVELOPE, name_of(OTHER_ENVELOPE): OTHER_ENVELOPE}


def test_add_envelope_where_there_is_no_bundle_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        add_envelope(tmp_path / "absent", ENVELOPE)


# --- tar bundles ------------------------------------------------------------------------------------------


def test_envelope_appended_to_a_tar_is_readable_with_exact_bytes(tar_bundle: Path) -> None:
    name = add_envelope(tar_bundle, ENVELOPE)
    reader = TarBundle(tar_bundle)
    assert reader.files()[name] == len(ENVELOPE)
    assert read_small(reader, name, 1 << 20) == ENVELOPE


def test_appending_to_a_tar_keeps_every_earlier_byte(tar_bundle: Path) -> None:
    before = tar_bundle.read_bytes()
    old_end = end_of_last_member(tar_bundle)
    assert before[old_end : old_end + 2 * BLOCK] == bytes(2 * BLOCK)  # the old end-of-archive marker
    add_envelope(tar_bundle, ENVELOPE)
    assert tar_bundle.read_bytes()[:old_end] == before[:old_end]


def test_earlier_members_read_the_same_after_appending(tar_bundle: Path) -> None:
    add_envelope(tar_bundle, ENVELOPE)
    reader = TarBundle(tar_bundle)
    for name, data in MEMBERS.items():
        assert read_small(reader, name, 1 << 20) == data


def test_appended_member_is_seen_by_tarfile_too(tar_bundle: Path) -> None:
    name = add_envelope(tar_bundle, ENVELOPE)
    assert tarfile_contents(tar_bundle) == {**MEMBERS, name: ENVELOPE}


def test_appended_tar_ends_with_an_end_of_archive_marker(tar_bundle: Path) -> None:
    add_envelope(tar_bundle, ENVELOPE)
    data = tar_bundle.read_bytes()
    assert len(data) % BLOCK == 0
    assert data[end_of_last_member(tar_bundle) :] == bytes(2 * BLOCK)


def test_adding_the_same_envelope_to_a_tar_twice_adds_one_member(tar_bundle: Path) -> None:
    add_envelope(tar_bundle, ENVELOPE)
    after_first = tar_bundle.read_bytes()
    add_envelope(tar_bundle, ENVELOPE)
    assert tar_bundle.read_bytes() == after_first
    assert len(TarBundle(tar_bundle).files()) == len(MEMBERS) + 1


def test_two_envelopes_appended_to_a_tar_are_both_read_back(tar_bundle: Path) -> None:
    add_envelope(tar_bundle, ENVELOPE)
    add_envelope(tar_bundle, OTHER_ENVELOPE)
    envelopes, problems = read_envelopes(TarBundle(tar_bundle))
    assert problems == []
    assert envelopes == {name_of(ENVELOPE): ENVELOPE, name_of(OTHER_ENVELOPE): OTHER_ENVELOPE}


def test_appended_member_is_a_plain_ustar_regular_file(tar_bundle: Path) -> None:
    name = add_envelope(tar_bundle, ENVELOPE)
    with tarfile.open(tar_bundle, "r:") as archive:
        member = archive.getmember(name)
    assert member.isreg()
    assert member.pax_headers == {}


# --- reading ----------------------------------------------------------------------------------------------


def test_file_whose_name_is_not_its_hash_is_refused(directory_bundle: Path) -> None:
    (directory_bundle / "signatures").mkdir()
    (directory_bundle / name_of(OTHER_ENVELOPE)).write_bytes(ENVELOPE)
    envelopes, problems = read_envelopes(DirectoryBundle(directory_bundle))
    assert envelopes == {}
    assert [p.code for p in problems] == ["ENVELOPE_INVALID"]


def test_misnamed_file_does_not_hide_a_correct_one(directory_bundle: Path) -> None:
    add_envelope(directory_bundle, ENVELOPE)
    (directory_bundle / name_of(b"something else")).write_bytes(OTHER_ENVELOPE)
    envelopes, problems = read_envelopes(DirectoryBundle(directory_bundle))
    assert envelopes == {name_of(ENVELOPE): ENVELOPE}
    assert [p.code for p in problems] == ["ENVELOPE_INVALID"]


def test_envelope_over_the_size_limit_is_refused(directory_bundle: Path) -> None:
    big = b" " * (64 * 1024 + 1)
    add_envelope(directory_bundle, big)
    envelopes, problems = read_envelopes(DirectoryBundle(directory_bundle))
    assert envelopes == {}
    assert [p.code for p in problems] == ["ENVELOPE_INVALID"]


def test_two_concurrent_approvals_of_one_tar_both_survive(tar_bundle: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Two officers' `mirror approve` scanning the archive for its end at the same moment: each must see the other's
    # member (the scan is taken under a lock on the tar), or one approval is written over by the other.
    from mirror.bundle import signatures

    real_scan, both_scanned = signatures.ustar.scan, threading.Barrier(2)

    def scan_then_wait_for_the_other(handle: Any, **kwargs: Any) -> Any:
        members = real_scan(handle, **kwargs)
        if "+" in handle.mode:  # the scan that decides where to write
            with contextlib.suppress(threading.BrokenBarrierError):
                both_scanned.wait(timeout=2)
        return members

    monkeypatch.setattr(signatures.ustar, "scan", scan_then_wait_for_the_other)
    threads = [threading.Thread(target=add_envelope, args=(tar_bundle, raw)) for raw in (ENVELOPE, OTHER_ENVELOPE)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    envelopes, problems = read_envelopes(TarBundle(tar_bundle))
    assert (set(envelopes), problems) == ({name_of(ENVELOPE), name_of(OTHER_ENVELOPE)}, [])
