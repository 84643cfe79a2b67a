"""A strict reader of plain POSIX ustar headers, written by hand because tarfile silently applies PAX, GNU
and sparse extensions another reader would not see. See docs/bundle-format.md.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from mirror.errors import BundleFormatError

BLOCK = 512
_REGULAR = (b"0", b"\x00")
_DIRECTORY = b"5"
_TYPE_NAMES = {
    b"1": "hard link",
    b"2": "symbolic link",
    b"3": "character device",
    b"4": "block device",
    b"6": "FIFO",
    b"7": "contiguous file",
    b"x": "PAX extended header",
    b"g": "PAX global header",
    b"L": "GNU long name",
    b"K": "GNU long link",
    b"S": "GNU sparse file",
}


@dataclass(frozen=True)
class Member:
    name: str
    offset: int  # of the data, in the tar file
    size: int
    is_dir: bool


def _octal(field: bytes, what: str, where: str) -> int:
    if field and field[0] & 0x80:
        raise BundleFormatError(f"{where}: {what} uses base-256 encoding, which plain ustar does not allow")
    text = field.rstrip(b"\x00 ").lstrip(b" ")
    if not text or text.translate(None, b"01234567"):  # anything left is not an octal digit
        raise BundleFormatError(f"{where}: {what} field {field!r} is not octal")
    return int(text, 8)


def _text(field: bytes, what: str, where: str) -> str:
    value = field.split(b"\x00", 1)[0]
    try:
        return value.decode("ascii")
    except UnicodeDecodeError as exc:
        raise BundleFormatError(f"{where}: {what} is not ASCII") from exc


_UNSAFE_PARTS = frozenset(("", ".", ".."))


def _check_name(name: str, is_dir: bool, where: str) -> str:
    stripped = name[:-1] if is_dir and name.endswith("/") else name
    parts = stripped.split("/")
    if not stripped or stripped.startswith("/") or not _UNSAFE_PARTS.isdisjoint(parts):
        raise BundleFormatError(f"{where}: unsafe member name {name!r}")
    return stripped


def _byte_sum(data: bytes) -> int:
    """The sum of the bytes, in C: Adler-32's low half is 1 + that sum modulo 65521, exact for at most 256 bytes
    (at most 65,280); a Python sum() of a header took half of a tar walk's time."""
    return sum((zlib.adler32(data[at : at + 256]) & 0xFFFF) - 1 for at in range(0, len(data), 256))


def header_sum(block: bytes) -> int:
    """The ustar checksum of a header: the unsigned sum of its bytes, its checksum field counted as 8 spaces."""
    return _byte_sum(block[:148]) + 32 * 8 + _byte_sum(block[156:])


def parse_header(block: bytes, offset: int) -> Member:
    where = f"tar header at byte {offset}"
    stored = _octal(block[148:156], "checksum", where)
    if header_sum(block) != stored:
        raise BundleFormatError(f"{where}: checksum mismatch")
    if block[257:263] != b"ustar\x00" or block[263:265] != b"00":
        raise BundleFormatError(f"{where}: not a POSIX ustar header")
    typeflag = block[156:157]
    if typeflag not in _REGULAR and typeflag != _DIRECTORY:
        kind = _TYPE_NAMES.get(typeflag, f"type {typeflag!r}")
        raise BundleFormatError(f"{where}: {kind} members are not allowed; only regular files and directories")
    name = _text(block[0:100], "name", where)
    prefix = _text(block[345:500], "prefix", where)
    full = f"{prefix}/{name}" if prefix else name
    is_dir = typeflag == _DIRECTORY
    size = _octal(block[124:136], "size", where)
    if is_dir and size:
        raise BundleFormatError(f"{where}: directory {full!r} claims {size} bytes of data")
    return Member(_check_name(full, is_dir, where), offset + BLOCK, size, is_dir)


def _check_zero_tail(handle: BinaryIO, offset: int) -> None:
    """Everything after the end-of-archive marker must be zero padding.

    GNU tar's --ignore-zeros reads members past the marker; data there would be seen by one reader and not
    by another.
    """
    handle.seek(offset)
    while chunk := handle.read(1024 * 1024):
        if chunk.count(0) != len(chunk):
            raise BundleFormatError(f"tar has data after its end-of-archive marker at byte {offset - BLOCK}")


def walk(handle: BinaryIO) -> Iterator[Member]:
    """The members of a tar file in order, reading headers only and seeking over the data; O(1) memory.

    Ends at the end-of-archive marker, after checking that only zeros follow it.
    """
    total = handle.seek(0, os.SEEK_END)  # not fstat: the handle may span the volumes of a split bundle
    offset = 0
    while True:
        handle.seek(offset)
        block = handle.read(BLOCK)
        if len(block) < BLOCK:
            raise BundleFormatError(f"tar ends at byte {offset} without an end-of-archive marker")
        if block == b"\x00" * BLOCK:
            _check_zero_tail(handle, offset + BLOCK)
            return
        member = parse_header(block, offset)
        end = member.offset + member.size
        if end > total:
            raise BundleFormatError(f"tar member {member.name!r} is truncated: needs {end} bytes, file has {total}")
        yield member
        offset = member.offset + -(-member.size // BLOCK) * BLOCK


def find(handle: BinaryIO, name: str, *, max_members: int) -> Member | None:
    """The first member called `name` among the first `max_members`, remembering nothing else."""
    for count, member in enumerate(walk(handle)):
        if count >= max_members:
            return None
        if member.name == name:
            return member
    return None


def scan(handle: BinaryIO, *, max_members: int, why: str = "") -> list[Member]:
    """List the members of a tar file by reading headers only, seeking over the data.

    More than `max_members` members refuse the tar as soon as the next header is read (`why` says where the
    bound comes from), so a tar of a million tiny members costs max_members entries, not a million.
    """
    members: list[Member] = []
    seen: set[str] = set()
    for member in walk(handle):
        if member.name in seen:
            raise BundleFormatError(f"tar member {member.name!r} appears twice")
        seen.add(member.name)
        if len(members) >= max_members:
            raise BundleFormatError(f"tar has more than {max_members} members{why}")
        members.append(member)
    return members
