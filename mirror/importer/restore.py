"""`mirror restore`: the bundles the journal lists as imported, imported again in order into targets that lost
them, under one hold of the trust state lock; each bundle through the import's own plan, check and write.

See docs/day-two.md ("Restore").
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from mirror.bundle.opening import open_bundle
from mirror.bundle.verify import VerifiedBundle, read_signed_part
from mirror.errors import MirrorError, Problem, TransferError, UsageError, VerificationError, cap_problems
from mirror.importer.journaling import ImportAttempt
from mirror.importer.registry import ImageOutcome
from mirror.importer.restore_chain import BundleHead, ChainLink, plan_chain
from mirror.importer.run import ImportReport, ImportRun, hold_journal, importer_signer, load_import_policy
from mirror.landing import parse_git_target, parse_target
from mirror.limits import DEFAULT_LIMITS, Limits
from mirror.progress import Progress
from mirror.trust.check import judge
from mirror.trust.journal_read import iter_entries
from mirror.trust.journal_write import JournalWriter
from mirror.trust.policy import TrustPolicy
from mirror.trust.state import load_state


@dataclass(frozen=True)
class RestoredBundle:
    bundle: str
    bundle_id: str
    inventory: str
    restores: int  # the journal entry whose import it repeated
    report: ImportReport

    @property
    def images(self) -> list[ImageOutcome]:
        return self.report.images

    def to_json(self) -> dict[str, object]:
        return {
            "bundle": self.bundle,
            "bundleId": self.bundle_id,
            "inventory": self.inventory,
            "restores": self.restores,
            "import": self.report.to_json(),
        }


@dataclass
class RestoreReport:
    registry: str
    git: str | None
    restored: list[RestoredBundle] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return {
            "registry": self.registry,
            "git": self.git,
            "restored": [r.to_json() for r in self.restored],
            "notes": self.notes,
        }


class PartialRestoreError(TransferError):
    """A bundle after the first could not be restored (exit 4): those before it are, and journaled; a re-run of
    the same restore imports them again (finding them on the targets) and goes on."""

    def __init__(self, cause: MirrorError, restored: list[RestoredBundle], stopped: ChainLink) -> None:
        done = ", ".join(r.bundle_id for r in restored)
        super().__init__(
            f"restore stopped at bundle {stopped.head.bundle_id} ({stopped.head.location}) after restoring "
            f"{len(restored)} bundle(s) ({done}): {cause.message}",
            problems=cause.problems,
            hint=(cause.hint + "; then " if cause.hint else "")
            + "run the same restore again: what is on the targets is found there",
        )
        self.cause = cause


def restore_chain(
    bundles: Sequence[str | Path],
    registry_url: str,
    *,
    trust: Path,
    git_url: str | None = None,
    force_git: bool = False,
    jobs: int = 4,
    ca_file: str | None = None,
    progress: Progress | None = None,
    limits: Limits = DEFAULT_LIMITS,
    clock: dt.datetime | None = None,
    lock_timeout: float | None = None,
    importer_key: Path | None = None,
    transport: httpx.BaseTransport | None = None,
) -> RestoreReport:
    """Check the chain against the journal and every bundle's signatures, then import each again (see the module
    doc); each attempt is journaled as a `restore` entry. The trust state's rollback record is left as it is.

    transport: stands in for the network of the target registry's client (tests: the registry simulator).
    """
    progress = progress or Progress(quiet=True)
    if not bundles:
        raise UsageError("restore needs the bundles of the chain: BUNDLE...")
    endpoint = parse_target(registry_url, ca_file)
    git_base = parse_git_target(git_url) if git_url else None
    policy = load_import_policy(trust)
    signer = importer_signer(importer_key, policy)
    with contextlib.ExitStack() as held:
        journal = hold_journal(held, policy, signer, lock_timeout=lock_timeout, progress=progress, limits=limits)
        chain = _checked_chain(bundles, journal, policy, git=git_base is not None, limits=limits, clock=clock)
        report = RestoreReport(endpoint.url, git_base, notes=_prune_notes(journal, limits))
        run = ImportRun(endpoint, registry_url, git_base, ca_file, jobs, limits, progress, transport, trust, policy)
        run.journal, run.clock = journal, clock
        for number, link in enumerate(chain, start=1):
            progress.log(f"restoring bundle {number} of {len(chain)}: {link.head.bundle_id} ({link.head.location})")
            attempt = ImportAttempt(endpoint, git_base, limits, kind="restore", restores=link.restores)
            try:
                imported = run.one(link.head.location, attempt, force=force_git, replay=link.head.inventory)
            except MirrorError as exc:
                if report.restored:
                    raise PartialRestoreError(exc, report.restored, link) from exc
                raise
            report.restored.append(
                RestoredBundle(link.head.location, link.head.bundle_id, link.head.inventory, link.restores, imported)
            )
    return report


def _read(bundle: str | Path, limits: Limits) -> tuple[BundleHead, VerifiedBundle]:
    """A bundle's signed part (its inventory and envelopes), and the head the chain check reads of it."""
    signed = read_signed_part(open_bundle(bundle, limits), limits)
    inventory = signed.inventory
    head = BundleHead(
        str(bundle),
        f"sha256:{signed.inventory_sha256}",
        inventory.bundle_id,
        inventory.base.inventory if inventory.base is not None else None,
        any(a.kind == "git" for a in inventory.artifacts),
    )
    return head, signed


def _checked_chain(
    bundles: Sequence[str | Path],
    journal: JournalWriter,
    policy: TrustPolicy,
    *,
    git: bool,
    limits: Limits,
    clock: dt.datetime | None,
) -> list[ChainLink]:
    """The chain against the journal, then every bundle's signatures against the policy (read, not yet their
    files): every problem of every bundle listed before the first write."""
    read = [_read(bundle, limits) for bundle in bundles]
    chain = plan_chain([head for head, _ in read], iter_entries(journal.path, limits=limits), git=git)
    signed = {head.inventory: checked for head, checked in read}
    state, now = load_state(policy.state_file), clock or dt.datetime.now(dt.UTC)
    problems: list[Problem] = []
    for link in chain:
        checked = signed[link.head.inventory]
        verdict = judge(checked, policy, state, now, replay=checked.inventory_sha256)
        problems += [
            Problem(p.code, f"{link.head.location}: {p.message}") for p in [*checked.problems, *verdict.problems]
        ]
    if problems:
        raise VerificationError(
            f"restore refused: {len(problems)} problem(s) with the bundles' signatures; nothing was written",
            problems=cap_problems(problems, limits.max_problems),
            hint="the policy must still list the keys that signed and approved the bundles (docs/day-two.md)",
        )
    return chain


def _prune_notes(journal: JournalWriter, limits: Limits) -> list[str]:
    pruned = sum(1 for e in iter_entries(journal.path, limits=limits) if e.kind == "prune" and e.body["deleted"])
    if not pruned:
        return []
    return [
        f"the journal records {pruned} prune run(s) that deleted manifests; the restored bundles bring those "
        "manifests back: run `mirror prune` again with the same --keep (docs/day-two.md)"
    ]
