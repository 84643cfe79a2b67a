"""The signatures of a bundle as a reviewer sees them: who claims to have signed, and whether it verifies.

See docs/review.md.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from mirror.bundle.reader import BundleReader
from mirror.bundle.signatures import read_envelopes
from mirror.errors import MirrorError
from mirror.trust.dsse import IN_TOTO_PAYLOAD_TYPE, parse_envelope
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
        }


@dataclass(frozen=True)
class SignatureReview:
    signatures: tuple[SignatureView, ...]
    policy: str | None  # the policy file, when one was given
    problems: tuple[str, ...]  # the policy's verdict: what would refuse this bundle at import

    @property
    def verdict(self) -> str:
        if self.policy is None:
            return "not verified (no --trust policy given)"
        return "signatures satisfy the policy" if not self.problems else "REFUSED by the policy"


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
        views.append(
            SignatureView(
                report.file,
                claim.key_ids,
                claim.kind,
                report.status,
                # Refused with a key id: it verified with a pinned key, and a rule then refused it.
                report.status in ("counted", "duplicate") or (report.status == "refused" and bool(report.key_id)),
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
            )
        )
    return SignatureReview(
        tuple(views), str(policy.path), tuple(f"{p.code}: {p.message}" for p in [*problems, *verdict.problems])
    )
