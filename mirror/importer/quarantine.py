"""The scratch directory where git bundles are checked in quarantine, and the removal of those left behind.

See docs/importer.md ("Quarantine directories").
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import secrets
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

PREFIX = "mirror-git-"
# Exactly the names quarantine_directory gives: never git's temporary homes (mirror-git-home-*, see
# mirror.git.runner), which hold no lock and belong to whatever git command is running.
_NAME = re.compile(re.escape(PREFIX) + r"[0-9a-f]{16}")
_DIRECTORY = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def _lock(path: Path, *, wait: bool) -> int | None:
    """An open descriptor of the directory holding its exclusive flock, or None when another process holds it."""
    descriptor = os.open(path, _DIRECTORY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except BlockingIOError:
        os.close(descriptor)
        return None
    except BaseException:
        os.close(descriptor)
        raise
    return descriptor


def remove_abandoned(parent: Path | None = None, *, log: Callable[[str], None] | None = None) -> list[Path]:
    """Remove the quarantine directories under `parent` (the temporary directory) whose owner is gone."""
    parent = Path(parent or tempfile.gettempdir())
    removed = []
    try:
        candidates = sorted(p for p in parent.iterdir() if _NAME.fullmatch(p.name))
    except OSError:
        return []
    for path in candidates:
        try:
            info = path.lstat()
            if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
                continue
            descriptor = _lock(path, wait=False)
        except OSError:
            continue  # gone meanwhile, or not ours to open
        if descriptor is None:
            continue  # its import is still running
        try:
            shutil.rmtree(path, ignore_errors=True)
        finally:
            os.close(descriptor)
        if not path.exists():
            removed.append(path)
            if log is not None:
                log(f"removed {path}, the quarantine of an import that did not finish")
    return removed


@contextlib.contextmanager
def quarantine_directory(parent: Path | None = None) -> Iterator[Path]:
    """A new `mirror-git-*` directory, locked by this process until the block ends, then removed."""
    parent = Path(parent or tempfile.gettempdir())
    private = Path(tempfile.mkdtemp(prefix=f".{PREFIX}new-", dir=parent))
    descriptor = None
    try:
        descriptor = _lock(private, wait=True)
        path = parent / f"{PREFIX}{secrets.token_hex(8)}"  # a fresh name nobody can have guessed
        os.rename(private, path)
        private = path
        yield path
    finally:
        shutil.rmtree(private, ignore_errors=True)
        if descriptor is not None:
            os.close(descriptor)
