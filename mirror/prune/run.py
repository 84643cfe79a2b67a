"""`mirror prune`: plan from the journal, check against the registry, and only with --yes delete by digest, under
the trust state lock, with one journal entry for the run.

See docs/day-two.md ("Prune").
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from mirror.credentials import target_registry_credentials
from mirror.errors import MirrorError, Problem, RegistryHTTPError, TransferError, UsageError
from mirror.landing import parse_target
from mirror.limits import DEFAULT_LIMITS, Limits
from mirror.parallel import run_parallel
from mirror.progress import Progress
from mirror.prune.check import DELETE, GONE, SKIP, Decision, decide, read_registry
from mirror.prune.entry import PruneAttempt, journaled
from mirror.prune.plan import PrunePlan, plan_prune
from mirror.registry.client import RegistryClient
from mirror.registry.endpoint import Endpoint
from mirror.trust.journal import JournalError, journal_file_for
from mirror.trust.journal_read import ImportedBundle, check_journal, iter_entries
from mirror.trust.journal_write import check_importer_key, open_journal
from mirror.trust.keys import Signer, load_signer
from mirror.trust.lock import state_lock
from mirror.trust.policy import TrustPolicy, load_policy
from mirror.trust.state import check_state_location

PRUNE_DELETES_DISABLED = "PRUNE_DELETES_DISABLED"
PRUNE_DELETE_DENIED = "PRUNE_DELETE_DENIED"
# What the probe asks the registry to delete: no manifest hashes to it, so an answer other than 404 is about
# deletes themselves (distribution checks storage.delete before it looks for the manifest).
PROBE_DIGEST = "sha256:" + "0" * 64


@dataclass
class PruneReport:
    target: str
    keep: int
    dry_run: bool
    kept: list[ImportedBundle]
    pruned: list[ImportedBundle]
    decisions: list[Decision]
    deleted: list[Decision] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    journal_entry: int | None = None

    def _with(self, action: str) -> list[Decision]:
        return [d for d in self.decisions if d.action == action]

    @property
    def to_delete(self) -> list[Decision]:
        return self._with(DELETE)

    @property
    def gone(self) -> list[Decision]:
        return self._with(GONE)

    @property
    def skipped(self) -> list[Decision]:
        return self._with(SKIP)

    def to_json(self) -> dict[str, object]:
        def bundle(b: ImportedBundle) -> dict[str, object]:
            return {"bundleId": b.bundle_id, "inventory": b.inventory, "entry": b.seq}

        return {
            "registry": self.target,
            "keep": self.keep,
            "dryRun": self.dry_run,
            "kept": [bundle(b) for b in self.kept],
            "pruned": [bundle(b) for b in self.pruned],
            "manifests": [d.to_json() for d in self.decisions],
            "deleted": len(self.deleted),
            "notes": self.notes,
            "journalEntry": self.journal_entry,
        }


class PartialPruneError(TransferError):
    """Deletes stopped after the first one (exit 4): what was deleted is journaled; a re-run finishes."""

    def __init__(self, cause: BaseException, deleted: int) -> None:
        reason = cause.message if isinstance(cause, MirrorError) else f"{type(cause).__name__}: {cause}"
        super().__init__(
            f"prune stopped after {deleted} manifest(s) deleted: {reason}",
            problems=getattr(cause, "problems", None) or [],
            hint="run the same prune again: what is gone is skipped",
        )


def prune_target(
    registry_url: str,
    *,
    trust: Path,
    keep: int,
    yes: bool = False,
    ca_file: str | None = None,
    jobs: int = 4,
    progress: Progress | None = None,
    limits: Limits = DEFAULT_LIMITS,
    lock_timeout: float | None = None,
    importer_key: Path | None = None,
    transport: httpx.BaseTransport | None = None,
) -> PruneReport:
    """Plan, check, and with `yes` delete (see the module doc); the report says what was (or would be) deleted.

    transport: stands in for the network of the registry client (tests: the registry simulator).
    """
    progress = progress or Progress(quiet=True)
    if keep < 1:
        raise UsageError("--keep must be at least 1: prune never deletes what the last import landed")
    endpoint = parse_target(registry_url, ca_file)
    policy = load_policy(trust)
    signer = load_signer(importer_key) if importer_key is not None else None
    run = _Run(endpoint, policy, keep, jobs, limits, progress, transport)
    if not yes:
        check = check_journal(policy.state_file, limits=limits, importers=policy.importers)
        if check.problems:
            raise JournalError(f"{check.path}: the import journal does not match the trust state", check.problems)
        return run.go(None)
    return _locked(run, policy, signer, lock_timeout)


def _locked(run: _Run, policy: TrustPolicy, signer: Signer | None, lock_timeout: float | None) -> PruneReport:
    check_importer_key(policy.importers, signer)
    check_state_location(policy.state_file)
    progress = run.progress
    with state_lock(policy.state_file, timeout=lock_timeout, announce=progress.warn):
        writer = open_journal(
            policy.state_file, limits=run.limits, importers=policy.importers, signer=signer, warn=progress.warn
        )
        attempt = PruneAttempt(run.endpoint.url, run.limits)
        entry: list[int] = []
        with journaled(writer, attempt, entry.append, progress.warn):
            report = run.go(attempt)
        report.journal_entry = entry[0]
        progress.log(f"recorded as entry {entry[0]} of the import journal {writer.path}")
        return report


@dataclass
class _Run:
    endpoint: Endpoint
    policy: TrustPolicy
    keep: int
    jobs: int
    limits: Limits
    progress: Progress
    transport: httpx.BaseTransport | None

    def go(self, attempt: PruneAttempt | None) -> PruneReport:
        """Plan, check; with an attempt (--yes, under the lock), delete."""
        journal = journal_file_for(self.policy.state_file)
        plan = plan_prune(iter_entries(journal, limits=self.limits), self.endpoint.url, self.keep)
        if attempt is not None:
            attempt.kept = [b.inventory for b in plan.kept]
        _refuse(plan)
        for note in plan.notes:
            self.progress.warn(note)
        with self._client() as client:
            decisions = decide(plan, read_registry(client, plan, self.jobs))
            report = PruneReport(
                plan.target, self.keep, attempt is None, plan.kept, plan.pruned, decisions, notes=plan.notes
            )
            for skipped in report.skipped:
                assert skipped.problem is not None
                self.progress.warn(f"not deleted: {skipped.problem}")
            if attempt is None or not report.to_delete:
                return report
            _check_deletes_allowed(client, sorted({d.candidate.repository for d in report.to_delete}))
            self._delete(client, report.to_delete, attempt)
            report.deleted = list(attempt.deleted)
        return report

    def _client(self) -> RegistryClient:
        # Repositories are named as the journal records them, prefix included: the client adds none.
        host = dataclasses.replace(self.endpoint, repo_prefix="")
        credentials = target_registry_credentials(self.endpoint.netloc)
        return RegistryClient(
            host,
            credentials,
            self.limits,
            max_connections=self.jobs * 2,
            log=self.progress.warn,
            transport=self.transport,
        )

    def _delete(self, client: RegistryClient, doomed: list[Decision], attempt: PruneAttempt) -> None:
        """Per repository in order (what refers before what is referred to), repositories in parallel."""
        by_repository: dict[str, list[Decision]] = {}
        for decision in doomed:
            by_repository.setdefault(decision.candidate.repository, []).append(decision)

        def delete_all(decisions: list[Decision]) -> None:
            for decision in decisions:
                client.delete_manifest(decision.candidate.repository, decision.candidate.digest)
                attempt.record(decision)  # deleted, or gone since it was checked: gone either way

        try:
            run_parallel(list(by_repository.values()), delete_all, self.jobs)
        except (MirrorError, OSError) as exc:
            if attempt.deleted:
                raise PartialPruneError(exc, len(attempt.deleted)) from exc
            raise
        self.progress.log(f"deleted {len(attempt.deleted)} manifest(s) from {self.endpoint.url}")


def _refuse(plan: PrunePlan) -> None:
    if plan.problems:
        raise UsageError(
            f"prune of {plan.target} refused: {len(plan.problems)} problem(s); nothing was deleted",
            problems=plan.problems,
            hint="docs/day-two.md",
        )


def _check_deletes_allowed(client: RegistryClient, repositories: list[str]) -> None:
    """One DELETE of a manifest no registry has, per repository: 404 says deletes are possible there; refused
    (listing every repository) before the first real delete otherwise."""
    problems = []
    for repository in repositories:
        try:
            client.delete_manifest(repository, PROBE_DIGEST)
        except RegistryHTTPError as exc:
            problem = _probe_problem(repository, exc)
            if problem is None:
                raise
            problems.append(problem)
    if problems:
        raise UsageError(
            f"{client.endpoint.netloc}: the registry does not let these credentials delete manifests; "
            "nothing was deleted",
            problems=problems,
            hint="distribution deletes only with storage: {delete: {enabled: true}} in its configuration; "
            "a token service must grant the delete action (docs/day-two.md)",
        )


def _probe_problem(repository: str, exc: RegistryHTTPError) -> Problem | None:
    if exc.status == 405 or "UNSUPPORTED" in exc.codes:
        return Problem(PRUNE_DELETES_DISABLED, f"{repository}: the registry has deletes disabled ({exc.status})")
    if exc.status in (401, 403):
        return Problem(PRUNE_DELETE_DENIED, f"{repository}: the credentials may not delete ({exc.status})")
    return None
