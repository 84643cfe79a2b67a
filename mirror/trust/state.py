"""The high side's anti-rollback record: per collector key, the last sequence imported, and the newest
`created` ever accepted, which stands in for "now" when the clock runs behind it."""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from mirror.errors import BundleFormatError, UsageError
from mirror.fsutil import atomic_write
from mirror.oci.document import bounded_json
from mirror.trust.statement import format_time, parse_time

_HEX = re.compile(r"[a-f0-9]{64}")


@dataclass(frozen=True)
class CollectorRecord:
    sequence: int  # the last sequence imported from this collector key
    inventory: str  # that bundle's inventory sha256: re-importing the very same bundle is not a rollback


@dataclass
class TrustState:
    collectors: dict[str, CollectorRecord] = field(default_factory=dict)  # by collector key id
    latest_created: dt.datetime | None = None

    def to_bytes(self) -> bytes:
        body = {
            "collectors": {
                k: {"sequence": v.sequence, "inventory": v.inventory} for k, v in sorted(self.collectors.items())
            },
            "latestCreated": format_time(self.latest_created) if self.latest_created else None,
        }
        return json.dumps(body, indent=1).encode() + b"\n"


def load_state(path: Path) -> TrustState:
    if not path.exists():
        return TrustState()
    try:
        body = bounded_json(path.read_bytes())
        collectors = {}
        for key_id, record in body["collectors"].items():
            sequence, inventory = record["sequence"], record["inventory"]
            if (
                type(sequence) is not int
                or sequence < 1
                or not isinstance(inventory, str)
                or not _HEX.fullmatch(inventory)
            ):
                raise ValueError(f"collector {key_id}: malformed record")
            collectors[str(key_id)] = CollectorRecord(sequence, inventory)
        latest = body.get("latestCreated")
        return TrustState(collectors, parse_time(latest, str(path)) if latest else None)
    except (OSError, ValueError, KeyError, TypeError, AttributeError, BundleFormatError) as exc:
        raise UsageError(
            f"{path}: the trust state file is unreadable",
            hint="restore it from backup; deleting it disables rollback protection for the next import",
        ) from exc


def save_state(path: Path, state: TrustState) -> None:
    atomic_write(path, state.to_bytes())
