"""How serve reads a blob it hashes on the way out (issue 19): into a page-aligned buffer, as verify does."""

from __future__ import annotations

import ctypes
import hashlib
import io
import mmap
from typing import BinaryIO, cast

from mirror.serve.content import stream_verified


class _RecordingHandle(io.BytesIO):
    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.addresses: list[int] = []

    def readinto(self, buffer):  # type: ignore[no-untyped-def,override]
        self.addresses.append(ctypes.addressof(ctypes.c_char.from_buffer(buffer)))
        return super().readinto(buffer)


def _serve(data: bytes, chunk_bytes: int) -> tuple[bytes, _RecordingHandle]:
    handle = _RecordingHandle(data)
    sent: list[bytes] = []
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    stream_verified(
        cast(BinaryIO, handle),
        digest,
        len(data),
        0,
        len(data) - 1,
        lambda piece: sent.append(bytes(piece)),
        lambda: None,
        chunk_bytes,
    )
    return b"".join(sent), handle


def test_a_blob_is_read_into_a_buffer_that_starts_on_a_page() -> None:
    """malloc puts a big block 16 bytes past a 64-byte boundary, where the kernel's copy from the page cache ran
    4 to 5 times slower on the development machine (docs/development.md)."""
    _, handle = _serve(b"x" * (3 * 1024 * 1024 + 5), 1024 * 1024)

    assert len(handle.addresses) >= 4
    assert all(address % mmap.PAGESIZE == 0 for address in handle.addresses)


def test_every_byte_of_a_blob_larger_than_a_chunk_is_served() -> None:
    data = bytes(range(256)) * 9000

    sent, _ = _serve(data, 64 * 1024)

    assert sent == data


def test_an_empty_blob_is_served() -> None:
    sent, _ = _serve(b"", 1024 * 1024)

    assert sent == b""
