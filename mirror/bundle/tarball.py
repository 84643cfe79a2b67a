"""Writing a bundle as a plain ustar file in one pass: blobs reserved before their bytes arrive, then filled in
place by parallel downloads, the rest appended, the inventory and its signatures last. See
docs/bundle-format.md ("Tar bundles").
"""

from __future__ import annotations

import os
import tarfile
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from mirror.bundle import ustar
from mirror.bundle.inventory import INVENTORY_PATH, Inventory
from mirror.errors import MirrorError, UsageError
from mirror.fsutil import create_exclusive

# Fixed metadata keeps tars of the same content byte-identical.
_MTIME = 0
_CHUNK = 1024 * 1024


def member_header(name: str, size: int = 0, directory: bool = False) -> bytes:
    """A plain ustar header for a bundle member (every volume and tar mirror writes uses it)."""
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.uid, info.gid, info.uname, info.gname = size, _MTIME, 0, 0, "", ""
    info.type, info.mode = (tarfile.DIRTYPE, 0o755) if directory else (tarfile.REGTYPE, 0o644)
    try:
        return info.tobuf(format=tarfile.USTAR_FORMAT)
    except ValueError as exc:  # what ustar cannot express, e.g. a member of 8 GiB or more
        raise UsageError(
            f"{name}: {size} bytes cannot be stored in a plain ustar member ({exc})",
            hint="write the bundle as a directory instead",
        ) from exc


def _padded(size: int) -> int:
    return size + -size % ustar.BLOCK


class _Slot:
    """The data region of one reserved member: written at its offset, so writers never share a position.

    Behaves as the empty, seekable file a blob download expects (write, and seek(0) + truncate() to start over).
    """

    def __init__(self, tar: OnePassTar, name: str, offset: int, size: int) -> None:
        self._tar = tar
        self.name = name
        self._offset = offset
        self.size = size
        self.filled = 0

    def write(self, data: bytes | memoryview) -> int:
        view = memoryview(data)
        if self.filled + len(view) > self.size:
            raise MirrorError(f"{self.name}: more than the {self.size} bytes reserved for it")
        self._tar.write_at(view, self._offset + self.filled)
        self.filled += len(view)
        return len(data)

    def seek(self, position: int, whence: int = os.SEEK_SET) -> int:
        if (position, whence) != (0, os.SEEK_SET):
            raise ValueError("a slot is only ever rewound to its start")
        self.filled = 0
        return 0

    def truncate(self, size: int | None = None) -> int:
        return 0  # what was written is overwritten from the start

    def flush(self) -> None:
        pass


