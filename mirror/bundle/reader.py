"""Reading bundles without trusting them: a directory or a .tar, each exposing the same few operations.

No link is followed, nothing is extracted, only regular files are opened. See docs/bundle-format.md.
"""

from __future__ import annotations

import io
import json
import os
import stat
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import MappingProxyType
from typing import BinaryIO, Protocol

from mirror.bundle import ustar
from mirror.errors import BundleFormatError, UsageError
from mirror.limits import DEFAULT_LIMITS, Limits

INVENTORY_NAME = "inventory.json"  # as bundle/inventory.py's INVENTORY_PATH, which builds on this module's users
_MEMBER_BUFFER_BYTES = 64 * 1024


class BundleReader(Protocol):
    location: str

    def files(self) -> Mapping[str, int]:
        """Every regular file, by bundle path, with its size (a read-only view: callers do not copy it)."""
        ...

    def open(self, path: str) -> BinaryIO:
        """A reader of exactly the file's bytes; the caller closes it."""
        ...


_KINDS = (
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISLNK, "a symbolic link"),
)


def kind_of(mode: int) -> str:
    """What a file that is not a regular file is, for messages: `a FIFO`, `a socket`, ..."""
    return next((name for test, name in _KINDS if test(mode)), "not a file")


def open_regular(path: str | Path, flags: int = 0) -> io.BufferedReader:
    """`path` opened for reading if it is a regular file. Opened non-blocking first, so a FIFO swapped in
    since it was listed is refused at once instead of waiting for a writer."""
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | flags)
    try:
        mode = os.fstat(descriptor).st_mode
        if not stat.S_ISREG(mode):
            raise BundleFormatError(f"{path}: not a regular file ({kind_of(mode)})")
        os.set_blocking(descriptor, True)
        # The default buffer: a 1 MiB one read a whole MiB of a data volume for each small member.
        return io.BufferedReader(io.FileIO(descriptor, "rb"))
    except BaseException:
        os.close(descriptor)
        raise


# Magic numbers at byte 0 of the compressed forms a bundle is mistaken for, with the command that undoes each.
_COMPRESSIONS = (
    (b"\x1f\x8b", "gzip", "gunzip -k"),
    (b"\x28\xb5\x2f\xfd", "zstd", "zstd -d"),
    (b"\xfd7zXZ\x00", "xz", "xz -dk"),
    (b"BZh", "bzip2", "bunzip2 -k"),
)


def refuse_compressed(path: Path, first_block: bytes) -> None:
    """A usage error for a compressed tar: the operator has the wrong file, not a damaged bundle (exit 2)."""
    if first_block[257:262] == b"ustar":
        return  # a tar header, whatever its first member is called
    for magic, name, command in _COMPRESSIONS:
        if first_block.startswith(magic):
            raise UsageError(
                f"{path}: compressed ({name}); decompress it first",
                hint=f"{command} {path}, then give the .tar it writes; a bundle is a plain ustar file",
            )


class SeekableView(io.RawIOBase):
    """Read-only bytes of a known `_size` with a clamped position; subclasses supply `readinto`."""

    _size = 0
    _position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, position: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        self._position = max(0, min(self._size, base + position))
        return self._position

    def tell(self) -> int:
        return self._position


class _Window(SeekableView):
    """A read-only view of `size` bytes at `offset` of a file, so a member can never read past its end."""

    def __init__(self, path: Path, offset: int, size: int) -> None:
        self._handle = open_regular(path)  # owned by this object, closed in close()
        self._offset = offset
        self._size = size
        self._position = 0

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        wanted = min(len(buffer), self._size - self._position)
        if wanted <= 0:
            return 0
        self._handle.seek(self._offset + self._position)
        count = self._handle.readinto(memoryview(buffer)[:wanted])
        self._position += count or 0
        return count or 0

    def close(self) -> None:
        self._handle.close()
        super().close()


def member_bound(inventory: bytes | None, limits: Limits) -> tuple[int, str]:
    """How many members a bundle with this inventory may hold, and a clause saying why, for the refusal.

    The files it lists, its envelopes, and limits.member_slack more (directories, the inventory itself, a few
    strays to report by name). Only the count of `files` is read here: the inventory is parsed strictly later,
    and an unreadable one leaves limits.max_bundle_members as the bound, for that parse to explain.
    """
    try:
        files = json.loads(inventory)["files"] if inventory is not None else None
    except (ValueError, TypeError, KeyError, IndexError, RecursionError):
        files = None
    if not isinstance(files, list):
        return limits.max_bundle_members, ""
    bound = len(files) + limits.max_envelopes + limits.member_slack
    if bound >= limits.max_bundle_members:
        return limits.max_bundle_members, ""
    why = (
        f": its inventory lists {len(files)} files, and at most {limits.max_envelopes} envelopes and "
        f"{limits.member_slack} other members may come with them; the rest was not read"
    )
    return bound, why


