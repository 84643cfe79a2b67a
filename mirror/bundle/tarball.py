"""Writing a bundle directory as a plain ustar file, deleting each blob once it is in the tar.

The staging directory and the tar are never both whole on disk: peak extra space is one blob.
"""

from __future__ import annotations

import tarfile
from collections.abc import Sequence
from pathlib import Path

from mirror.bundle.inventory import INVENTORY_PATH, Inventory
from mirror.errors import UsageError

# Fixed metadata keeps tars of the same content byte-identical.
_MTIME = 0


def _info(name: str, size: int = 0, directory: bool = False) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = _MTIME
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    if directory:
        info.type = tarfile.DIRTYPE
        info.mode = 0o755
    else:
        info.mode = 0o644
    return info


def member_order(inventory: Inventory, signatures: Sequence[str] = ()) -> list[str]:
    """The inventory and its signatures first, so a reader can learn what to expect before any blob."""
    rest = sorted(f.path for f in inventory.files)
    first = [p for p in ("oci-layout", "index.json") if p in rest]
    return [INVENTORY_PATH, *sorted(signatures), *first, *[p for p in rest if p not in first]]


def write_tar(staging: Path, inventory: Inventory, out: Path, signatures: Sequence[str] = ()) -> None:
    with tarfile.open(out, "w", format=tarfile.USTAR_FORMAT) as tar:
        directories_written = False
        if signatures:
            tar.addfile(_info("signatures", directory=True))
        for path in member_order(inventory, signatures):
            if path.startswith("blobs/") and not directories_written:
                tar.addfile(_info("blobs", directory=True))
                tar.addfile(_info("blobs/sha256", directory=True))
                directories_written = True
            source = staging / path
            size = source.stat().st_size
            try:
                info = _info(path, size)
                with open(source, "rb") as handle:
                    tar.addfile(info, handle)
            except ValueError as exc:  # tarfile refuses what ustar cannot express, e.g. members of 8 GiB or more
                raise UsageError(
                    f"{path}: {size} bytes cannot be stored in a plain ustar member ({exc})",
                    hint="write the bundle as a directory instead",
                ) from exc
            if path.startswith("blobs/"):
                source.unlink()
