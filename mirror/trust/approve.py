"""An officer's approval: check the bundle and its collector signature, then add the officer's own envelope."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from pathlib import Path

from mirror.bundle.opening import open_bundle
from mirror.bundle.signatures import add_envelope
from mirror.bundle.verify import check_contents, read_signed_part
from mirror.errors import MirrorError, UsageError, VerificationError, cap_problems, problem_count
from mirror.limits import DEFAULT_LIMITS, Limits
from mirror.trust.check import files_not_checked, judge, refused_by_sources_alone
from mirror.trust.dsse import parse_envelope
from mirror.trust.keys import PublicKey, Signer
from mirror.trust.policy import Role, TrustPolicy, load_policy
from mirror.trust.sign import sign_approval
from mirror.trust.state import TrustState
from mirror.trust.statement import APPROVAL, parse_statement


@dataclass(frozen=True)
class ApprovalResult:
    bundle: str
    bundle_id: str
    inventory_sha256: str
    key_id: str
    collectors: list[str]
    envelope: str
    already_approved: bool
    approvals: int | None = None  # distinct approver keys of the policy that approved, this one included
    required: int | None = None  # the policy's approvers threshold; None: approved without --trust

    def to_json(self) -> dict[str, object]:
        return {
            "bundle": self.bundle,
            "bundleId": self.bundle_id,
            "inventorySha256": self.inventory_sha256,
            "approvedBy": self.key_id,
            "collectors": self.collectors,
            "envelope": self.envelope,
            "alreadyApproved": self.already_approved,
            "approvals": {"counted": self.approvals, "required": self.required},
        }


def _collector_policy(trust: Path | None, collector_keys: list[PublicKey]) -> tuple[TrustPolicy, int | None]:
    """What the approver checks the collector against: the trust policy, or collector keys given by hand; and
    how many approvals the policy requires (None without one)."""
    if trust is not None:
        # Approvals are what is being added, so none are required yet; every other rule applies.
        policy = load_policy(trust)
        return replace(policy, approvers=Role(policy.approvers.keys, 0)), policy.approvers.threshold
    if not collector_keys:
        raise UsageError(
            "approve needs the collector's public key to check the bundle's signature",
            hint="pass --trust POLICY, or --collector-key collector.pub",
        )
    policy = TrustPolicy(
        path=Path("."),
        collectors=Role(tuple(collector_keys), 1),
        approvers=Role((), 0),
        max_age=None,
        allowed_sources=None,
        state_file=Path("."),
        max_sequence_gap=1,
    )
    return policy, None


def approve_bundle(
    bundle: Path,
    signer: Signer,
    *,
    comment: str = "",
    trust: Path | None = None,
    collector_keys: list[PublicKey] | None = None,
    jobs: int = 4,
    limits: Limits = DEFAULT_LIMITS,
    clock: dt.datetime | None = None,
) -> ApprovalResult:
    policy, required = _collector_policy(trust, collector_keys or [])
    if signer.public in policy.collectors.keys:
        raise UsageError(f"{signer.public.source}: this is a collector key; a collector cannot approve its own bundle")
    if trust is not None and signer.public not in policy.approvers.keys:
        raise UsageError(
            f"{signer.public.source}: key {signer.public.key_id} is not an approver in {trust}",
            hint="an approval by a key the policy does not list would not count at import",
        )
    # The collector's signature first: a forged bundle is refused before a byte of its blobs is read.
    checked = read_signed_part(open_bundle(bundle, limits), limits)
    now = clock or dt.datetime.now(dt.UTC)
    verdict = judge(checked, policy, TrustState(), now)
    if verdict.ok and not checked.problems:
        check_contents(checked, jobs=jobs, limits=limits)
    problems = cap_problems([*checked.problems, *verdict.problems], limits.max_problems)
    if problems:
        unchecked = "" if checked.files_checked else f"; {files_not_checked(problems)}"
        hint = (
            f"a source matches no allowedSources pattern of {trust}: an approval is only added to a bundle the "
            "policy's source rules accept; change the MirrorSet, or the policy if the source should be allowed"
            if refused_by_sources_alone(problems)
            else "an approval is only added to an intact bundle with a valid collector signature"
        )
        raise VerificationError(
            f"{bundle}: not approved, {problem_count(problems)} problem(s){unchecked}", problems=problems, hint=hint
        )
    existing = next(
        (name for name, raw in checked.envelopes.items() if _approved_by(raw, signer, checked.inventory_sha256)),
        None,
    )
    if existing is None and len(checked.envelopes) >= limits.max_envelopes:
        raise VerificationError(
            f"{bundle}: already carries {len(checked.envelopes)} envelopes, the most a bundle may carry",
            hint="another envelope would make the bundle unverifiable; approvals beyond the policy's need are not",
        )
    if existing is None:
        envelope = sign_approval(
            signer, checked.inventory_sha256, bundle_id=checked.inventory.bundle_id, comment=comment, now=now
        )
        existing = add_envelope(bundle, envelope, limits)
    already = existing in checked.envelopes
    # The policy's approvers whose approval of this inventory verified, and this one (counted once).
    counted = len(verdict.approvals) + (0 if signer.public in verdict.approvals else 1)
    return ApprovalResult(
        str(bundle),
        checked.inventory.bundle_id,
        checked.inventory_sha256,
        signer.public.key_id,
        [key.key_id for key in verdict.collections],
        existing,
        already_approved=already,
        approvals=counted if required is not None else None,
        required=required,
    )


def _approved_by(raw: bytes, signer: Signer, inventory_sha256: str) -> bool:
    """Whether this envelope is already this key's approval of this inventory, so approving twice adds nothing."""
    try:
        envelope = parse_envelope(raw, "envelope")
        if not envelope.signed_by([signer.public]):
            return False
        statement = parse_statement(envelope.payload, "envelope")
    except MirrorError:
        return False
    return statement.predicate_type == APPROVAL and statement.inventory_sha256 == inventory_sha256
