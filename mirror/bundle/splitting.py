"""Writing a split bundle: data volumes of at most SIZE cut from one ustar stream of the blobs, then the head.

Blobs move from the staging directory into the volumes one by one, so the disk never holds two copies. Every
volume is written under a temporary name and renamed into place only when the whole set is complete.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import BinaryIO

from mirror.bundle import ustar
from mirror.bundle.inventory import INVENTORY_PATH, Inventory, VolumeRecord
from mirror.bundle.tarball import member_header
from mirror.bundle.volumes import volume_path
from mirror.errors import MirrorError, UsageError
from mirror.fsutil import atomic_write, create_exclusive, temporary_name

_CHUNK = 1024 * 1024


class VolumeSink:
    """A write-only stream cut into files of at most `size` bytes, each hashed as written.

    A volume file is created only when a byte is written to it, so a stream ending exactly at a border
    leaves no empty volume behind.
    """

    def __init__(self, path_of: Callable[[int], Path], size: int) -> None:
        if size < 1:
            raise ValueError("volume size must be positive")
        self._path_of = path_of
        self._size = size
        self._handle: BinaryIO | None = None
        self._hash = hashlib.sha256()
        self._written = 0
        self.paths: list[Path] = []
        self.volumes: list[tuple[Path, str, int]] = []  # (path, sha256, size), once closed

    def write(self, data: bytes | memoryview) -> int:
        view = memoryview(data)
        while view:
            if self._handle is None or self._written == self._size:
                self._roll()
            assert self._handle is not None
            count = min(len(view), self._size - self._written)
            self._handle.write(view[:count])
            self._hash.update(view[:count])
            self._written += count
            view = view[count:]
        return len(data)

    def _finish_current(self) -> None:
        if self._handle is None:
            return
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self._handle.close()
        self.volumes.append((self.paths[-1], self._hash.hexdigest(), self._written))
        self._handle = None

    def _roll(self) -> None:
        self._finish_current()
        path = self._path_of(len(self.paths) + 1)
        self.paths.append(path)
        self._handle = create_exclusive(path)
        self._hash = hashlib.sha256()
        self._written = 0

    def close(self) -> None:
        self._finish_current()

    def abort(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
        for path in self.paths:
            path.unlink(missing_ok=True)


def write_members(sink: VolumeSink | BinaryIO, staging: Path, paths: Sequence[str], *, consume: bool) -> None:
    """A ustar stream of `paths` under `staging`, with their directories; deletes each file once in, if `consume`."""
    directories_written: set[str] = set()
    for path in paths:
        parent = path.rpartition("/")[0]
        parts = parent.split("/") if parent else []
        for depth in range(1, len(parts) + 1):
            directory = "/".join(parts[:depth])
            if directory not in directories_written:
                sink.write(member_header(directory, directory=True))
                directories_written.add(directory)
        source = staging / path
        size = source.stat().st_size
        sink.write(member_header(path, size))
        copied = 0
        with open(source, "rb") as handle:
            while data := handle.read(_CHUNK):
                sink.write(data)
                copied += len(data)
        if copied != size:
            raise MirrorError(f"{source}: changed size while it was written into the bundle")
        sink.write(b"\0" * (-size % ustar.BLOCK))
        if consume:
            source.unlink()
    sink.write(b"\0" * (2 * ustar.BLOCK))


HEAD_FIRST = ("oci-layout", "index.json")


def check_split_out(out: Path) -> None:
    """Before any download: OUT names a .tar, and no volume of that name exists yet."""
    if not out.name.endswith(".tar"):
        raise UsageError(f"--split-size: {out} does not end in .tar", hint="split bundles are tar volumes: -o NAME.tar")
    pattern = re.compile(re.escape(out.name) + r"\.[0-9]{3,}")
    taken = sorted(p.name for p in out.parent.iterdir() if pattern.fullmatch(p.name)) if out.parent.is_dir() else []
    if taken:
        raise UsageError(
            f"{out.parent / taken[0]}: already exists", hint="choose a new output name or remove the old volumes"
        )


def write_split(
    staging: Path,
    inventory: Inventory,
    out: Path,
    volume_size: int,
    sign: Callable[[Inventory], list[str]],
) -> tuple[Inventory, list[Path]]:
    """Write `out.000` and the data volumes from a staging layout; the inventory gains `volumes`, then is signed.

    Every volume is written under a temporary name; only when all are whole are they renamed into place, data
    volumes first and the head last, so no final name exists until the set is complete. Returns the final
    inventory and the volume paths, head first.
    """
    check_split_out(out)
    sink = VolumeSink(lambda n: temporary_name(volume_path(out, n)), volume_size)
    head_temporary = temporary_name(volume_path(out, 0))
    placed: list[Path] = []
    try:
        blobs = sorted(f.path for f in inventory.files if f.path not in HEAD_FIRST)
        write_members(sink, staging, blobs, consume=True)
        sink.close()
        records = tuple(
            VolumeRecord(volume_path(out, n).name, sha, size) for n, (_, sha, size) in enumerate(sink.volumes, 1)
        )
        inventory = replace(inventory, volumes=records)
        atomic_write(staging / INVENTORY_PATH, inventory.to_bytes(), durable=False)
        signatures = sorted(sign(inventory))
        head_paths = [INVENTORY_PATH, *signatures, *[p for p in HEAD_FIRST if (staging / p).is_file()]]
        with create_exclusive(head_temporary) as handle:
            write_members(handle, staging, head_paths, consume=False)
            handle.flush()
            os.fsync(handle.fileno())
        check_split_out(out)
        for number, path in enumerate(sink.paths, 1):
            _place(path, volume_path(out, number))
            placed.append(volume_path(out, number))
        _place(head_temporary, volume_path(out, 0))
        placed.insert(0, volume_path(out, 0))
    except BaseException:
        sink.abort()
        head_temporary.unlink(missing_ok=True)
        for path in placed:
            path.unlink(missing_ok=True)
        raise
    return inventory, placed


def _place(temporary: Path, final: Path) -> None:
    """Give a finished volume its name; a file that appeared there meanwhile is never replaced (link, not rename)."""
    appeared = UsageError(f"{final}: appeared while the bundle was written", hint="choose a new output path")
    try:
        os.link(temporary, final)
    except FileExistsError:
        raise appeared from None
    except OSError:
        # Media file systems (FAT32, exFAT) have no hard links: check, then rename, which leaves a small window.
        if final.exists():
            raise appeared from None
        temporary.rename(final)
        return
    temporary.unlink()