def _tar_inventory(handle: BinaryIO, limits: Limits) -> bytes | None:
    """The inventory's bytes, found by a header walk that keeps nothing; collect writes it after the blobs."""
    member = ustar.find(handle, INVENTORY_NAME, max_members=limits.max_bundle_members)
    if member is None or member.is_dir or member.size > limits.max_inventory_bytes:
        return None
    handle.seek(member.offset)
    return handle.read(member.size)


class TarBundle:
    def __init__(self, path: Path, limits: Limits = DEFAULT_LIMITS) -> None:
        self.location = str(path)
        self._path = path
        with open_regular(path) as handle:
            refuse_compressed(path, handle.read(ustar.BLOCK))
            bound, why = member_bound(_tar_inventory(handle, limits), limits)
            members = ustar.scan(handle, max_members=bound, why=why)
        self._members = {m.name: m for m in members if not m.is_dir}
        self._sizes = MappingProxyType({name: m.size for name, m in self._members.items()})

    def files(self) -> Mapping[str, int]:
        return self._sizes

    def span(self, path: str) -> tuple[int, int] | None:
        """Where a member's bytes lie in the tar, (offset, size): many small ones read through one descriptor."""
        member = self._members.get(path)
        return (member.offset, member.size) if member is not None else None

    def open(self, path: str) -> BinaryIO:
        member = self._members.get(path)
        if member is None:
            raise BundleFormatError(f"{self.location}: no member {path!r}")
        # A buffer smaller than verify's reads (limits.verify_read_bytes), which then land straight in its
        # page-aligned buffer instead of going through this one (misaligned, and one copy more).
        return io.BufferedReader(_Window(self._path, member.offset, member.size), buffer_size=_MEMBER_BUFFER_BYTES)


def _directory_inventory(root: Path, limits: Limits) -> bytes | None:
    """The inventory's bytes if it is a regular file within its size limit; else None, for later to explain."""
    try:
        descriptor = os.open(root / INVENTORY_NAME, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(descriptor, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_size > limits.max_inventory_bytes:
            return None
        return handle.read(limits.max_inventory_bytes + 1)


class DirectoryBundle:
    def __init__(self, path: Path, limits: Limits = DEFAULT_LIMITS) -> None:
        self.location = str(path)
        self._root = path
        self._files: dict[str, int] = {}
        bound, why = member_bound(_directory_inventory(path, limits), limits)
        self._scan(path, "", bound, why)
        self._sizes = MappingProxyType(self._files)

    def _scan(self, directory: Path, prefix: str, limit: int, why: str) -> None:
        with os.scandir(directory) as entries:
            for entry in entries:
                name = f"{prefix}{entry.name}"
                info = entry.stat(follow_symlinks=False)
                if stat.S_ISDIR(info.st_mode):
                    self._scan(Path(entry.path), f"{name}/", limit, why)
                elif stat.S_ISREG(info.st_mode):
                    if len(self._files) >= limit:
                        raise BundleFormatError(f"{self.location}: more than {limit} files{why}")
                    self._files[name] = info.st_size
                else:
                    raise BundleFormatError(
                        f"{self.location}: {name} is {kind_of(info.st_mode)}, not a regular file or directory "
                        "(links are not allowed)"
                    )

    def files(self) -> Mapping[str, int]:
        return self._sizes

    def open(self, path: str) -> BinaryIO:
        if path not in self._files:
            raise BundleFormatError(f"{self.location}: no file {path!r}")
        # Names come from our own scan; O_NOFOLLOW still refuses a link swapped in after it, open_regular a FIFO.
        return open_regular(self._root / path, os.O_NOFOLLOW)


@contextmanager
def opened(reader: BundleReader, path: str) -> Iterator[BinaryIO]:
    handle = reader.open(path)
    try:
        yield handle
    finally:
        handle.close()


def read_small(reader: BundleReader, path: str, limit: int) -> bytes:
    size = reader.files().get(path)
    if size is None:
        raise BundleFormatError(f"{reader.location}: {path} is missing")
    if size > limit:
        raise BundleFormatError(f"{reader.location}: {path} is {size} bytes, more than the limit of {limit}")
    with opened(reader, path) as handle:
        return handle.read(limit + 1)[:limit]
