"""Blob bytes as the signed inventory lists them, or none: every blob is hashed again as it is served.

A blob is read from its first byte to its last in one pass and hashed on the way; the bytes a request asks for are
written as they pass, all but the last piece of them, which is written only once the whole blob has proved to
have its digest. A bundle altered on disk after verification therefore costs the client a cut connection (or a 500
when nothing was written yet), never a complete answer with other bytes; and the blob is refused from then on.
A range costs a read of the whole blob: a range alone cannot be checked against a digest. See docs/serve.md.
"""

from __future__ import annotations

import hashlib
import io
import mmap
import threading
from collections.abc import Callable
from typing import BinaryIO, cast

from mirror.serve.view import StoredBlob

Write = Callable[[memoryview | bytes], object]


class ContentChanged(Exception):
    """The blob's bytes on disk are no longer those verified: `written` bytes of the answer went out already."""

    def __init__(self, digest: str, found: str, written: int) -> None:
        super().__init__(f"changed on disk since it was verified: the bundle's bytes now hash to {found}")
        self.digest = digest
        self.written = written


def stream_verified(
    handle: BinaryIO,
    digest: str,
    size: int,
    first: int,
    last: int,
    write: Write,
    begin: Callable[[], None],
    chunk_bytes: int,
) -> int:
    """Write bytes [first, last] of the blob (`size` bytes, `digest`) read from `handle`; the count written.

    `begin` (the answer's status and headers) is called before the first byte is written: a blob (or a range
    within one piece) whose bytes changed raises ContentChanged before it, so the answer can still be an error.
    """
    reader = cast(io.BufferedIOBase, handle)  # every bundle reader's files are buffered readers (readinto)
    hasher = hashlib.sha256()
    # An anonymous mapping starts on a page; malloc's block for a bytearray this size starts 16 bytes past one,
    # where the kernel's copy from the page cache ran 4 to 5 times slower (docs/development.md, as in verify).
    view = memoryview(mmap.mmap(-1, max(1, min(chunk_bytes, size))))
    position, written, held = 0, 0, b""
    started = False
    while position < size:
        count = reader.readinto(view[: min(chunk_bytes, size - position)])
        if not count:
            break  # shorter than verified: the digest below cannot match
        piece = view[:count]
        hasher.update(piece)
        low, high = max(first, position), min(last + 1, position + count)
        if low < high:
            wanted = piece[low - position : high - position]
            if high == last + 1:
                held = bytes(wanted)  # the last piece asked for waits for the whole blob's digest
            else:
                if not started:
                    begin()
                    started = True
                write(wanted)
                written += len(wanted)
        position += count
    found = "sha256:" + hasher.hexdigest()
    if position != size or found != digest:
        raise ContentChanged(digest, found, written)
    if not started:
        begin()
    write(held)
    return written + len(held)


class BlobStore:
    """The verified blobs, and those found changed on disk since, which are refused until serve restarts."""

    def __init__(self, blobs: dict[str, StoredBlob]) -> None:
        self._blobs = blobs
        self._changed: set[str] = set()
        self._lock = threading.Lock()

    def get(self, digest: str) -> StoredBlob | None:
        return self._blobs.get(digest)

    def open(self, digest: str) -> BinaryIO:
        blob = self._blobs[digest]
        return blob.reader.open(blob.path)

    def mark_changed(self, digest: str) -> None:
        with self._lock:
            self._changed.add(digest)

    def changed(self, digest: str) -> bool:
        with self._lock:
            return digest in self._changed
