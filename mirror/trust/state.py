"""The high side's anti-rollback record: per collector key, the last sequence imported, and the newest
`created` ever accepted, which stands in for "now" when the clock runs behind it; and the import journal's head
(docs/journal.md)."""

from __future__ import annotations

import datetime as dt
import json
import os
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


@dataclass(frozen=True)
class JournalHead:
    entries: int  # how many entries the journal has
    sha256: str  # hex of its last line's bytes, newline included


@dataclass
class TrustState:
    collectors: dict[str, CollectorRecord] = field(default_factory=dict)  # by collector key id
    latest_created: dt.datetime | None = None
    journal: JournalHead | None = None  # None: no journal entry yet (or a state file older than the journal)

    @property
    def records_imports(self) -> bool:
        return bool(self.collectors) or self.latest_created is not None

    def to_bytes(self) -> bytes:
        body = {
            "collectors": {
                k: {"sequence": v.sequence, "inventory": v.inventory} for k, v in sorted(self.collectors.items())
            },
            "latestCreated": format_time(self.latest_created) if self.latest_created else None,
            "journal": {"entries": self.journal.entries, "sha256": self.journal.sha256} if self.journal else None,
        }
        return json.dumps(body, indent=1).encode() + b"\n"


def _journal_head(value: object) -> JournalHead | None:
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) != {"entries", "sha256"}:
        raise ValueError("journal: expected entries and sha256")
    entries, sha256 = value["entries"], value["sha256"]
    if type(entries) is not int or entries < 1 or not isinstance(sha256, str) or not _HEX.fullmatch(sha256):
        raise ValueError("journal: malformed head")
    return JournalHead(entries, sha256)


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
        head = _journal_head(body.get("journal"))
        return TrustState(collectors, parse_time(latest, str(path)) if latest else None, head)
    except (OSError, ValueError, KeyError, TypeError, AttributeError, BundleFormatError) as exc:
        raise UsageError(
            f"{path}: the trust state file is unreadable",
            hint="restore it from backup; deleting it disables rollback protection for the next import",
        ) from exc


def check_state_location(path: Path) -> None:
    """Before an import's first write: the state file can be written where the policy says (exit 2 if not)."""
    directory = path.parent
    if not directory.is_dir():
        raise UsageError(
            f"{directory}: the directory of the trust state file {path.name} does not exist",
            hint="create it, or correct stateFile in the trust policy (relative paths are relative to the policy)",
        )
    if not os.access(directory, os.W_OK | os.X_OK):
        raise UsageError(f"{directory}: not writable, and the trust state file {path.name} is written there")
    if path.is_dir():
        raise UsageError(f"{path}: the trust state file is a directory")


def save_state(path: Path, state: TrustState) -> None:
    atomic_write(path, state.to_bytes())
