"""Writing a bundle as a plain ustar file in one pass: blobs reserved before their bytes arrive, then filled in
place by parallel downloads, the rest appended, the inventory and its signatures last. A partial tar a killed
collect left is its resume state: what it holds at the place this collect reserves, hashing to the name, is kept.
See docs/bundle-format.md ("Tar bundles") and docs/collector.md ("Resuming a .tar collect").
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import stat
import tarfile
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

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

    def __init__(self, tar: OnePassTar, name: str, offset: int, size: int, *, kept: bool = False) -> None:
        self._tar = tar
        self.name = name
        self._offset = offset
        self.size = size
        self.filled = 0
        self.kept = kept  # a partial tar held this very header here: its data may be the blob already

    def hashes_to(self, sha256: str) -> bool:
        """Whether the region holds `size` bytes hashing to `sha256` (read, never trusted from a record)."""
        digest, position, end = hashlib.sha256(), self._offset, self._offset + self.size
        while position < end:
            data = self._tar.read_at(min(_CHUNK, end - position), position)
            if not data:
                return False  # the partial tar ends inside the region
            digest.update(data)
            position += len(data)
        return digest.hexdigest() == sha256

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
    a temporary name, and removes it on failure unless it is a partial tar kept to resume from (`partial`).
    """

    def __init__(self, path: Path, handle: BinaryIO | None = None, *, resuming: bool = False) -> None:
        self.path = path
        self._handle = create_exclusive(path) if handle is None else handle
        self._descriptor = self._handle.fileno()
        # What a killed collect left in the file is candidate content (a reserved header it held at the same
        # place, the data behind it hashed before it is kept); every other byte up to the end is rewritten.
        self.resuming = resuming
        self.allocated = os.fstat(self._descriptor).st_blocks * 512  # the room a partial tar takes already
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

    @classmethod
    def partial(cls, path: Path, *, resume: bool) -> OnePassTar:
        """The partial tar of a .tar OUT, at its fixed name, locked for this collect alone (a second collect to
        the same OUT is refused). `resume`: keep what a killed collect left in it, to be checked and reused;
        else it starts empty. Refuses a link, anything but a regular file, or a file of another user."""
        handle = _open_partial(path)
        try:
            if not resume:
                os.ftruncate(handle.fileno(), 0)
            return cls(path, handle, resuming=os.fstat(handle.fileno()).st_size > 0)
        except BaseException:
            handle.close()
            raise

    @property
    def finished(self) -> bool:
        return self._finished

    @property
    def holds_nothing(self) -> bool:
        """Nothing reserved or appended, and no earlier collect's bytes in it: not worth keeping."""
        return not self.resuming and self._end == 0

    def read_at(self, count: int, offset: int) -> bytes:
        return os.pread(self._descriptor, count, offset)

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
                header = member_header(name, size)
                # The same header at the same place in a partial tar: the data behind it may be this blob already.
                kept = self.resuming and self.read_at(len(header), self._end) == header
                self._put(header)
                self._slots[name] = _Slot(self, name, self._end, size, kept=kept)
                self._end += size
                self._pad(size)  # a hole until filled, read as zeros; written out over a partial tar's bytes

    def _pad(self, size: int) -> None:
        padding = -size % ustar.BLOCK
        if self.resuming:
            os.pwrite(self._descriptor, b"\0" * padding, self._end)
        self._end += padding

    def is_reserved(self, name: str) -> bool:
        return name in self._slots

    def keep(self, name: str, sha256: str) -> bool:
        """Whether the partial tar already holds `name`'s bytes in its reserved place (hashed here, never taken on
        trust): it then counts as filled. False for a slot a partial tar did not hold, or held otherwise."""
        slot = self._slots[name]
        with self._lock:
            if name in self._filled:
                raise ValueError(f"{name}: filled twice")  # a caller bug
        if not slot.kept or not slot.hashes_to(sha256):
            return False
        slot.filled = slot.size
        with self._lock:
            self._filled.add(name)
        return True

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
            self._pad(size)

    def finish(self, out: Path | None = None) -> None:
        """The end-of-archive marker, after checking that every reserved member was filled; then renamed to `out`
        (which must not exist) before the file is closed, so a partial tar's lock is held until it is OUT."""
        with self._lock:
            empty = sorted(set(self._slots) - self._filled)
            if empty:
                raise MirrorError(f"{empty[0]}: reserved in the tar but never filled")  # a caller bug
            self._put(b"\0" * (2 * ustar.BLOCK))
            self._finished = True
            self._handle.flush()
            os.ftruncate(self._descriptor, self._end)  # a partial tar may have held more
            if out is not None:
                if out.exists() or out.is_symlink():
                    raise UsageError(f"{out}: appeared while the bundle was written", hint="choose a new output path")
                self.path.rename(out)
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


_PARTIAL_HINT = "remove it (a collect to this OUT keeps its partial tar there), or choose another output path"


def _open_partial(path: Path) -> BinaryIO:
    """`path` opened for reading and writing (created if missing), locked; never through a link."""
    try:
        found = os.lstat(path)
    except FileNotFoundError:
        pass
    else:  # not opened at all if it is not a regular file: opening a device or a FIFO can block or act
        if not stat.S_ISREG(found.st_mode):
            raise UsageError(f"{path}: not a partial tar (a link, or not a regular file)", hint=_PARTIAL_HINT)
    try:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        reason = "a link" if exc.errno == errno.ELOOP else exc.strerror
        raise UsageError(f"{path}: cannot use it as the partial tar: {reason}", hint=_PARTIAL_HINT) from exc
    handle = os.fdopen(descriptor, "r+b")
    try:
        opened = os.fstat(descriptor)
        if not stat.S_ISREG(opened.st_mode) or opened.st_uid != os.geteuid() or opened.st_nlink != 1:
            raise UsageError(
                f"{path}: not a partial tar a collect of this user left (a regular file of its own, one link)",
                hint=_PARTIAL_HINT,
            )
        os.set_blocking(descriptor, True)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            now = os.lstat(path)
        except (BlockingIOError, FileNotFoundError):
            now = None
        if now is None or (now.st_dev, now.st_ino) != (opened.st_dev, opened.st_ino):  # renamed to OUT meanwhile
            raise UsageError(
                f"{path}: another collect is writing this bundle (it holds this partial tar)",
                hint="wait for it to end, or choose another output path",
            )
    except BaseException:
        handle.close()
        raise
    return handle


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
