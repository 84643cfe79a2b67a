"""Reading the import journal: its entries streamed and chained, the whole checked against the state's head, and
the bundles it says were imported. Nothing here writes.

See docs/journal.md ("The check", "Reading it from code").
"""

from __future__ import annotations

import datetime as dt
import errno
import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mirror.errors import Problem, cap_problems
from mirror.limits import DEFAULT_LIMITS, Limits
from mirror.trust.journal import (
    JOURNAL_CHAIN_BROKEN,
    JOURNAL_ENTRY_INVALID,
    JOURNAL_HEAD_MISMATCH,
    JOURNAL_HEAD_MISSING,
    JOURNAL_MISSING,
    JOURNAL_SIGNATURE_INVALID,
    JOURNAL_TRUNCATED,
    JOURNAL_UNSIGNED,
    JournalEntry,
    JournalError,
    journal_file_for,
    parse_entry,
)
from mirror.trust.policy import Importers
from mirror.trust.state import JournalHead, TrustState, load_state

_OPEN = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


class _Reader:
    """Complete lines one at a time, each parsed and chained onto the one before; what follows the last newline
    (a write cut short) is counted in `torn`, never parsed."""

    def __init__(self, path: Path, limits: Limits) -> None:
        self.path = path
        self.limits = limits
        self.size = 0  # bytes of the complete lines read
        self.torn = 0

    def entries(self) -> Iterator[JournalEntry]:
        try:
            descriptor = os.open(self.path, _OPEN)
        except FileNotFoundError:
            return
        except OSError as exc:
            reason = "a symbolic link, which mirror does not follow" if exc.errno == errno.ELOOP else exc.strerror
            raise _error(JOURNAL_ENTRY_INVALID, f"{self.path}: cannot be read: {reason}") from exc
        with os.fdopen(descriptor, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise _error(JOURNAL_ENTRY_INVALID, f"{self.path}: not a regular file")
            yield from self._chained(handle)

    def _chained(self, handle: Any) -> Iterator[JournalEntry]:
        limit = self.limits.max_journal_entry_bytes
        previous: JournalEntry | None = None
        number = 0
        while line := handle.readline(limit + 1):  # never more than one line in memory
            number += 1
            if len(line) > limit:
                raise _error(
                    JOURNAL_ENTRY_INVALID,
                    f"entry {number}: longer than Limits.max_journal_entry_bytes ({limit:,} bytes)",
                )
            if not line.endswith(b"\n"):
                self.torn = len(line)
                return
            entry = parse_entry(line, number)
            expected = None if previous is None else f"sha256:{previous.sha256}"
            if entry.seq != number:
                raise _broken(number, f"numbered {entry.seq}")
            if entry.prev != expected:
                raise _broken(number, f"its prev is not the sha256 of entry {number - 1}" if previous else "a prev")
            self.size += len(line)
            previous = entry
            yield entry


def _broken(number: int, what: str) -> JournalError:
    return _error(JOURNAL_CHAIN_BROKEN, f"entry {number}: {what}: an entry was edited, inserted, removed or moved")


def _error(code: str, message: str) -> JournalError:
    return JournalError(f"the import journal is damaged: {message}", [Problem(code, message)])


def iter_entries(path: Path, *, limits: Limits = DEFAULT_LIMITS) -> Iterator[JournalEntry]:
    """The journal's entries in order, each chained onto the one before (JournalError at the first that is not);
    neither the head nor signatures are checked: see check_journal. A missing journal has no entries."""
    yield from _Reader(path, limits).entries()


@dataclass
class JournalCheck:
    path: Path
    head: JournalHead | None  # as the state file records it
    problems: list[Problem] = field(default_factory=list)
    entries: int = 0  # complete entries read before any problem
    last_sha256: str | None = None
    size: int = 0  # bytes of those entries
    beyond_head: int = 0  # 1: an entry a crash left unrecorded in the state file
    torn_tail: int = 0  # bytes of an incomplete last line a crash left
    adopt: bool = False  # no journal yet, and a state file that records imports: the journal starts here

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def notes(self) -> list[str]:
        """What a crash left that the next writer repairs, and an adoption to come; not problems."""
        adoption = "the trust state file records imports and there is no journal yet: the next import starts it"
        return [*self.repairs, *([adoption] if self.adopt else [])]

    @property
    def repairs(self) -> list[str]:
        """What a crash left that the next writer repairs (and records in the notes of its first entry)."""
        notes = []
        if self.beyond_head and self.head is not None:
            notes.append(
                f"entry {self.head.entries + 1} was appended by a run that stopped before the trust state file "
                "recorded it; it chains onto the head, so it is accepted, and the next entry moves the head past it"
            )
        if self.torn_tail:
            notes.append(
                f"an incomplete last line of {self.torn_tail} byte(s), from a write cut short, is not an entry; "
                "a writer cuts it off before it appends"
            )
        return notes


def check_journal(
    state_file: Path, *, limits: Limits = DEFAULT_LIMITS, importers: Importers | None = None
) -> JournalCheck:
    """The whole journal against the state file's head, and the policy's importer signatures; changes nothing.

    A state file that cannot be read raises its UsageError (exit 2), as for the trust check.
    """
    state = load_state(state_file)
    check = JournalCheck(journal_file_for(state_file), state.journal)
    if not os.path.lexists(check.path):
        if state.journal is not None:
            check.problems.append(
                Problem(JOURNAL_MISSING, f"{check.path}: missing, and the state records {state.journal.entries}")
            )
        check.adopt = state.journal is None and state.records_imports
        return check
    reader = _Reader(check.path, limits)
    walk = _Walk(state.journal)
    found = cap_problems(walk.problems(reader, importers), limits.max_problems)  # bounded, however many
    check.entries, check.last_sha256 = walk.entries, walk.last_sha256
    if walk.broken:
        check.problems = found
        return check
    check.size, check.torn_tail = reader.size, reader.torn
    head = _head_problems(check, state.journal, walk.at_head)
    if check.beyond_head and walk.last is not None:
        head += _unrecorded_problems(check, walk.last, state) + _unrepeated_problems(check, walk.last, walk.landed)
    check.problems = cap_problems([*head, *found], limits.max_problems)
    if state.journal is None and check.entries == 0:
        check.adopt = state.records_imports
    return check


@dataclass
class _Walk:
    """The entries read, with what the head check needs; the problems (chain, signatures) as they are found."""

    head: JournalHead | None
    entries: int = 0
    last_sha256: str | None = None
    at_head: str | None = None  # the hash of the entry the head counts to
    broken: bool = False
    last: JournalEntry | None = None
    landed: dict[int, str] = field(default_factory=dict)  # seq → inventory of each entry that landed a bundle

    def problems(self, reader: _Reader, importers: Importers | None) -> Iterator[Problem]:
        try:
            for entry in reader.entries():
                self.entries, self.last_sha256, self.last = entry.seq, entry.sha256, entry
                if landed(entry):
                    self.landed[entry.seq] = str(entry.body["inventory"])
                if self.head is not None and entry.seq == self.head.entries:
                    self.at_head = entry.sha256
                if importers is not None and entry.seq >= importers.from_entry:
                    yield from _signature_problems(entry, importers)
        except JournalError as exc:
            self.broken = True
            yield from exc.problems


def _head_problems(check: JournalCheck, head: JournalHead | None, at_head: str | None) -> list[Problem]:
    where = str(check.path)
    if head is None:
        if check.entries:
            return [
                Problem(
                    JOURNAL_HEAD_MISSING,
                    f"{where}: {check.entries} entries, and the trust state file records no head (deleted, "
                    "replaced, or written by an older mirror)",
                )
            ]
        return []
    if check.entries < head.entries:
        return [Problem(JOURNAL_TRUNCATED, f"{where}: {check.entries} entries, and the state records {head.entries}")]
    if at_head != head.sha256:
        return [
            Problem(JOURNAL_HEAD_MISMATCH, f"{where}: entry {head.entries} is not the one the state records as head")
        ]
    if check.entries > head.entries + 1:
        beyond = check.entries - head.entries
        return [
            Problem(
                JOURNAL_HEAD_MISMATCH,
                f"{where}: {beyond} entries beyond the head the state records; a crash leaves at most one",
            )
        ]
    check.beyond_head = check.entries - head.entries
    return []


def _unrecorded_problems(check: JournalCheck, entry: JournalEntry, state: TrustState) -> list[Problem]:
    """The entry beyond the head is a crash's only if the state is the one that crash left: an import records
    its bundle in the trust state before its first write, so an import entry that says it got that far must find
    the state recording its bundle for each of its collectors. Else the state is an older copy put back (one
    import older than the journal): its rollback record has forgotten that bundle."""
    body = entry.body
    progress = body.get("progress") or {}
    recorded = body.get("result") == "imported" or (body.get("result") == "partial" and progress.get("stateRecorded"))
    if entry.kind != "import" or not recorded or body.get("inventory") is None:
        return []
    inventory = str(body["inventory"]).removeprefix("sha256:")
    forgotten = [
        key
        for key in body.get("collectors", [])
        if (record := state.collectors.get(key)) is None or record.inventory != inventory
    ]
    if not forgotten:
        return []
    return [
        Problem(
            JOURNAL_HEAD_MISMATCH,
            f"{check.path}: entry {entry.seq}, beyond the head, imported {body['inventory']}, and the trust state "
            "does not record it: not what a crash leaves (an older copy of the state file?)",
        )
    ]


def _unrepeated_problems(check: JournalCheck, entry: JournalEntry, landed: dict[int, str]) -> list[Problem]:
    """A `restored` entry beyond the head is a crash's only if the entry it `restores` landed the same bundle:
    else it is a line appended by someone who can write the journal, naming a bundle no import ever landed, which
    restore would then take as imported (and judge for neither age nor sequence)."""
    body = entry.body
    if entry.kind != "restore" or body.get("result") != "restored":
        return []
    restores = body.get("restores")
    if isinstance(restores, int) and restores < entry.seq and landed.get(restores) == body.get("inventory"):
        return []
    return [
        Problem(
            JOURNAL_HEAD_MISMATCH,
            f"{check.path}: entry {entry.seq}, beyond the head, restores {body.get('inventory')}, which entry "
            f"{restores} did not land: not what a crash leaves",
        )
    ]


def _signature_problems(entry: JournalEntry, importers: Importers) -> list[Problem]:
    if not entry.signed:
        return [Problem(JOURNAL_UNSIGNED, f"entry {entry.seq}: not signed, and the policy lists importer keys")]
    if entry.signed_by(importers.keys) is None:
        return [Problem(JOURNAL_SIGNATURE_INVALID, f"entry {entry.seq}: no importer key of the policy verifies it")]
    return []


# --- what the journal says was imported ------------------------------------------------------------------------


@dataclass(frozen=True)
class LandedImage:
    repository: str  # the full path on the registry, prefix included, no host
    tag: str | None
    digest: str
    manifests: tuple[str, ...]  # every manifest digest of its graph


@dataclass(frozen=True)
class LandedManifest:
    repository: str
    tag: str | None
    digest: str


@dataclass(frozen=True)
class LandedRef:
    repository: str  # the Git target URL
    ref: str
    new: str


@dataclass(frozen=True)
class ImportedBundle:
    seq: int  # the entry of its latest import
    time: dt.datetime
    bundle_id: str
    inventory: str  # sha256:<hex>
    sequence: int | None
    registry: str
    git: str | None
    images: tuple[LandedImage, ...]
    attached: tuple[LandedManifest, ...]
    refs: tuple[LandedRef, ...]
    flux_files: int
    listed: bool  # False: the entry was too large to list what was written (its lists are empty)

    @classmethod
    def from_entry(cls, entry: JournalEntry) -> ImportedBundle:
        body = entry.body
        written = body["written"] or {"images": [], "attached": [], "git": [], "fluxFiles": 0}
        return cls(
            seq=entry.seq,
            time=entry.time,
            bundle_id=str(body["bundleId"]),
            inventory=str(body["inventory"]),
            sequence=body["sequence"],
            registry=body["registry"],
            git=body["git"],
            images=tuple(
                LandedImage(i["repository"], i["tag"], i["digest"], tuple(i["manifests"])) for i in written["images"]
            ),
            attached=tuple(LandedManifest(a["repository"], a["tag"], a["digest"]) for a in written["attached"]),
            refs=tuple(LandedRef(r["repository"], r["ref"], r["new"]) for r in written["git"]),
            flux_files=written["fluxFiles"],
            listed=body["written"] is not None,
        )


# The entries that say a bundle's content is on its target: an import, and a restore (which repeats one).
LANDED = {("import", "imported"), ("restore", "restored")}


def landed(entry: JournalEntry) -> bool:
    """Whether the entry says its bundle was imported whole (by `import` or by `restore`)."""
    body = entry.body
    return (entry.kind, body.get("result")) in LANDED and body.get("inventory") is not None


def imported_bundles(entries: Iterable[JournalEntry]) -> list[ImportedBundle]:
    """One per inventory, from its latest `imported` (or `restored`) entry, ordered by that entry (oldest first);
    refused, failed and partial attempts are not imports."""
    latest: dict[str, ImportedBundle] = {}
    for entry in entries:
        body = entry.body
        if not landed(entry):
            continue
        latest.pop(body["inventory"], None)  # re-inserted last: the order is that of the latest import
        latest[body["inventory"]] = ImportedBundle.from_entry(entry)
    return list(latest.values())
