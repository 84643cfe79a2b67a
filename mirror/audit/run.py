"""`mirror audit`: check the journal, fold it, read the targets, compare, and sign a clean result.

See docs/audit.md. Nothing here writes to a target, the journal or the trust state; the one file written is the
statement, and only when the audit is clean.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import httpx

from mirror.audit.drift import DriftList
from mirror.audit.expected import Expected, fold
from mirror.audit.git import check_git
from mirror.audit.registry import check_registry
from mirror.audit.report import AuditReport
from mirror.audit.statement import audit_statement, check_statement_flags, write_statement
from mirror.audit.targets import GitTarget, open_registry
from mirror.errors import Problem, UsageError
from mirror.landing import parse_git_target, parse_target
from mirror.limits import DEFAULT_LIMITS, Limits
from mirror.progress import Progress
from mirror.trust.journal import JOURNAL_CHAIN_BROKEN, JournalEntry, JournalError
from mirror.trust.journal_read import JournalCheck, check_journal, iter_entries
from mirror.trust.keys import Signer, load_signer
from mirror.trust.policy import TrustPolicy, load_policy
from mirror.trust.state import load_state


def audit(
    trust: Path,
    registry_url: str,
    *,
    git_url: str | None = None,
    jobs: int = 8,
    ca_file: str | None = None,
    only_journaled: bool = False,
    statement: Path | None = None,
    key: Path | None = None,
    limits: Limits = DEFAULT_LIMITS,
    progress: Progress | None = None,
    clock: dt.datetime | None = None,
    transport: httpx.BaseTransport | None = None,
) -> AuditReport:
    """The targets compared with the journal of `trust`'s state file (docs/audit.md).

    Raises JournalError (exit 3) when the journal is damaged, before any target is read; a TransferError (exit 4)
    when a target cannot be read. Drift is in the report (`require_clean` raises DriftError, exit 5).
    transport: stands in for the registry's network (tests: the registry simulator).
    """
    progress = progress or Progress(quiet=True)
    endpoint = parse_target(registry_url, ca_file)
    git_base = parse_git_target(git_url) if git_url else None
    check_statement_flags(statement, key)
    signer: Signer | None = load_signer(key) if key is not None else None
    policy = load_policy(trust)
    check, expected = _read_journal(policy, endpoint.url, git_base, limits)
    if statement is not None and not expected.bundles:
        raise UsageError(f"--statement {statement}: the journal records no bundle held on {expected.registry}")
    time = clock or dt.datetime.now(dt.UTC).replace(microsecond=0)
    drift = DriftList(limits.max_drift_listed)
    report = AuditReport(
        time,
        expected.registry,
        git_base,
        check.entries,
        check.last_sha256,
        list(expected.bundles.values()),
        drift,
        only_journaled=only_journaled,
        notes=[*check.notes, *expected.notes],
    )
    with open_registry(registry_url, ca_file=ca_file, jobs=jobs, limits=limits, transport=transport) as registry:
        progress.log(f"audit: {len(expected.tags)} tag(s) and {len(expected.manifests)} image(s) on {report.registry}")
        report.registry_checked = check_registry(
            expected,
            registry,
            prefix=endpoint.repo_prefix,
            only_journaled=only_journaled,
            report=drift.add,
            note=report.notes.append,
        )
    if git_base is not None:
        git = GitTarget.open(git_base, ca_file=ca_file, limits=limits)
        report.refs_checked = check_git(expected, git, jobs=jobs, only_journaled=only_journaled, report=drift.add)
    _note_unchecked(expected, report)
    if load_state(policy.state_file).journal != check.head:
        report.notes.append("the journal grew while the targets were read (an import ran): run the audit again")
    if statement is not None and signer is not None:
        _statement(report, statement, signer)
    return report


def _read_journal(
    policy: TrustPolicy, registry: str, git_base: str | None, limits: Limits
) -> tuple[JournalCheck, Expected]:
    """The journal checked whole (JournalError, exit 3, on any problem), then folded for this registry and base."""
    check = check_journal(policy.state_file, limits=limits, importers=policy.importers)
    if not check.ok:
        raise JournalError("the import journal is damaged: nothing was compared", check.problems)
    expected = fold(_checked_entries(check, limits), registry, git_base)
    _require_known_target(expected, check)
    return check, expected


def _checked_entries(check: JournalCheck, limits: Limits) -> Iterator[JournalEntry]:
    """The entries the check read, and no more; the same ones (the last must hash as the check found it)."""
    last: JournalEntry | None = None
    for entry in iter_entries(check.path, limits=limits):
        if entry.seq > check.entries:
            break
        last = entry
        yield entry
    if check.entries and (last is None or last.seq != check.entries or last.sha256 != check.last_sha256):
        problem = Problem(JOURNAL_CHAIN_BROKEN, f"{check.path}: changed between its check and its reading")
        raise JournalError("the import journal is damaged: nothing was compared", [problem])


def _require_known_target(expected: Expected, check: JournalCheck) -> None:
    """A --registry the journal never imported into, while it records imports elsewhere: a mistyped target."""
    if expected.bundles or expected.known or not expected.other_registries:
        return
    raise UsageError(
        f"{expected.registry}: the import journal records no import into this registry",
        problems=[f"it records imports into {r}" for r in sorted(expected.other_registries)],
        hint=f"give --registry as the imports did (the journal is {check.path})",
    )


def _note_unchecked(expected: Expected, report: AuditReport) -> None:
    if expected.other_registries:
        report.notes.append(
            f"imports into {len(expected.other_registries)} other registr(y/ies) are not checked: "
            + ", ".join(sorted(expected.other_registries))
        )
    if expected.unchecked_git:
        which = "without --git" if report.git is None else "under other Git bases than --git"
        report.notes.append(f"Git refs pushed {which} are not checked: " + ", ".join(sorted(expected.unchecked_git)))


def _statement(report: AuditReport, path: Path, signer: Signer) -> None:
    if not report.clean:
        report.statement_refused = path
        return
    subjects = [(b.bundle_id, b.inventory.removeprefix("sha256:")) for b in report.bundles]
    write_statement(path, audit_statement(report.predicate(), subjects), signer)
    report.statement = path
