"""Trust around IO: read the policy, the state and the bundle, ask the verdict, and record a successful import."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from mirror.bundle.opening import open_bundle
from mirror.bundle.verify import VerifiedBundle, check_contents, read_signed_part
from mirror.errors import Problem, VerificationError, cap_problems, problem_count
from mirror.limits import DEFAULT_LIMITS, Limits
from mirror.progress import Progress
from mirror.supplychain.roots import judged_sources
from mirror.trust.policy import TrustPolicy, load_policy
from mirror.trust.state import CollectorRecord, TrustState, load_state, save_state
from mirror.trust.verdict import Verdict, evaluate

if TYPE_CHECKING:
    from mirror.supplychain.check import ImageSignatures

SOURCE_RULES = frozenset({"SOURCE_NOT_ALLOWED"})


def refused_by_sources_alone(problems: list[Problem]) -> bool:
    """True when the policy's allowedSources are all that refuse the bundle (signatures, age and sequence hold)."""
    return bool(problems) and all(p.code in SOURCE_RULES for p in problems)


def files_not_checked(problems: list[Problem]) -> str:
    """Why no file was hashed, naming what refused the bundle before its files were read."""
    if refused_by_sources_alone(problems):
        return "files were not checked: the policy's allowedSources already refuse the bundle"
    return "files were not checked: the signatures already refuse the bundle"


@dataclass
class TrustReport:
    checked: VerifiedBundle
    verdict: Verdict
    policy: TrustPolicy
    state: TrustState
    # Upstream signatures re-verified under the policy's requireSignatures (none: not required, or not reached).
    upstream: list[ImageSignatures] = field(default_factory=list)

    @property
    def problems(self) -> list[Problem]:
        upstream = (p for image in self.upstream for p in image.problems)
        return cap_problems([*self.checked.problems, *self.verdict.problems, *upstream])

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def files_checked(self) -> bool:
        """False when the signatures already refused the bundle, so no file was hashed."""
        return self.checked.files_checked

    def to_json(self) -> dict[str, object]:
        inventory = self.checked.inventory
        collections = self.verdict.collections.values()
        return {
            "bundle": self.checked.reader.location,
            "bundleId": inventory.bundle_id,
            "inventorySha256": self.checked.inventory_sha256,
            "ok": self.ok,
            "files": len(inventory.files),
            "artifacts": len(inventory.artifacts),
            "sequence": max((c.sequence for c in collections), default=None),
            "signatures": [s.to_json() for s in self.verdict.signatures],
            "filesChecked": self.files_checked,
            "problemCount": problem_count(self.problems),
            "problems": [p.to_json() for p in self.problems],
            **({"upstreamSignatures": [i.to_json() for i in self.upstream]} if self.policy.require_signatures else {}),
        }

    def require(self) -> None:
        if not self.ok:
            unchecked = "" if self.files_checked else f"; {files_not_checked(self.problems)}"
            raise VerificationError(
                f"{self.checked.reader.location}: refused, {problem_count(self.problems)} problem(s){unchecked}",
                problems=self.problems,
                hint="nothing was written; the bundle, its signatures or the policy must change before import",
            )


def judge(
    checked: VerifiedBundle, policy: TrustPolicy, state: TrustState, clock: dt.datetime, replay: str | None = None
) -> Verdict:
    """The verdict on a checked bundle's envelopes and sources; `replay`: see verdict.evaluate."""
    return evaluate(
        inventory_sha256=checked.inventory_sha256,
        bundle_id=checked.inventory.bundle_id,
        envelopes=checked.envelopes,
        sources=judged_sources(checked.inventory.artifacts),
        policy=policy,
        state=state,
        clock=clock,
        replay=replay,
    )


def check_trust(
    bundle: str | Path,
    policy_path: Path,
    *,
    jobs: int = 4,
    limits: Limits = DEFAULT_LIMITS,
    progress: Progress | None = None,
    clock: dt.datetime | None = None,
    replay: str | None = None,
    defer_from: int | None = None,
) -> TrustReport:
    """Check every signature against the policy, then every file and the image graph, then the upstream
    signatures the policy requires; collects, never raises, problems. `replay`: see verdict.evaluate.

    The policy is read first, so a bad policy is reported (exit 2) before anything about the bundle. The verdict
    depends only on the inventory's sha256, the envelopes, the policy and the state, so it comes first: when it
    (or an unreadable envelope) already refuses the bundle, no file is hashed and no graph walked, and a forged
    bundle costs what its inventory and envelopes cost to read, whatever the size of its blobs.
    defer_from (import): big image blobs are left unhashed, in `report.checked.deferred` (see check_contents).
    """
    policy = load_policy(policy_path)
    if policy.require_signatures:  # the upstream signature check (cosign, Sigstore): imported only then
        from mirror.trust.upstream import check_upstream, policy_trusted_roots

        own_roots = policy_trusted_roots(policy, limits)
    state = load_state(policy.state_file)
    checked = read_signed_part(open_bundle(bundle, limits), limits)
    verdict = judge(checked, policy, state, clock or dt.datetime.now(dt.UTC), replay)
    report = TrustReport(checked, verdict, policy, state)
    if verdict.ok and not checked.problems:
        check_contents(checked, jobs=jobs, limits=limits, progress=progress, defer_from=defer_from)
        if not checked.problems and policy.require_signatures:  # read from files just proven intact
            report.upstream = check_upstream(checked.reader, checked.inventory, policy, limits, own_roots)
    return report


def record_import(report: TrustReport) -> None:
    """Raise the collectors' high-water marks and the newest accepted time, atomically.

    The importer calls it under the state lock, after every check passed and before its first write: a run
    that dies half-way still refuses older bundles, and the very same bundle is accepted again to resume.
    """
    state = report.state
    for key, collection in report.verdict.collections.items():
        state.collectors[key.key_id] = CollectorRecord(collection.sequence, report.checked.inventory_sha256)
    newest = report.verdict.newest_created
    if newest and (state.latest_created is None or newest > state.latest_created):
        state.latest_created = newest
    save_state(report.policy.state_file, state)
