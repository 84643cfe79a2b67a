"""open_bundle: the one call that opens any bundle, whatever its form (a directory, a .tar, the head volume of a
split bundle). It sits above reader.py and volumes.py, so neither needs the other's dispatch."""

from __future__ import annotations

from pathlib import Path

from mirror.bundle.reader import BundleReader, DirectoryBundle, TarBundle, kind_of
from mirror.bundle.volumes import open_if_split
from mirror.errors import UsageError
from mirror.limits import DEFAULT_LIMITS, Limits


def open_bundle(path: str | Path, limits: Limits = DEFAULT_LIMITS) -> BundleReader:
    location = Path(path)
    if location.is_dir():
        return DirectoryBundle(location, limits)
    if location.is_file():
        return open_if_split(location, limits) or TarBundle(location, limits)
    if location.exists():
        raise UsageError(
            f"{location}: not a regular file or directory ({kind_of(location.stat().st_mode)})",
            hint="give a bundle directory, a .tar file or the head volume NAME.tar.000",
        )
    raise UsageError(
        f"{location}: no bundle here", hint="give a bundle directory, a .tar file or the head volume NAME.tar.000"
    )
