"""A cache of downloaded blobs, so that a collect interrupted and run again fetches only what it lacks.

Entries are files named by their digest (`blobs/sha256/<hex>`), as in an OCI layout. A download is written
to a temporary file in the cache and renamed into place only after its digest checked, so a killed collect
leaves at most a `.partial` file, never a wrong entry. An entry is trusted for nothing: it is hashed again
whenever it is reused, and one that no longer matches its name is deleted and downloaded again.

Entries reach a bundle as a hard link when the cache and the bundle share a file system (no second copy,
no rewrite), else as a reflink where the file system can, else as a copy. Either way the bundle's file is
the one whose bytes were hashed.

The cache is bounded by age: after a successful collect, entries no collect has used for `max_age` are
deleted (every reuse refreshes an entry's modification time). Deleting the whole directory while no
collect runs is always safe.
"""

from __future__ import annotations

import datetime as dt
import errno
import fcntl
import hashlib
import os
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from mirror.oci.digest import hex_of

DEFAULT_MAX_AGE = dt.timedelta(days=7)
_STALE_PARTIAL = dt.timedelta(days=1)  # a temporary file this old belongs to no running collect
_CHUNK = 1 << 20
_FICLONE = 0x40049409  # linux/fs.h: share the extents of another file (btrfs, xfs, ...)


def default_cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """`$MIRROR_CACHE_DIR`, else `$XDG_CACHE_HOME/mirror`, else `~/.cache/mirror`."""
    env = os.environ if env is None else env
    if env.get("MIRROR_CACHE_DIR"):
        return Path(env["MIRROR_CACHE_DIR"])
    base = env.get("XDG_CACHE_HOME") or ""
    return (Path(base) if os.path.isabs(base) else Path.home() / ".cache") / "mirror"


@dataclass
class CacheUse:
    """What one run took from the cache and put into it."""

    reused: int = 0
    reused_bytes: int = 0
    stored: int = 0
    stored_bytes: int = 0
    discarded: int = 0  # entries found damaged, deleted and downloaded again
    reused_blobs: dict[str, int] = field(default_factory=dict)  # digest → size


def _hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _copy_hashing(source: Path, target: Path) -> str:
    """Copy `source` to the new file `target` and return the hash of the bytes written."""
    digest = hashlib.sha256()
    with open(source, "rb") as reader, open(target, "xb") as writer:
        while chunk := reader.read(_CHUNK):
            digest.update(chunk)
            writer.write(chunk)
    return digest.hexdigest()


def _reflink(source: Path, target: Path) -> bool:
    try:
        with open(source, "rb") as reader, open(target, "xb") as writer:
            fcntl.ioctl(writer.fileno(), _FICLONE, reader.fileno())
        return True
    except OSError:
        target.unlink(missing_ok=True)
        return False


class BlobCache:
    """Thread-safe: every write goes through a unique temporary name and an atomic rename."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.blobs = root / "blobs" / "sha256"
        self.blobs.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.use = CacheUse()
        self._lock = threading.Lock()

    def _count(self, **amounts: int) -> None:
        with self._lock:
            for name, amount in amounts.items():
                setattr(self.use, name, getattr(self.use, name) + amount)

    def entry(self, digest: str) -> Path:
        return self.blobs / hex_of(digest)

    def place(self, digest: str, size: int, target: Path, *, rehash: bool = True) -> bool:
        """Put the cached blob at `target` (which must not exist); False, and the entry deleted, if it is missing
        or damaged. `rehash=False` only for an entry this run has just stored after checking its digest."""
        entry = self.entry(digest)
        try:
            if entry.stat().st_size != size:
                self._discard(entry)
                return False
            os.link(entry, target)
            actual = _hash_file(target) if rehash else hex_of(digest)
        except FileNotFoundError:
            return False  # absent, or pruned by another collect a moment ago
        except OSError as error:
            if error.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
                raise
            copied = _reflink(entry, target)
            actual = (_hash_file(target) if rehash else hex_of(digest)) if copied else _copy_hashing(entry, target)
        if actual != hex_of(digest):
            target.unlink(missing_ok=True)
            self._discard(entry)
            return False
        os.utime(entry)  # recently used: kept by prune
        return True

    def reuse(self, digest: str, size: int, target: Path) -> bool:
        """`place`, counted as a reuse."""
        if not self.place(digest, size, target):
            return False
        self._count(reused=1, reused_bytes=size)
        with self._lock:
            self.use.reused_blobs[digest] = size
        return True

    def _discard(self, entry: Path) -> None:
        entry.unlink(missing_ok=True)
        self._count(discarded=1)

    @contextmanager
    def storing(self, digest: str, size: int) -> Iterator[BinaryIO]:
        """A temporary file in the cache; it becomes the entry for `digest` only if the block ends without error.

        The caller must have checked the bytes against `digest` and `size` while writing them.
        """
        temporary = self.blobs / f".{hex_of(digest)}.{uuid.uuid4().hex}.partial"
        try:
            with open(temporary, "xb") as handle:
                yield handle
            os.replace(temporary, self.entry(digest))
        finally:
            temporary.unlink(missing_ok=True)
        self._count(stored=1, stored_bytes=size)

    def prune(self, max_age: dt.timedelta = DEFAULT_MAX_AGE, *, now: float | None = None) -> int:
        """Delete entries unused for `max_age` and temporary files left by killed runs; returns how many."""
        now = time.time() if now is None else now
        removed = 0
        for path in self.blobs.iterdir():
            limit = _STALE_PARTIAL if path.name.endswith(".partial") else max_age
            try:
                if now - path.stat().st_mtime > limit.total_seconds():
                    path.unlink()
                    removed += 1
            except FileNotFoundError:
                continue
        return removed
