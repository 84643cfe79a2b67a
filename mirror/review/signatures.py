"""The signatures of a bundle as a reviewer sees them: who claims to have signed, and whether it verifies.

See docs/review.md.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from mirror.bundle.reader import BundleReader
from mirror.bundle.signatures import read_envelopes
from mirror.errors import MirrorError
from mirror.trust.dsse import IN_TOTO_PAYLOAD_TYPE, parse_envelope
from mirror.trust.keys import PublicKey
from mirror.trust.policy import TrustPolicy
from mirror.trust.state import load_state
from mirror.trust.statement import Approval, Collection, format_time, parse_statement
from mirror.trust.verdict import evaluate


@dataclass(frozen=True)
class SignatureView:
    file: str
    key_ids: tuple[str, ...]  # as the envelope states them: a hint, not a proof
    kind: str  # collection, approval or unknown
    status: str  # unverified (no policy) | counted | untrusted | refused | duplicate | invalid
    verified: bool  # the signature verifies with a key the policy pins
    role: str | None = None  # collector or approver, from the policy
    detail: str = ""
    collector: str | None = None
    sequence: int | None = None
    created: str | None = None
    expires: str | None = None
    base: str | None = None
    reviewer: str | None = None
    time: str | None = None
    comment: str | None = None
    key_name: str | None = None  # the key's file name in the policy, without .pub (officer-a.pub: officer-a)

    @property
    def signer(self) -> str:
        """`officer-a (key ab12…)` under a policy that lists the key; `key ab12… (claimed)` when not verified."""
        key = ", ".join(self.key_ids) or "no key id"
        if self.key_name is not None:
            return f"{self.key_name} (key {key})"
        return f"key {key}" + ("" if self.verified else " (claimed)")

    def to_json(self) -> dict[str, object]:
        return {
            "file": self.file,
            "keyIds": list(self.key_ids),
            "kind": self.kind,
            "status": self.status,
            "verified": self.verified,
            "role": self.role,
            "detail": self.detail,
            "collector": self.collector,
            "sequence": self.sequence,
            "created": self.created,
            "expires": self.expires,
            "base": self.base,
            "reviewer": self.reviewer,
            "time": self.time,
            "comment": self.comment,
            "keyName": self.key_name,
        }


# The states of a bundle's signatures under a policy, in the JSON's `signing.state`.
NOT_VERIFIED, SATISFIED, AWAITING, REFUSED = "not verified", "satisfied", "awaiting approval", "refused"
_AWAITING_CODE = "APPROVER_THRESHOLD"


@dataclass(frozen=True)
class SignatureReview:
    signatures: tuple[SignatureView, ...]
    policy: str | None  # the policy file, when one was given
    problems: tuple[str, ...]  # the policy's verdict: what would refuse this bundle at import
    codes: tuple[str, ...] = ()  # the problems' codes, in the same order
    approvals_given: int = 0  # distinct approver keys whose approval counts (under a policy)
    approvals_required: int = 0  # the policy's approvers.threshold

    @property
    def in_order(self) -> list[SignatureView]:
        """The collection statement first, then the approvals, then what is neither: the order they happened in."""
        rank = {"collection": 0, "approval": 1}
        return sorted(self.signatures, key=lambda s: rank.get(s.kind, 2))

    @property
    def state(self) -> str:
        """Too few approvals alone is the normal state of a bundle before its officers approve it, not a refusal."""
        if self.policy is None:
            return NOT_VERIFIED
        if not self.problems:
            return SATISFIED
        return AWAITING if set(self.codes) == {_AWAITING_CODE} else REFUSED

    @property
    def verdict(self) -> str:
        state = self.state
        if state == NOT_VERIFIED:
            return "not verified (no --trust policy given)"
        if state == SATISFIED:
            return "signatures satisfy the policy"
        if state == AWAITING:
            missing = self.approvals_required - self.approvals_given
            return f"awaiting {missing} of {self.approvals_required} approvals ({self.approvals_given} given)"
        return "REFUSED by the policy"


def _claims(file: str, raw: bytes) -> SignatureView:
    try:
        envelope = parse_envelope(raw, file)
    except MirrorError as exc:
        return SignatureView(file, (), "unknown", "invalid", False, detail=exc.message)
    key_ids = tuple(s.keyid for s in envelope.signatures)
    if envelope.payload_type != IN_TOTO_PAYLOAD_TYPE:
        return SignatureView(file, key_ids, "unknown", "unverified", False, detail="not an in-toto statement")
    try:
        statement = parse_statement(envelope.payload, file)
    except MirrorError as exc:
        return SignatureView(file, key_ids, "unknown", "unverified", False, detail=exc.message)
    predicate = statement.predicate
    if isinstance(predicate, Collection):
        return SignatureView(
            file,
            key_ids,
            "collection",
            "unverified",
            False,
            collector=predicate.collector,
            sequence=predicate.sequence,
            created=format_time(predicate.created),
            expires=format_time(predicate.expires),
            base=predicate.base,
        )
    assert isinstance(predicate, Approval)
    return SignatureView(
        file,
        key_ids,
        "approval",
        "unverified",
        False,
        reviewer=predicate.reviewer,
        time=format_time(predicate.time),
        comment=predicate.comment,
    )


def review_signatures(
    reader: BundleReader | None,
    inventory_sha256: str,
    bundle_id: str,
    sources: list[str],
    policy: TrustPolicy | None,
    clock: dt.datetime | None = None,
) -> SignatureReview:
    if reader is None:
        return SignatureReview((), str(policy.path) if policy else None, ("an inventory file has no signatures",))
    envelopes, problems = read_envelopes(reader)
    claims = {name: _claims(name, raw) for name, raw in envelopes.items()}
    views = [
        SignatureView(p.message.split(":")[0], (), "unknown", "invalid", False, detail=p.message) for p in problems
    ]
    if policy is None:
        return SignatureReview((*views, *claims.values()), None, ())
    names = {key.key_id: Path(key.source).name.removesuffix(".pub") for key in _policy_keys(policy)}
    verdict = evaluate(
        inventory_sha256=inventory_sha256,
        bundle_id=bundle_id,
        envelopes=envelopes,
        sources=sources,
        policy=policy,
        state=load_state(policy.state_file),
        clock=clock or dt.datetime.now(dt.UTC),
    )
    for report in verdict.signatures:
        claim = claims[report.file]
        # Refused with a key id: it verified with a pinned key, and a rule then refused it.
        verified = report.status in ("counted", "duplicate") or (report.status == "refused" and bool(report.key_id))
        views.append(
            SignatureView(
                report.file,
                # The key it verified with, rather than the envelope's hint; else the hint, as a claim.
                (report.key_id,) if verified and report.key_id else claim.key_ids,
                claim.kind,
                report.status,
                verified,
                role=report.role,
                detail=report.detail,
                collector=claim.collector,
                sequence=claim.sequence,
                created=claim.created,
                expires=claim.expires,
                base=claim.base,
                reviewer=claim.reviewer,
                time=claim.time,
                comment=claim.comment,
                key_name=names.get(report.key_id or "") if verified else None,
            )
        )
    found = [*problems, *verdict.problems]
    return SignatureReview(
        tuple(views),
        str(policy.path),
        tuple(f"{p.code}: {p.message}" for p in found),
        tuple(p.code for p in found),
        len(verdict.approvals),
        policy.approvers.threshold,
    )


def _policy_keys(policy: TrustPolicy) -> list[PublicKey]:
    return [*policy.collectors.keys, *policy.approvers.keys]
