"""What a review reads: a bundle (any form open_bundle accepts) or an inventory file written beside one.

A bundle is opened with one call to the bundle reader, so every form it learns (directory, .tar, volumes)
is reviewable. An inventory file gives the artifact listing only: no signatures, image configs or charts.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from mirror.bundle.inventory import INVENTORY_PATH, BaseRecord, Inventory, VolumeRecord, parse_inventory
from mirror.bundle.opening import open_bundle
from mirror.bundle.reader import BundleReader, read_small
from mirror.errors import UsageError
from mirror.limits import DEFAULT_LIMITS, Limits


@dataclass(frozen=True)
class Source:
    location: str
    inventory: Inventory
    inventory_sha256: str  # hex of inventory.json's bytes: what signatures sign and what a `base` names
    reader: BundleReader | None  # None when only an inventory file was given

    @property
    def base(self) -> BaseRecord | None:
        """The bundle this one is incremental to, as its inventory names it."""
        return self.inventory.base

    @property
    def expected(self) -> tuple[tuple[str, int], ...]:
        """(digest, size) of what the base chain carried and this bundle leaves to it: the blobs its inventory
        lists, and the manifests of the artifacts it does not carry (each with its whole graph)."""
        return tuple(self.inventory.expected_sizes.items())

    @property
    def volumes(self) -> tuple[VolumeRecord, ...]:
        return self.inventory.volumes

    @property
    def blob_sizes(self) -> dict[str, int]:
        """Every blob this bundle carries, by digest."""
        return {"sha256:" + f.sha256: f.size for f in self.inventory.files if f.path.startswith("blobs/sha256/")}


def _from_bytes(raw: bytes, location: str, reader: BundleReader | None) -> Source:
    return Source(location, parse_inventory(raw), hashlib.sha256(raw).hexdigest(), reader)


def open_source(path: str | Path, limits: Limits = DEFAULT_LIMITS) -> Source:
    """A bundle (directory, .tar or first volume) or an inventory file (`*.json`)."""
    location = Path(path)
    if location.is_file() and location.name.endswith(".json"):
        if location.stat().st_size > limits.max_inventory_bytes:
            raise UsageError(f"{location}: larger than {limits.max_inventory_bytes} bytes; not an inventory")
        with open(location, "rb") as handle:
            raw = handle.read(limits.max_inventory_bytes + 1)
        return _from_bytes(raw, str(location), None)
    reader = open_bundle(location, limits)
    return _from_bytes(read_small(reader, INVENTORY_PATH, limits.max_inventory_bytes), str(location), reader)
