"""The trust verdict: envelopes, policy and state in, every problem out. No IO, so every attack is a unit test.

See docs/trust.md ("The verdict").
"""

from __future__ import annotations

import datetime as dt
import fnmatch
from dataclasses import dataclass, field

from mirror.errors import MirrorError, Problem
from mirror.trust.dsse import IN_TOTO_PAYLOAD_TYPE, parse_envelope
from mirror.trust.keys import PublicKey
from mirror.trust.policy import TrustPolicy
from mirror.trust.state import TrustState
from mirror.trust.statement import APPROVAL, COLLECTION, Approval, Collection, parse_statement

# A collector's clock may run a little ahead of the high side's.
CLOCK_SKEW = dt.timedelta(minutes=5)


@dataclass(frozen=True)
class SignatureReport:
    file: str
    status: str  # counted | untrusted | refused
    role: str | None = None  # collector | approver
    key_id: str | None = None
    detail: str = ""

    def to_json(self) -> dict[str, object]:
        return {
            "file": self.file,
            "status": self.status,
            "role": self.role,
            "keyId": self.key_id,
            "detail": self.detail,
        }


@dataclass
class Verdict:
    problems: list[Problem] = field(default_factory=list)
    signatures: list[SignatureReport] = field(default_factory=list)
    collections: dict[PublicKey, Collection] = field(default_factory=dict)
    approvals: dict[PublicKey, Approval] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def newest_created(self) -> dt.datetime | None:
        return max((c.created for c in self.collections.values()), default=None)


def _role_of(key: PublicKey, policy: TrustPolicy) -> str | None:
    if key in policy.collectors.keys:
        return "collector"
    if key in policy.approvers.keys:
        return "approver"
    return None


def _check_envelope(
    name: str, raw: bytes, inventory_sha256: str, bundle_id: str, policy: TrustPolicy, verdict: Verdict
) -> None:
    def refuse(code: str, detail: str, key: PublicKey | None = None, role: str | None = None) -> None:
        # The key's role in the policy, also when the envelope is refused for what it says.
        role = role or (_role_of(key, policy) if key is not None else None)
        verdict.problems.append(Problem(code, f"{name}: {detail}"))
        verdict.signatures.append(
            SignatureReport(name, "refused", role, key.key_id if key else None, f"{code}: {detail}")
        )

    try:
        envelope = parse_envelope(raw, name)
    except MirrorError as exc:
        refuse("ENVELOPE_INVALID", exc.message)
        return
    policy_keys = [*policy.collectors.keys, *policy.approvers.keys]
    keys = envelope.signed_by(policy_keys)
    if not keys:
        # Not a failure by itself: a signature nobody asked for is reported and not counted.
        claimed = [k for k in policy_keys if any(s.keyid == k.key_id for s in envelope.signatures)]
        if claimed:
            role = _role_of(claimed[0], policy)
            detail = f"claims {role} key {claimed[0].key_id}, but does not verify with it: altered or forged"
            verdict.signatures.append(SignatureReport(name, "untrusted", role, claimed[0].key_id, detail))
        else:
            detail = "signed by a key the policy does not list"
            verdict.signatures.append(SignatureReport(name, "untrusted", detail=detail))
        return
    if envelope.payload_type != IN_TOTO_PAYLOAD_TYPE:
        refuse("PAYLOAD_TYPE", f"payloadType {envelope.payload_type!r} is not {IN_TOTO_PAYLOAD_TYPE}", keys[0])
        return
    try:
        statement = parse_statement(envelope.payload, name)
    except MirrorError as exc:
        refuse("STATEMENT_INVALID", exc.message, keys[0])
        return
    if statement.inventory_sha256 != inventory_sha256:
        refuse("SUBJECT_MISMATCH", "signs another inventory than this bundle's (copied from another bundle?)", keys[0])
        return
    if statement.predicate.bundle_id != bundle_id:
        refuse("BUNDLE_MISMATCH", f"names bundle {statement.predicate.bundle_id}, not {bundle_id}", keys[0])
        return
    wanted = "collector" if statement.predicate_type == COLLECTION else "approver"
    for key in keys:
        role = _role_of(key, policy)
        if role != wanted:
            kind = "a collection" if statement.predicate_type == COLLECTION else "an approval"
            refuse("ROLE_CONFUSION", f"{kind} signed by {role} key {key.key_id}; it does not count", key, role)
            continue
        if statement.predicate_type == APPROVAL:
            approval = statement.predicate
            assert isinstance(approval, Approval)
            if approval.reviewer != key.key_id:
                refuse("STATEMENT_INVALID", f"reviewer {approval.reviewer} is not the signing key", key, role)
                continue
            if key in verdict.approvals:
                verdict.signatures.append(SignatureReport(name, "duplicate", role, key.key_id, "counted once"))
                continue
            verdict.approvals[key] = approval
        else:
            collection = statement.predicate
            assert isinstance(collection, Collection)
            if key in verdict.collections and verdict.collections[key] != collection:
                refuse("COLLECTION_CONFLICT", f"key {key.key_id} signed two different collections", key, role)
                continue
            verdict.collections[key] = collection
        verdict.signatures.append(SignatureReport(name, "counted", role, key.key_id))


