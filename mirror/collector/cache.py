"""A cache of downloaded blobs, so that a collect interrupted and run again fetches only what it lacks.

An entry is trusted for nothing: it is hashed again on every reuse. See docs/collector.md ("The blob cache").
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import hashlib
import io
import os
import re
import stat
import threading
import time
import uuid
import weakref
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from mirror.errors import UsageError
from mirror.fsutil import create_exclusive, open_descriptor
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


_ENTRY = re.compile(r"[a-f0-9]{64}")
_TEMPORARY = re.compile(r"\.[a-f0-9]{64}\.[a-f0-9]+\.partial")
_OPEN_ENTRY = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC  # a FIFO planted there must not block
_OPEN_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def _hash_handle(handle: BinaryIO) -> str:
    digest = hashlib.sha256()
    while chunk := handle.read(_CHUNK):
        digest.update(chunk)
    return digest.hexdigest()


def _hash_target(path: Path) -> str:
    with open(path, "rb", buffering=io.DEFAULT_BUFFER_SIZE) as handle:
        return _hash_handle(handle)


def _copy_hashing(source: BinaryIO, target: Path) -> str:
    """Copy `source` to the new file `target` and return the hash of the bytes written."""
    digest = hashlib.sha256()
    with create_exclusive(target) as writer:
        while chunk := source.read(_CHUNK):
            digest.update(chunk)
            writer.write(chunk)
    return digest.hexdigest()


def _reflink(source: BinaryIO, target: Path) -> bool:
    try:
        with create_exclusive(target) as writer:
            fcntl.ioctl(writer.fileno(), _FICLONE, source.fileno())
        return True
    except OSError:
        target.unlink(missing_ok=True)
        return False


def _open_directories(root: Path, names: tuple[str, ...]) -> int:
    """A descriptor of root/names..., each level below `root` created if missing and refused if it is a link.

    `root` is the user's choice and may itself be a link; below it, every operation is relative to this
    descriptor, so a link planted later at `blobs` or `sha256` cannot redirect a write or a prune.
    """
    try:
        root.mkdir(parents=True, exist_ok=True, mode=0o700)
        descriptor = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise UsageError(f"{root}: cannot use it as the blob cache: {exc.strerror}", hint=_CACHE_HINT) from exc
    path = root
    for name in names:
        path = path / name
        try:
            with contextlib.suppress(FileExistsError):
                os.mkdir(name, 0o700, dir_fd=descriptor)
            child = os.open(name, _OPEN_DIRECTORY, dir_fd=descriptor)
        except OSError as exc:
            os.close(descriptor)
            reason = "a link or not a directory" if exc.errno in (errno.ELOOP, errno.ENOTDIR) else exc.strerror
            raise UsageError(f"{path}: cannot use it in the blob cache: {reason}", hint=_CACHE_HINT) from exc
        os.close(descriptor)
        descriptor = child
    return descriptor


_CACHE_HINT = "give another --cache-dir, remove the link, or run with --no-cache"


class BlobCache:
    """Thread-safe: every write goes through a unique temporary name and an atomic rename, all of it relative to
    one directory descriptor, never through a link."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.blobs = root / "blobs" / "sha256"
        self._directory = _open_directories(root, ("blobs", "sha256"))
        weakref.finalize(self, os.close, self._directory)
        # Manifests apart from blobs (docs/collector.md, "Pull quotas"): what a blob reuse counts stays blobs.
        self._manifests = _open_directories(root, ("manifests", "sha256"))
        weakref.finalize(self, os.close, self._manifests)
        self.use = CacheUse()
        self._lock = threading.Lock()

    def _count(self, **amounts: int) -> None:
        with self._lock:
            for name, amount in amounts.items():
                setattr(self.use, name, getattr(self.use, name) + amount)

    def entry(self, digest: str) -> Path:
        return self.blobs / hex_of(digest)

    def _open(self, name: str, directory: int | None = None) -> BinaryIO | None:
        """The entry, opened, if it is a regular file; a link, FIFO or device there is treated as absent."""
        directory = self._directory if directory is None else directory
        try:
            descriptor = os.open(name, _OPEN_ENTRY, dir_fd=directory)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno != errno.ELOOP:
                raise
            self._unlink(name, directory)  # a link where an entry should be: never followed, removed
            return None
        handle = open_descriptor(descriptor, "rb")
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            handle.close()
            return None
        os.set_blocking(descriptor, True)
        return handle

    def _unlink(self, name: str, directory: int | None = None) -> None:
        with contextlib.suppress(FileNotFoundError, IsADirectoryError, PermissionError):
            os.unlink(name, dir_fd=self._directory if directory is None else directory)

    def place(self, digest: str, size: int, target: Path, *, rehash: bool = True) -> bool:
        """Put the cached blob at `target` (which must not exist); False, and the entry deleted, if it is missing
        or damaged. `rehash=False` only for an entry this run has just stored after checking its digest."""
        name = hex_of(digest)
        handle = self._open(name)
        if handle is None:
            return False  # absent, or pruned by another collect a moment ago
        with handle:
            opened = os.fstat(handle.fileno())
            if opened.st_size != size:
                self._discard(name)
                return False
            try:
                os.link(name, target, src_dir_fd=self._directory, follow_symlinks=False)
                linked = os.lstat(target)
                if (linked.st_dev, linked.st_ino) != (opened.st_dev, opened.st_ino):  # swapped meanwhile
                    target.unlink()
                    return False
                actual = _hash_handle(handle) if rehash else name
            except FileNotFoundError:
                return False
            except OSError as error:
                if error.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
                    raise
                if _reflink(handle, target):
                    actual = _hash_target(target) if rehash else name
                else:
                    actual = _copy_hashing(handle, target)
            if actual != name:
                target.unlink(missing_ok=True)
                self._discard(name)
                return False
            os.utime(handle.fileno())  # recently used: kept by prune
        return True

    def copy_into(self, digest: str, size: int, target: BinaryIO) -> bool:
        """Write the cached blob into `target` (its place in a .tar OUT), hashing it from the same read: one read,
        one write, counted as a reuse. False, and the entry deleted, if it is missing or damaged; what `target`
        was given then is to be overwritten."""
        name = hex_of(digest)
        handle = self._open(name)
        if handle is None:
            return False
        with handle:
            if os.fstat(handle.fileno()).st_size != size:
                self._discard(name)
                return False
            hashed, copied = hashlib.sha256(), 0
            while copied < size and (chunk := handle.read(min(_CHUNK, size - copied))):
                hashed.update(chunk)
                target.write(chunk)
                copied += len(chunk)
            if copied != size or handle.read(1) or hashed.hexdigest() != name:  # changed meanwhile, or damaged
                self._discard(name)
                return False
            os.utime(handle.fileno())  # recently used: kept by prune
        self._count(reused=1, reused_bytes=size)
        with self._lock:
            self.use.reused_blobs[digest] = size
        return True

    def reuse(self, digest: str, size: int, target: Path) -> bool:
        """`place`, counted as a reuse."""
        if not self.place(digest, size, target):
            return False
        self._count(reused=1, reused_bytes=size)
        with self._lock:
            self.use.reused_blobs[digest] = size
        return True

    def _discard(self, name: str) -> None:
        self._unlink(name)
        self._count(discarded=1)

    def read_small(self, digest: str, max_bytes: int) -> bytes | None:
        """A manifest kept by keep_small, hashed again before it is returned; None if absent, larger than
        `max_bytes` or damaged (then deleted). Kept under manifests/sha256, not counted as a blob reuse."""
        name = hex_of(digest)
        handle = self._open(name, self._manifests)
        if handle is None:
            return None
        with handle:
            # No more than the file holds: a read of max_bytes + 1 (4 MiB) would allocate that much each time.
            data = handle.read(min(os.fstat(handle.fileno()).st_size, max_bytes) + 1)
            if len(data) > max_bytes:
                return None
            if hashlib.sha256(data).hexdigest() != name:
                self._unlink(name, self._manifests)
                return None
            os.utime(handle.fileno())  # recently used: kept by prune
        return data

    def keep_small(self, digest: str, data: bytes) -> None:
        """Keep a manifest whose bytes were checked against `digest` (manifests/sha256; not counted as a blob)."""
        name = hex_of(digest)
        temporary = f".{name}.{uuid.uuid4().hex}.partial"
        try:
            with open_descriptor(os.open(temporary, _CREATE, 0o600, dir_fd=self._manifests), "wb") as handle:
                handle.write(data)
            os.replace(temporary, name, src_dir_fd=self._manifests, dst_dir_fd=self._manifests)
        except BaseException:
            self._unlink(temporary, self._manifests)  # only on a failure: once renamed, the temporary is gone
            raise

    @contextmanager
    def storing(self, digest: str, size: int) -> Iterator[BinaryIO]:
        """A temporary file in the cache; it becomes the entry for `digest` only if the block ends without error.

        The caller must have checked the bytes against `digest` and `size` while writing them.
        """
        name = hex_of(digest)
        temporary = f".{name}.{uuid.uuid4().hex}.partial"
        try:
            with open_descriptor(os.open(temporary, _CREATE, 0o600, dir_fd=self._directory), "wb") as handle:
                yield handle
            # A link planted at the entry's name is replaced, never written through.
            os.replace(temporary, name, src_dir_fd=self._directory, dst_dir_fd=self._directory)
        except BaseException:
            self._unlink(temporary)
            raise
        self._count(stored=1, stored_bytes=size)

    def prune(self, max_age: dt.timedelta = DEFAULT_MAX_AGE, *, now: float | None = None) -> int:
        """Delete entries unused for `max_age` and temporary files left by killed runs; returns how many.

        Only regular files named as the cache names them are candidates: anything else someone put there stays.
        """
        now = time.time() if now is None else now
        return sum(self._prune(directory, max_age, now) for directory in (self._directory, self._manifests))

    def _prune(self, directory: int, max_age: dt.timedelta, now: float) -> int:
        removed = 0
        with os.scandir(directory) as entries:
            for item in entries:
                if _ENTRY.fullmatch(item.name):
                    limit = max_age
                elif _TEMPORARY.fullmatch(item.name):
                    limit = _STALE_PARTIAL
                else:
                    continue
                try:
                    info = item.stat(follow_symlinks=False)
                    if stat.S_ISLNK(info.st_mode):
                        self._unlink(item.name, directory)  # a planted link: the link goes, its target is untouched
                        continue
                    if stat.S_ISREG(info.st_mode) and now - info.st_mtime > limit.total_seconds():
                        os.unlink(item.name, dir_fd=directory)
                        removed += 1
                except FileNotFoundError:
                    continue
        return removed
