"""What an audit found, for the command line (text and --json) and for the statement.

See docs/audit.md ("Output").
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mirror.audit.drift import DriftList
from mirror.audit.expected import HeldBundle
from mirror.audit.registry import RegistryChecked
from mirror.errors import DriftError
from mirror.trust.statement import format_time


@dataclass
class AuditReport:
    time: dt.datetime
    registry: str
    git: str | None
    journal_entries: int
    journal_head: str | None  # sha256 hex of the journal's last entry
    bundles: list[HeldBundle]
    drift: DriftList
    registry_checked: RegistryChecked = field(default_factory=RegistryChecked)
    refs_checked: int = 0
    only_journaled: bool = False
    notes: list[str] = field(default_factory=list)
    statement: Path | None = None  # written: the audit was clean
    statement_refused: Path | None = None  # asked for, and not written: the audit found drift

    @property
    def clean(self) -> bool:
        return self.drift.total == 0

    @property
    def sequences(self) -> str:
        """The held bundles' collector sequences as `N..M` (`-` when there are none)."""
        numbers = [b.sequence for b in self.bundles if b.sequence is not None]
        if not numbers:
            return "-"
        low, high = min(numbers), max(numbers)
        return str(low) if low == high else f"{low}..{high}"

    def predicate(self) -> dict[str, Any]:
        """The statement's predicate (docs/audit.md, "The statement")."""
        return {
            "time": format_time(self.time),
            "registry": self.registry,
            "git": self.git,
            "journal": {"entries": self.journal_entries, "sha256": self.journal_head},
            "bundles": [
                {"bundleId": b.bundle_id, "inventory": b.inventory, "sequence": b.sequence} for b in self.bundles
            ],
            "onlyJournaled": self.only_journaled,
            "clean": self.clean,
            "drift": self.drift.total,
        }

    def to_json(self) -> dict[str, object]:
        return {
            "apiVersion": "mirror/v1",
            "kind": "AuditReport",
            "time": format_time(self.time),
            "registry": self.registry,
            "git": self.git,
            "journal": {"entries": self.journal_entries, "sha256": self.journal_head},
            "bundles": [b.to_json() for b in self.bundles],
            "sequences": self.sequences,
            "clean": self.clean,
            "counts": {code: self.drift.counts[code] for code in sorted(self.drift.counts)},
            "driftTotal": self.drift.total,
            "drift": [d.to_json() for d in self.drift.sorted()],
            "driftOmitted": self.drift.omitted,
            "checked": {**self.registry_checked.to_json(), "refs": self.refs_checked},
            "onlyJournaled": self.only_journaled,
            "notes": self.notes,
            "statement": str(self.statement) if self.statement else None,
        }

    def require_clean(self) -> None:
        """DriftError (exit 5) when the targets differ; the drift itself is in the report."""
        if self.clean:
            return
        message = f"the targets differ from what the import journal says was imported: {self.drift.total} drift(s)"
        if self.statement_refused is not None:
            message += f"; no statement written to {self.statement_refused}"
        raise DriftError(
            message,
            hint='find out who changed the targets, and put them back (docs/audit.md, "After drift")',
        )