def _check_collection(
    key: PublicKey,
    collection: Collection,
    inventory_sha256: str,
    policy: TrustPolicy,
    state: TrustState,
    now: dt.datetime,
    verdict: Verdict,
    replay: str | None = None,
) -> bool:
    """Freshness and order of one collector's statement. The very bundle imported last may be imported again;
    `replay` names an inventory the journal lists as imported, which `mirror restore` imports again: it was judged
    fresh and in order when it was imported, and is not judged again."""
    if replay is not None and replay == inventory_sha256:
        return True
    problems = []
    if collection.created > now + CLOCK_SKEW:
        problems.append(Problem("CREATED_IN_FUTURE", f"created {collection.created:%Y-%m-%dT%H:%M:%SZ} is after now"))
    if collection.expires <= now:
        problems.append(Problem("EXPIRED", f"expired at {collection.expires:%Y-%m-%dT%H:%M:%SZ}"))
    if policy.max_age is not None and now - collection.created > policy.max_age:
        problems.append(Problem("TOO_OLD", f"created {collection.created:%Y-%m-%dT%H:%M:%SZ}, older than maxAge"))
    record = state.collectors.get(key.key_id)
    if record is not None:
        if collection.sequence < record.sequence or (
            collection.sequence == record.sequence and inventory_sha256 != record.inventory
        ):
            problems.append(
                Problem(
                    "ROLLBACK",
                    f"sequence {collection.sequence} from collector {key.key_id} is not after "
                    f"{record.sequence}, the last one imported",
                )
            )
        elif collection.sequence - record.sequence > policy.max_sequence_gap:
            problems.append(
                Problem(
                    "SEQUENCE_GAP",
                    f"sequence {collection.sequence} jumps more than {policy.max_sequence_gap} past {record.sequence}",
                )
            )
    verdict.problems.extend(problems)
    return not problems


def evaluate(
    *,
    inventory_sha256: str,
    bundle_id: str,
    envelopes: dict[str, bytes],
    sources: list[str],
    policy: TrustPolicy,
    state: TrustState,
    clock: dt.datetime,
    replay: str | None = None,
) -> Verdict:
    """Judge a bundle whose files were already checked against `inventory_sha256`'s inventory.

    replay: the inventory sha256 (hex) of a bundle the journal lists as imported, which restore imports again; its
    age and sequence are not judged (see _check_collection), its signatures and sources are.
    """
    verdict = Verdict()
    for name, raw in sorted(envelopes.items()):
        _check_envelope(name, raw, inventory_sha256, bundle_id, policy, verdict)
    # "now" never runs backwards past a bundle already accepted, so a clock set back cannot revive one.
    now = max(clock, state.latest_created) if state.latest_created else clock
    fresh = [
        key
        for key, c in verdict.collections.items()
        if _check_collection(key, c, inventory_sha256, policy, state, now, verdict, replay)
    ]
    if len(fresh) < policy.collectors.threshold:
        verdict.problems.append(
            Problem(
                "COLLECTOR_THRESHOLD",
                f"{len(verdict.collections)} collector signature(s) verified, {len(fresh)} of them pass the age and "
                f"sequence checks; the policy requires {policy.collectors.threshold}",
            )
        )
    if len(verdict.approvals) < policy.approvers.threshold:
        verdict.problems.append(
            Problem(
                "APPROVER_THRESHOLD",
                f"{len(verdict.approvals)} approval(s) from distinct approver keys, "
                f"the policy requires {policy.approvers.threshold}",
            )
        )
    if policy.allowed_sources is not None:
        for source in sources:
            if not any(fnmatch.fnmatchcase(source, pattern) for pattern in policy.allowed_sources):
                verdict.problems.append(Problem("SOURCE_NOT_ALLOWED", f"{source} matches no allowedSources pattern"))
    return verdict
