"""Appending to the import journal, under the trust state lock: the whole journal checked first, what a crash
left repaired, then each entry fsync'd before the state file's head moves to it.

See docs/journal.md ("The head", "Recovery from a crash").
"""

from __future__ import annotations

import datetime as dt
import os
import stat
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from mirror.errors import TransferError, UsageError
from mirror.fsutil import sync_directory
from mirror.limits import DEFAULT_LIMITS, Limits
from mirror.trust.journal import JournalEntry, JournalError, canonical, parse_entry, sign_body
from mirror.trust.journal_read import JournalCheck, check_journal
from mirror.trust.journal_schema import FORMAT_VERSION, OMITTABLE, check_entry
from mirror.trust.keys import Signer
from mirror.trust.policy import Importers
from mirror.trust.state import JournalHead, TrustState, load_state, save_state
from mirror.trust.statement import format_time

_APPEND = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
_TRUNCATE = os.O_WRONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


class JournalWriteError(TransferError):
    """An entry could not be appended, or the head not moved (exit 4: what was done is kept; run again)."""


def check_importer_key(importers: Importers | None, signer: Signer | None, flag: str = "--importer-key") -> None:
    """The policy's importer keys and the key given agree (exit 2 if not): checked before anything is done."""
    if importers is None:
        return
    if signer is None:
        raise UsageError(
            f"the trust policy lists importer keys, so every journal entry must be signed: give {flag} KEY",
            hint="docs/journal.md, Importer signatures",
        )
    if signer.public not in importers.keys:
        raise UsageError(f"{flag}: key {signer.public.key_id} is not one of the trust policy's importers keys")


class JournalWriter:
    """Appends entries to a journal checked whole by `open_journal`; hold the state lock while using it."""

    def __init__(
        self, state_file: Path, check: JournalCheck, *, limits: Limits, signer: Signer | None, notes: list[str]
    ) -> None:
        self.state_file = state_file
        self.path = check.path
        self.limits = limits
        self.signer = signer
        self.entries = check.entries
        self.last_sha256 = check.last_sha256
        self.size = check.size
        self._notes = notes  # said in the first entry appended
        self._adopt: TrustState | None = load_state(state_file) if check.adopt else None

    def append(self, kind: str, fields: Mapping[str, Any]) -> JournalEntry:
        """One entry of `kind` with `fields` (the kind's own, and optional notes); ValueError, before anything is
        written, if they are not the kind's; JournalWriteError if the file system fails."""
        if self._adopt is not None:
            self._write("adopt", {"state": _snapshot(self._adopt)})
            self._adopt = None
        return self._write(kind, fields)

    def _write(self, kind: str, fields: Mapping[str, Any]) -> JournalEntry:
        body = {
            **fields,
            "v": FORMAT_VERSION,
            "seq": self.entries + 1,
            "prev": f"sha256:{self.last_sha256}" if self.last_sha256 else None,
            "time": format_time(dt.datetime.now(dt.UTC)),
            "kind": kind,
            "notes": [*self._notes, *fields.get("notes", [])],
        }
        check_entry(body)  # a SchemaError (ValueError) is mirror's own mistake: nothing is written
        line = self._line(body)
        entry = parse_entry(line, body["seq"])  # what is written reads back exactly
        try:
            self._append_line(line)
            state = load_state(self.state_file)
            state.journal = JournalHead(entry.seq, entry.sha256)
            save_state(self.state_file, state)
        except OSError as exc:
            raise JournalWriteError(
                f"{self.path}: journal entry {entry.seq} could not be recorded: {exc.strerror or exc}",
                hint="what the run did is kept; run it again to record it (docs/journal.md)",
            ) from exc
        self.entries, self.last_sha256, self.size = entry.seq, entry.sha256, self.size + len(line)
        self._notes = []
        return entry

    def _line(self, body: dict[str, Any]) -> bytes:
        limit = self.limits.max_journal_entry_bytes
        line = self._signed(body)
        omittable = OMITTABLE.get(body["kind"])
        if len(line) > limit and omittable and body[omittable] is not None:
            note = (
                f"{omittable} left out: the entry would be longer than Limits.max_journal_entry_bytes ({limit:,} bytes)"
            )
            body = {**body, omittable: None, "notes": [*body["notes"], note]}
            line = self._signed(body)
        if len(line) > limit:
            raise JournalWriteError(f"{self.path}: entry {body['seq']} is longer than Limits.max_journal_entry_bytes")
        return line

    def _signed(self, body: dict[str, Any]) -> bytes:
        return canonical(sign_body(body, self.signer) if self.signer else body) + b"\n"

    def _append_line(self, line: bytes) -> None:
        descriptor = os.open(self.path, _APPEND, 0o644)
        try:
            info = os.fstat(descriptor)
            if not stat.S_ISREG(info.st_mode) or info.st_size != self.size:
                raise OSError(0, "the journal changed since it was checked; is something writing it without the lock?")
            view = memoryview(line)
            while view:
                view = view[os.write(descriptor, view) :]
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        if self.size == 0:
            sync_directory(self.path.parent)  # the journal's own name, when this line created it


def _snapshot(state: TrustState) -> dict[str, Any]:
    return {
        "collectors": {k: {"sequence": v.sequence, "inventory": v.inventory} for k, v in state.collectors.items()},
        "latestCreated": format_time(state.latest_created) if state.latest_created else None,
    }


def open_journal(
    state_file: Path,
    *,
    limits: Limits = DEFAULT_LIMITS,
    importers: Importers | None = None,
    signer: Signer | None = None,
    warn: Callable[[str], None] | None = None,
) -> JournalWriter:
    """Under the state lock: the whole journal checked against the head (JournalError, exit 3, on any problem),
    what a crash left repaired (said through `warn`, and in the first entry's notes), and a writer returned."""
    check_importer_key(importers, signer)
    check = check_journal(state_file, limits=limits, importers=importers)
    if check.problems:
        raise JournalError(
            f"{check.path}: the import journal does not match the trust state; refused before anything was done",
            check.problems,
        )
    if check.torn_tail:
        _cut_torn_tail(check.path, check.size)
    say = warn or _quiet
    for note in check.repairs:
        say(f"{check.path}: {note}")
    if check.adopt:
        say(f"{check.path}: the trust state file predates the journal; it starts here, with an entry recording it")
    return JournalWriter(state_file, check, limits=limits, signer=signer, notes=check.repairs)


def _cut_torn_tail(path: Path, size: int) -> None:
    try:
        descriptor = os.open(path, _TRUNCATE)
        try:
            os.ftruncate(descriptor, size)
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
    except OSError as exc:
        raise JournalWriteError(f"{path}: cannot cut off its incomplete last line: {exc.strerror}") from exc


def _quiet(_: str) -> None:
    pass
