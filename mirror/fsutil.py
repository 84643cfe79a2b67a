"""File-system writes that a planted link or a crash cannot turn into a write somewhere else."""

from __future__ import annotations

import contextlib
import io
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, cast

from mirror.errors import UsageError

_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def temporary_name(path: Path, suffix: str = ".partial") -> Path:
    """A fresh name beside `path`: random, so nobody can plant a link at it in advance."""
    return path.with_name(f".{path.name}.{secrets.token_hex(8)}{suffix}")


def open_descriptor(descriptor: int, mode: str) -> BinaryIO:
    """A buffered binary file over `descriptor`. The buffer's size is given: left to open(), it asks every file
    whether it is a terminal (an ioctl), a system call per file that hands the GIL to the other workers."""
    return cast(BinaryIO, os.fdopen(descriptor, mode, buffering=io.DEFAULT_BUFFER_SIZE))


def create_exclusive(path: Path, mode: int = 0o644) -> BinaryIO:
    """Open a new file for writing; refuses an existing file or link at `path` (O_EXCL|O_NOFOLLOW)."""
    return open_descriptor(os.open(path, _CREATE, mode), "wb")


@contextlib.contextmanager
def atomic_writer(path: Path, *, mode: int = 0o644, durable: bool = True) -> Iterator[BinaryIO]:
    """Write a new version of `path`: readers see the old file or the whole new one, never half of it.

    The bytes go to a fresh temporary file beside `path`, which is renamed over `path` only when the block ends
    without an error; otherwise it is removed. A symlink at `path` itself is replaced, never followed.
    """
    temporary = temporary_name(path)
    try:
        with create_exclusive(temporary, mode) as handle:
            yield handle
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    if durable:
        sync_directory(path.parent)


def atomic_write(path: Path, data: bytes | str, *, mode: int = 0o644, durable: bool = True) -> None:
    """`path` holds exactly `data` afterwards, written through `atomic_writer`."""
    with atomic_writer(path, mode=mode, durable=durable) as handle:
        handle.write(data.encode() if isinstance(data, str) else data)


def sync_directory(directory: Path) -> None:
    """Make a file created or renamed in `directory` durable (its entry), where the file system allows it."""
    try:
        descriptor = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return  # some file systems cannot open a directory; the rename itself has happened
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def require_regular_file(path: Path, what: str) -> None:
    """Refuse, before opening it, an input that is not a regular file: reading a FIFO would block forever, and a
    device could be endless."""
    try:
        info = os.stat(path)
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the {what}: {exc.strerror}") from exc
    if not stat.S_ISREG(info.st_mode):
        raise UsageError(f"{path}: the {what} is not a regular file")


def require_writable_directory(directory: Path, what: str) -> None:
    """Refuse, before any work, a directory where nothing can be created (permissions, read-only file system)."""
    probe = temporary_name(directory / "probe")
    try:
        create_exclusive(probe).close()
    except OSError as exc:
        raise UsageError(f"{directory}: cannot write the {what} here: {exc.strerror}") from exc
    os.unlink(probe)
