"""How verify hashes a bundle's files (issue 19): the largest first, each thread into one page-aligned buffer of
its own, the problems in the order of the files given; see docs/bundle-format.md ("Verifying a bundle")."""

from __future__ import annotations

import ctypes
import hashlib
import io
import mmap
import tarfile
from collections.abc import Mapping
from pathlib import Path
from typing import BinaryIO, cast

import pytest

import mirror.bundle.reader as reader_module
import mirror.bundle.verify as verify
from mirror.bundle.inventory import FileRecord
from mirror.bundle.reader import TarBundle
from mirror.bundle.verify import check_file_hashes
from mirror.limits import DEFAULT_LIMITS


class _Handle(io.BytesIO):
    def __init__(self, data: bytes, buffers: list[object], addresses: list[int]) -> None:
        super().__init__(data)
        self._buffers = buffers
        self._addresses = addresses

    def readinto(self, buffer):  # type: ignore[no-untyped-def,override]
        self._buffers.append(memoryview(buffer).obj)
        self._addresses.append(ctypes.addressof(ctypes.c_char.from_buffer(buffer)))
        return super().readinto(buffer)


class MemoryReader:
    """A bundle in memory that records the order files are opened in and the buffers they are read into."""

    location = "memory"

    def __init__(self, files: dict[str, bytes]) -> None:
        self._files = files
        self.opened: list[str] = []
        self.buffers: list[object] = []
        self.addresses: list[int] = []  # where each read lands in memory

    def files(self) -> Mapping[str, int]:
        return {path: len(data) for path, data in self._files.items()}

    def open(self, path: str) -> BinaryIO:
        self.opened.append(path)
        return cast("BinaryIO", _Handle(self._files[path], self.buffers, self.addresses))


def record(path: str, data: bytes) -> FileRecord:
    return FileRecord(path, hashlib.sha256(data).hexdigest(), len(data))


@pytest.fixture
def one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(verify, "_cores", lambda: 1)


def no_bytes(_: int) -> None:
    pass


def test_the_largest_files_are_hashed_first(one_thread: None) -> None:
    files = {"a": b"x" * 10, "b": b"x" * 300, "c": b"x" * 20}
    reader = MemoryReader(files)
    records = [record(path, data) for path, data in files.items()]

    check_file_hashes(reader, records, jobs=1, limits=DEFAULT_LIMITS, on_bytes=no_bytes)

    assert reader.opened == ["b", "c", "a"]


def test_problems_keep_the_order_of_the_files_given_whatever_order_they_are_hashed_in(one_thread: None) -> None:
    files = {"a": b"x" * 10, "b": b"x" * 300, "c": b"x" * 20}
    records = [FileRecord(path, "0" * 64, len(data)) for path, data in files.items()]

    problems = check_file_hashes(MemoryReader(files), records, jobs=1, limits=DEFAULT_LIMITS, on_bytes=no_bytes)

    assert [p.message.split(":")[0] for p in problems] == ["a", "b", "c"]


def test_a_thread_reads_every_file_it_hashes_into_the_same_buffer(one_thread: None) -> None:
    files = {"a": b"x" * 10, "b": b"y" * 300, "c": b"z" * 20}
    reader = MemoryReader(files)
    records = [record(path, data) for path, data in files.items()]

    check_file_hashes(reader, records, jobs=1, limits=DEFAULT_LIMITS, on_bytes=no_bytes)

    assert len(reader.buffers) >= 3
    assert len({id(buffer) for buffer in reader.buffers}) == 1


def test_every_file_is_still_checked_in_many_threads() -> None:
    files = {f"f{n}": bytes([n]) * (n * 1000 + 1) for n in range(12)}
    records = [record(p, d) for p, d in files.items()]
    records[3] = FileRecord(records[3].path, "0" * 64, records[3].size)
    records[9] = FileRecord(records[9].path, "0" * 64, records[9].size)

    problems = check_file_hashes(MemoryReader(files), records, jobs=4, limits=DEFAULT_LIMITS, on_bytes=no_bytes)

    assert [p.message.split(":")[0] for p in problems] == ["f3", "f9"]


def test_reads_land_in_a_buffer_that_starts_on_a_page() -> None:
    """malloc puts a big block 16 bytes past a 64-byte boundary, where the kernel's copy from the page cache ran
    4 to 5 times slower on the development machine (AMD EPYC): a third of verify's CPU."""
    files = {f"f{n}": bytes([n]) * 5000 for n in range(4)}
    reader = MemoryReader(files)

    check_file_hashes(
        reader, [record(p, d) for p, d in files.items()], jobs=4, limits=DEFAULT_LIMITS, on_bytes=no_bytes
    )

    assert reader.addresses
    assert all(address % mmap.PAGESIZE == 0 for address in reader.addresses)


def test_a_tar_bundle_s_big_member_is_read_straight_into_the_page_aligned_buffer(
    tmp_path: Path, one_thread: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not through the member reader's own buffer (malloc's, so misaligned, and one copy more)."""
    data = b"m" * (2 * 1024 * 1024 + 1)
    path = tmp_path / "b.tar"
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as archive:
        info = tarfile.TarInfo("blobs/sha256/big")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    reads: list[tuple[int, int]] = []  # where each read of the member landed, and how many bytes it brought
    window_readinto = reader_module._Window.readinto

    def recorded(self: reader_module._Window, buffer: memoryview) -> int:
        address = ctypes.addressof(ctypes.c_char.from_buffer(buffer))
        count = window_readinto(self, buffer)
        reads.append((address, count))
        return count

    monkeypatch.setattr(reader_module._Window, "readinto", recorded)

    problems = check_file_hashes(
        TarBundle(path), [record("blobs/sha256/big", data)], jobs=1, limits=DEFAULT_LIMITS, on_bytes=no_bytes
    )

    assert problems == []
    assert sum(count for _, count in reads) == len(data)
    assert all(address % mmap.PAGESIZE == 0 for address, count in reads if count)
