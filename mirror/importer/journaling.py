"""An import attempt as a journal entry: what the run learnt (the bundle, its signers, its plan, what it wrote),
appended once its outcome is known, success or not.

See docs/journal.md ("import: one import attempt").
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from mirror.errors import Interrupted, MirrorError, Problem, UsageError, VerificationError, cap_problems
from mirror.importer.registry import ImageOutcome
from mirror.landing import ImagePlan
from mirror.limits import Limits
from mirror.registry.endpoint import Endpoint
from mirror.supplychain.attached import Attached
from mirror.trust.check import TrustReport
from mirror.trust.journal_schema import PROGRESS_FIELDS
from mirror.trust.journal_write import JournalWriter

if TYPE_CHECKING:  # Git pushes: imported only for a bundle that carries Git sources
    from mirror.git.bundles import PushPlan, PushResult, RefOutcome


class WriteProgress(Protocol):
    """The import's WriteLog (importer/run.py): what was written so far."""

    def to_json(self) -> dict[str, object]: ...


@dataclass
class ImportAttempt:
    """Filled in as the import goes; `fields` turns it into the entry's fields."""

    endpoint: Endpoint
    git: str | None
    limits: Limits
    kind: str = "import"  # or "restore": a bundle the journal lists, imported again (docs/day-two.md)
    restores: int | None = None  # of a restore: the entry whose import it repeats
    report: TrustReport | None = None  # the trust check's, refused or not
    images: list[ImagePlan] = field(default_factory=list)
    attached: list[ImagePlan] = field(default_factory=list)
    pushes: list[PushPlan] = field(default_factory=list)
    flux_files: int = 0
    mirror_config_files: int = 0
    writes: WriteProgress | None = None  # set once the state records the bundle: a failure is then partial
    outcomes: list[ImageOutcome] | None = None
    pushed: list[PushResult] = field(default_factory=list)

    def plan(
        self, images: list[ImagePlan], attached: list[ImagePlan], pushes: list[PushPlan], flux: int, nodes: int
    ) -> None:
        """What the import is about to write: images, attached manifests, Git pushes, --flux-out and
        --mirror-config files."""
        self.images, self.attached, self.pushes = images, attached, pushes
        self.flux_files, self.mirror_config_files = flux, nodes

    def done(self, outcomes: list[ImageOutcome], pushed: list[PushResult]) -> None:
        self.outcomes, self.pushed = outcomes, pushed

    def fields(self, error: BaseException | None) -> dict[str, Any]:
        partial = error is not None and self.writes is not None
        result = _result(error, partial)
        restore = {"restores": self.restores} if self.kind == "restore" else {}
        return {
            **restore,
            "result": "restored" if self.kind == "restore" and result == "imported" else result,
            "exitCode": _exit_code(error),
            **self._bundle(),
            "registry": self.endpoint.url,
            "git": self.git,
            "written": self._written(complete=error is None) if error is None or partial else None,
            "progress": self._progress() if partial else None,
            "problems": _codes(error, self.limits.max_problems),
            "message": _message(error, self.limits.max_journal_message_chars),
        }

    def _progress(self) -> dict[str, object] | None:
        if self.writes is None:
            return None
        log = self.writes.to_json()
        return {name: log[name] for name in PROGRESS_FIELDS if name in log}

    def _bundle(self) -> dict[str, Any]:
        if self.report is None:
            return {"bundleId": None, "inventory": None, "sequence": None, "collectors": [], "approvers": []}
        verdict = self.report.verdict
        bundle_id = self.report.checked.inventory.bundle_id
        limit = self.limits.max_journal_message_chars
        notes = [] if len(bundle_id) <= limit else [f"bundleId cut to its first {limit} characters"]
        return {
            "bundleId": bundle_id[:limit],  # the inventory's, of a bundle perhaps refused: any length
            "notes": notes,
            "inventory": f"sha256:{self.report.checked.inventory_sha256}",
            "sequence": max((c.sequence for c in verdict.collections.values()), default=None),
            "collectors": sorted(k.key_id for k in verdict.collections),
            "approvers": sorted(k.key_id for k in verdict.approvals),
        }

    def _written(self, *, complete: bool) -> dict[str, Any]:
        outcomes: list[ImageOutcome | None] = list(self.outcomes or []) if complete else []
        outcomes += [None] * (len(self.images) - len(outcomes))
        refs: list[tuple[str, str, RefOutcome, bool]] = (
            [(r.target, ref, o, True) for r in self.pushed for ref, o in sorted(r.refs.items())]
            if complete
            else [(p.target, ref, o, False) for p in self.pushes for ref, o in sorted(p.refs.items())]
        )
        return {
            "images": [self._image(plan, outcome) for plan, outcome in zip(self.images, outcomes, strict=True)],
            "attached": [
                {
                    "repository": self.endpoint.repository(a.repository),
                    "tag": Attached(a.image.artifact).cosign_tag,
                    "digest": a.image.artifact.digest,
                }
                for a in self.attached
            ],
            "git": [
                {"repository": target, "ref": ref, "old": o.old, "new": o.new, "outcome": o.outcome if done else None}
                for target, ref, o, done in refs
            ],
            "fluxFiles": self.flux_files,
            "mirrorConfigFiles": self.mirror_config_files,
        }

    def _image(self, plan: ImagePlan, outcome: ImageOutcome | None) -> dict[str, Any]:
        image = plan.image
        manifests = {m.digest for m in image.manifests} | set(image.expected_manifests) | {image.artifact.digest}
        return {
            "repository": self.endpoint.repository(plan.repository),
            "tag": plan.tag,
            "digest": image.artifact.digest,
            "manifests": sorted(manifests),
            "status": outcome.status if outcome else None,
            "previous": outcome.previous_tag_digest if outcome else None,
        }


def _result(error: BaseException | None, partial: bool) -> str:
    if error is None:
        return "imported"
    if partial:
        return "partial"
    return "refused" if isinstance(error, UsageError | VerificationError) else "failed"


def _codes(error: BaseException | None, limit: int) -> list[str]:
    problems = getattr(error, "problems", None) or []
    return [p.code for p in cap_problems((p for p in problems if isinstance(p, Problem)), limit)]


def _exit_code(error: BaseException | None) -> int:
    if error is None:
        return 0
    if isinstance(error, MirrorError):
        return error.exit_code
    return Interrupted.exit_code if isinstance(error, KeyboardInterrupt) else 1


def _message(error: BaseException | None, limit: int) -> str | None:
    if error is None:
        return None
    if isinstance(error, KeyboardInterrupt):
        text = "interrupted"
    else:
        text = error.message if isinstance(error, MirrorError) else f"{type(error).__name__}: {error}"
    return text if len(text) <= limit else text[: limit - 3] + "..."


@contextlib.contextmanager
def journaled(
    writer: JournalWriter | None, attempt: ImportAttempt, log: Callable[[str], None], warn: Callable[[str], None]
) -> Iterator[None]:
    """Append the attempt's entry once the block's outcome is known. An entry that cannot be appended after a
    failure is warned about, and never hides the failure."""
    if writer is None:
        yield
        return
    try:
        yield
    except BaseException as error:
        try:
            writer.append(attempt.kind, attempt.fields(error))
        except (MirrorError, ValueError, OSError) as failed:
            warn(f"this attempt's journal entry could not be written: {failed}")
        raise
    entry = writer.append(attempt.kind, attempt.fields(None))
    log(f"recorded as entry {entry.seq} of the import journal {writer.path}")
