"""What a review reads: a bundle (any form open_bundle accepts) or an inventory file written beside one.

A bundle is opened with one call to the bundle reader, so every form it learns (directory, .tar, volumes)
is reviewable. An inventory file gives the artifact listing only: no signatures, image configs or charts.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mirror.bundle.inventory import INVENTORY_PATH, Inventory, parse_inventory
from mirror.bundle.reader import BundleReader, open_bundle, read_small
from mirror.errors import BundleFormatError, UsageError
from mirror.limits import DEFAULT_LIMITS, Limits
from mirror.oci.digest import is_digest
from mirror.oci.document import strict_json


@dataclass(frozen=True)
class BaseRef:
    """The bundle an incremental bundle builds on, as its inventory names it."""

    inventory: str  # sha256:<hex> of the base's inventory.json
    bundle_id: str
    created: str


@dataclass(frozen=True)
class Source:
    location: str
    inventory: Inventory
    inventory_sha256: str  # hex of inventory.json's bytes: what signatures sign and what a `base` names
    reader: BundleReader | None  # None when only an inventory file was given
    base: BaseRef | None = None
    expected: tuple[tuple[str, int], ...] = ()  # (digest, size) of blobs the base chain carried
    volumes: tuple[dict[str, Any], ...] = field(default_factory=tuple)

    @property
    def blob_sizes(self) -> dict[str, int]:
        """Every blob this bundle carries, by digest."""
        return {"sha256:" + f.sha256: f.size for f in self.inventory.files if f.path.startswith("blobs/sha256/")}


def _fail(location: str, problem: str) -> BundleFormatError:
    return BundleFormatError(f"{location}: {INVENTORY_PATH}: {problem}", hint="the inventory may have been modified")


def _size(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def optional_fields(raw: bytes, location: str) -> tuple[BaseRef | None, tuple[tuple[str, int], ...], tuple]:
    """The incremental and volume fields (`base`, `expected`, `volumes`), checked strictly when present."""
    body = strict_json(raw, f"{location}: {INVENTORY_PATH}")
    base = None
    value = body.get("base") if isinstance(body, dict) else None
    if value is not None:
        if (
            not isinstance(value, dict)
            or not is_digest(value.get("inventory"))
            or not all(isinstance(value.get(k), str) for k in ("bundleId", "created"))
        ):
            raise _fail(location, "base: expected inventory (a sha256 digest), bundleId and created")
        base = BaseRef(value["inventory"], value["bundleId"], value["created"])
    expected: list[tuple[str, int]] = []
    for i, item in enumerate(body.get("expected") or [] if isinstance(body, dict) else []):
        if not isinstance(item, dict) or not is_digest(item.get("digest")) or not _size(item.get("size")):
            raise _fail(location, f"expected[{i}]: expected a digest and a size")
        expected.append((item["digest"], item["size"]))
    volumes = body.get("volumes") or [] if isinstance(body, dict) else []
    if not isinstance(volumes, list) or not all(isinstance(v, dict) for v in volumes):
        raise _fail(location, "volumes: expected a list of objects")
    return base, tuple(expected), tuple(volumes)


def _from_bytes(raw: bytes, location: str, reader: BundleReader | None) -> Source:
    inventory = parse_inventory(raw)
    base, expected, volumes = optional_fields(raw, location)
    return Source(location, inventory, hashlib.sha256(raw).hexdigest(), reader, base, expected, volumes)


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
