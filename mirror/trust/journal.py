"""The import journal's format: one canonical JSON object per line, each naming the sha256 of the line before.

See docs/journal.md. Reading is in journal_read.py, appending in journal_write.py, each kind's fields in
journal_schema.py.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from mirror.errors import MirrorError, Problem, VerificationError
from mirror.oci.document import strict_json
from mirror.trust.dsse import Envelope, Signature, pae
from mirror.trust.journal_schema import SchemaError, check_entry
from mirror.trust.keys import PublicKey, Signer
from mirror.trust.statement import parse_time

ENTRY_PAYLOAD_TYPE = "application/vnd.mirror.journal-entry.v1+json"

JOURNAL_MISSING = "JOURNAL_MISSING"
JOURNAL_TRUNCATED = "JOURNAL_TRUNCATED"
JOURNAL_CHAIN_BROKEN = "JOURNAL_CHAIN_BROKEN"
JOURNAL_HEAD_MISMATCH = "JOURNAL_HEAD_MISMATCH"
JOURNAL_HEAD_MISSING = "JOURNAL_HEAD_MISSING"
JOURNAL_ENTRY_INVALID = "JOURNAL_ENTRY_INVALID"
JOURNAL_UNSIGNED = "JOURNAL_UNSIGNED"
JOURNAL_SIGNATURE_INVALID = "JOURNAL_SIGNATURE_INVALID"

_RECOVERY_HINT = (
    "nothing was written; restore the journal and the trust state file together from a backup, or find out who "
    "changed them (docs/journal.md)"
)


class JournalError(VerificationError):
    """The journal does not match its head, or cannot be read as the format says (exit 3)."""

    def __init__(self, message: str, problems: list[Problem], hint: str | None = _RECOVERY_HINT) -> None:
        super().__init__(message, problems=problems, hint=hint)


def journal_file_for(state_file: Path) -> Path:
    return state_file.with_name(state_file.name + ".journal")


def canonical(body: Mapping[str, Any]) -> bytes:
    """The one spelling of an entry: keys sorted, no whitespace, ASCII (without the line's newline)."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def _unsigned(body: Mapping[str, Any]) -> bytes:
    return canonical({k: v for k, v in body.items() if k != "signature"})


def sign_body(body: dict[str, Any], signer: Signer) -> dict[str, Any]:
    """The entry with the importer's DSSE signature over its canonical bytes (without a signature field)."""
    sig = signer.sign(pae(ENTRY_PAYLOAD_TYPE, _unsigned(body)))
    return {**body, "signature": {"keyid": signer.public.key_id, "sig": base64.b64encode(sig).decode()}}


@dataclass(frozen=True)
class JournalEntry:
    """One line of the journal, parsed and checked against the format (not yet against its neighbours)."""

    body: Mapping[str, Any]
    sha256: str  # hex of the line's bytes, newline included: the next entry's `prev`
    line: bytes = field(repr=False)

    @property
    def seq(self) -> int:
        return int(self.body["seq"])

    @property
    def prev(self) -> str | None:
        return self.body["prev"]

    @property
    def kind(self) -> str:
        return str(self.body["kind"])

    @property
    def time(self) -> dt.datetime:
        return parse_time(self.body["time"], f"journal entry {self.seq}")

    @property
    def signed(self) -> bool:
        return "signature" in self.body

    def signed_by(self, keys: Iterable[PublicKey]) -> PublicKey | None:
        """The key among `keys` whose signature this entry carries; None if unsigned or none verifies."""
        signature = self.body.get("signature")
        if signature is None:
            return None
        envelope = Envelope(
            ENTRY_PAYLOAD_TYPE,
            _unsigned(self.body),
            (Signature(signature["keyid"], base64.b64decode(signature["sig"])),),
        )
        found = envelope.signed_by(list(keys))
        return found[0] if found else None


def parse_entry(line: bytes, number: int) -> JournalEntry:
    """Line `number` (from 1), its newline included, as an entry; JournalError (JOURNAL_ENTRY_INVALID) if it is
    not exactly one canonical JSON object of the format."""
    try:
        body = strict_json(line[:-1], f"line {number}")  # UTF-8, no duplicate keys, bounded depth
        check_entry(body)
    except (MirrorError, SchemaError) as exc:
        reason = exc.message if isinstance(exc, MirrorError) else str(exc)
        raise invalid(number, reason) from exc
    if canonical(body) + b"\n" != line:
        raise invalid(number, "not in the canonical form (keys sorted, no whitespace, ASCII)")
    return JournalEntry(MappingProxyType(body), hashlib.sha256(line).hexdigest(), line)


def invalid(number: int, reason: str) -> JournalError:
    problem = Problem(JOURNAL_ENTRY_INVALID, f"entry {number}: {reason}")
    return JournalError(f"journal entry {number} is not an entry of the format", [problem])
