"""One importer at a time per trust state file: an exclusive flock on `STATE.lock` beside it.

See docs/trust.md ("The lock").
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from mirror.errors import UsageError

_OPEN = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
_POLL_S = 0.1  # how often a waiter with a timeout tries again; flock has no timeout of its own


class LockTimeoutError(UsageError):
    """Another import held the state file's lock for longer than --lock-timeout; nothing was done."""

    def __init__(self, lock_file: Path, holder: str, waited: float) -> None:
        super().__init__(
            f"{lock_file}: another import ({holder}) still holds the trust state lock after {waited:g} s; "
            "nothing was imported",
            hint="let it finish and run again, or give a longer --lock-timeout (without it, import waits)",
        )
        self.lock_file = lock_file


def lock_file_for(state_file: Path) -> Path:
    return state_file.with_name(state_file.name + ".lock")


def _open_lock_file(path: Path) -> int:
    try:
        descriptor = os.open(path, _OPEN, 0o644)
    except FileNotFoundError as exc:
        raise UsageError(
            f"{path.parent}: the trust state file's directory does not exist",
            hint="create it, or correct stateFile in the trust policy (relative paths are relative to the policy)",
        ) from exc
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UsageError(f"{path}: the lock file is a symbolic link; mirror does not follow it") from exc
        raise UsageError(f"{path}: cannot open the trust state lock: {exc.strerror}") from exc
    if not stat.S_ISREG(os.fstat(descriptor).st_mode):
        os.close(descriptor)
        raise UsageError(f"{path}: the lock file is not a regular file")
    return descriptor


def _holder(descriptor: int) -> str:
    try:
        text = os.pread(descriptor, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        text = ""
    return f"pid {text}" if text.isdigit() else "pid unknown"


def _try_lock(descriptor: int) -> bool:
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


@contextlib.contextmanager
def state_lock(
    state_file: Path, *, timeout: float | None = None, announce: Callable[[str], None] | None = None
) -> Iterator[Path]:
    """Hold the exclusive lock of `state_file` for the block; waits for another holder (see module doc).

    timeout: seconds to wait at most (None: as long as it takes); LockTimeoutError after it.
    announce: called once with the waiting message, when the lock is held by another import.
    """
    path = lock_file_for(state_file)
    descriptor = _open_lock_file(path)
    try:
        if not _try_lock(descriptor):
            holder = _holder(descriptor)
            if announce is not None:
                announce(f"waiting for the import holding {path} ({holder}) to finish …")
            _wait(descriptor, path, holder, timeout)
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, f"{os.getpid()}\n".encode(), 0)
        yield path
    finally:
        os.close(descriptor)  # closing the descriptor releases the lock


def _wait(descriptor: int, path: Path, holder: str, timeout: float | None) -> None:
    if timeout is None:
        fcntl.flock(descriptor, fcntl.LOCK_EX)  # Ctrl-C interrupts the wait
        return
    started = time.monotonic()
    while not _try_lock(descriptor):
        waited = time.monotonic() - started
        if waited >= timeout:
            raise LockTimeoutError(path, _holder(descriptor) if holder == "pid unknown" else holder, timeout)
        time.sleep(min(_POLL_S, timeout - waited))