class OnePassTar:
    """A ustar file under construction: each byte of it written once.

    `reserve` writes the headers of blobs whose sizes are known before they are downloaded and leaves room for
    their data; `filling` hands a download its region. Everything else is appended behind them (`append`), and
    `finish` closes the archive. Thread-safe. Until `finish`, the file is incomplete: the caller keeps it under
    a temporary name and removes it on failure.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle = create_exclusive(path)
        self._descriptor = self._handle.fileno()
        self._end = 0
        self._lock = threading.Lock()
        self._directories: set[str] = set()
        self._names: set[str] = set()
        self._slots: dict[str, _Slot] = {}
        self._filled: set[str] = set()
        self._finished = False
        # Downloads write from worker threads that an interrupt does not wait for: the descriptor is closed only
        # once no write is under way, so a late write can never land in a file opened later under its number.
        self._writers = threading.Lock()
        self._writing = 0
        self._closed = False

    def write_at(self, data: memoryview, offset: int) -> None:
        with self._writers:
            if self._closed:
                raise MirrorError(f"{self.path}: closed while a blob was being written into it")
            self._writing += 1
        try:
            while data:
                count = os.pwrite(self._descriptor, data, offset)
                offset += count
                data = data[count:]
        finally:
            with self._writers:
                self._writing -= 1
                if self._closed and not self._writing:
                    self._handle.close()

    def _put(self, data: bytes) -> None:
        os.pwrite(self._descriptor, data, self._end)
        self._end += len(data)

    def _directories_of(self, name: str) -> None:
        parts = name.split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            directory = "/".join(parts[:depth])
            if directory not in self._directories:
                self._put(member_header(directory, directory=True))
                self._directories.add(directory)

    def _claim(self, name: str) -> None:
        if name in self._names or self._finished:
            raise ValueError(f"{name}: already in the tar, or the tar is finished")  # a caller bug
        self._names.add(name)

    def reserve(self, members: Sequence[tuple[str, int]]) -> None:
        """Headers for `members` (name, size), each followed by room for its data, in this order."""
        with self._lock:
            for name, size in members:
                self._claim(name)
                self._directories_of(name)
                self._put(member_header(name, size))
                self._slots[name] = _Slot(self, name, self._end, size)
                self._end += _padded(size)  # a hole until filled; the padding stays a hole, read as zeros

    def is_reserved(self, name: str) -> bool:
        return name in self._slots

    @contextmanager
    def filling(self, name: str) -> Iterator[_Slot]:
        """The region reserved for `name`; it counts as filled only if the block ends without an error and wrote
        exactly its size. The caller checks the bytes (digest) while writing them."""
        slot = self._slots[name]
        with self._lock:
            if name in self._filled:
                raise ValueError(f"{name}: filled twice")  # a caller bug
        slot.seek(0)
        yield slot
        if slot.filled != slot.size:
            raise MirrorError(f"{name}: {slot.filled} bytes written where {slot.size} were reserved")
        with self._lock:
            self._filled.add(name)

    def fill_from(self, name: str, source: Path) -> None:
        """Fill a reserved region from a file of exactly its size (a blob the cache already had)."""
        with self.filling(name) as slot, open(source, "rb") as handle:
            while data := handle.read(_CHUNK):
                slot.write(data)

    def append(self, name: str, source: Path) -> None:
        """A member with the bytes of `source`, behind everything written so far."""
        with self._lock, open(source, "rb") as handle:
            self._claim(name)
            self._directories_of(name)
            size = os.fstat(handle.fileno()).st_size
            self._put(member_header(name, size))
            copied = 0
            while data := handle.read(_CHUNK):
                self._put(data)
                copied += len(data)
            if copied != size:
                raise MirrorError(f"{source}: changed size while it was written into the bundle")
            self._end += -size % ustar.BLOCK  # a hole, read as zeros

    def finish(self) -> None:
        """The end-of-archive marker, after checking that every reserved member was filled."""
        with self._lock:
            empty = sorted(set(self._slots) - self._filled)
            if empty:
                raise MirrorError(f"{empty[0]}: reserved in the tar but never filled")  # a caller bug
            self._put(b"\0" * (2 * ustar.BLOCK))
            self._finished = True
            self._handle.flush()
            os.ftruncate(self._descriptor, self._end)
        self.close()

    def close(self) -> None:
        with self._writers:
            self._closed = True
            if not self._writing:
                self._handle.close()

    def __enter__(self) -> OnePassTar:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def member_order(inventory: Inventory, signatures: Sequence[str] = (), reserved: Sequence[str] = ()) -> list[str]:
    """Blobs first (those reserved before their download, then the others), the inventory and its signatures
    last: the inventory is only known once every blob is in, and a reader indexes the tar before reading it."""
    skipped = frozenset(reserved)  # not a list scan per file: 60,000 files, 40,000 reserved, took two minutes
    rest = sorted(f.path for f in inventory.files if f.path not in skipped)
    head = [p for p in ("oci-layout", "index.json") if p in rest]
    return [*head, *[p for p in rest if p not in head], INVENTORY_PATH, *sorted(signatures)]


def append_staged(tar: OnePassTar, staging: Path, inventory: Inventory, signatures: Sequence[str] = ()) -> None:
    """Every file of the staging layout not already reserved in the tar, deleting each blob once it is in."""
    for path in member_order(
        inventory, signatures, [p for p in (f.path for f in inventory.files) if tar.is_reserved(p)]
    ):
        source = staging / path
        tar.append(path, source)
        if path.startswith("blobs/"):
            source.unlink()


def write_tar(staging: Path, inventory: Inventory, out: Path, signatures: Sequence[str] = ()) -> None:
    """A staging layout written as a tar at `out`, which must not exist."""
    with OnePassTar(out) as tar:
        append_staged(tar, staging, inventory, signatures)
        tar.finish()
