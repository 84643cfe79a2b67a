"""Attacks on the trust verdict, one per test: envelopes, policy and state in memory, every problem out.

Keys are generated in memory; the policy is built directly, so nothing here reads a file.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from dataclasses import replace
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from mirror.trust.dsse import sign_envelope
from mirror.trust.keys import ECDSA_P256, ED25519, PublicKey, Signer
from mirror.trust.policy import Role, TrustPolicy
from mirror.trust.sign import sign_approval, sign_collection
from mirror.trust.state import CollectorRecord, TrustState
from mirror.trust.statement import Approval, approval_statement
from mirror.trust.verdict import CLOCK_SKEW, Verdict, evaluate

INVENTORY = b'{"bundleId": "bundle-7", "files": []}\n'
INVENTORY_SHA = hashlib.sha256(INVENTORY).hexdigest()
OTHER_INVENTORY = b'{"bundleId": "bundle-6", "files": []}\n'
OTHER_SHA = hashlib.sha256(OTHER_INVENTORY).hexdigest()
BUNDLE = "bundle-7"
CLOCK = dt.datetime(2026, 3, 1, 12, 0, 0, tzinfo=dt.UTC)
SOURCES = ["registry.example/team/app:1.0"]


def p256_signer(name: str) -> Signer:
    private = ec.generate_private_key(ec.SECP256R1())
    der = private.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return Signer(private, PublicKey(der, ECDSA_P256, name))


def ed25519_signer(name: str) -> Signer:
    private = ed25519.Ed25519PrivateKey.generate()
    der = private.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return Signer(private, PublicKey(der, ED25519, name))


COLLECTOR = p256_signer("collector")
COLLECTOR_2 = ed25519_signer("collector-2")
OFFICER = p256_signer("officer")
OFFICER_2 = ed25519_signer("officer-2")
STRANGER = p256_signer("stranger")


def make_policy(
    collectors: tuple[Signer, ...] = (COLLECTOR,),
    collector_threshold: int = 1,
    approvers: tuple[Signer, ...] = (OFFICER,),
    approver_threshold: int = 1,
    max_age: dt.timedelta | None = None,
    allowed_sources: tuple[str, ...] | None = None,
    max_sequence_gap: int = 1000,
) -> TrustPolicy:
    return TrustPolicy(
        path=Path("policy.yaml"),
        collectors=Role(tuple(s.public for s in collectors), collector_threshold),
        approvers=Role(tuple(s.public for s in approvers), approver_threshold),
        max_age=max_age,
        allowed_sources=allowed_sources,
        state_file=Path("state.json"),
        max_sequence_gap=max_sequence_gap,
    )


POLICY = make_policy()


def collection(
    signer: Signer = COLLECTOR,
    *,
    inventory: bytes = INVENTORY,
    bundle_id: str = BUNDLE,
    sequence: int = 7,
    created: dt.datetime = CLOCK - dt.timedelta(hours=1),
    valid_for: dt.timedelta = dt.timedelta(days=14),
) -> bytes:
    return sign_collection(
        signer,
        inventory,
        bundle_id=bundle_id,
        collector="low-side",
        sequence=sequence,
        created=created,
        valid_for=valid_for,
    )


def approval(signer: Signer = OFFICER, *, inventory_sha256: str = INVENTORY_SHA, bundle_id: str = BUNDLE) -> bytes:
    return sign_approval(signer, inventory_sha256, bundle_id=bundle_id, comment="reviewed", now=CLOCK)


def judge(
    *envelopes: bytes,
    policy: TrustPolicy = POLICY,
    state: TrustState | None = None,
    clock: dt.datetime = CLOCK,
    sources: list[str] | None = None,
) -> Verdict:
    return evaluate(
        inventory_sha256=INVENTORY_SHA,
        bundle_id=BUNDLE,
        envelopes={f"signatures/{i}.json": raw for i, raw in enumerate(envelopes)},
        sources=SOURCES if sources is None else sources,
        policy=policy,
        state=state or TrustState(),
        clock=clock,
    )


def codes(verdict: Verdict) -> list[str]:
    return [p.code for p in verdict.problems]


def statuses(verdict: Verdict) -> list[str]:
    return [s.status for s in verdict.signatures]


def edit(raw: bytes, **fields: object) -> bytes:
    body = json.loads(raw)
    body.update(fields)
    return json.dumps(body).encode()


def state_after(sequence: int, inventory: str = INVENTORY_SHA, signer: Signer = COLLECTOR) -> TrustState:
    return TrustState({signer.public.key_id: CollectorRecord(sequence, inventory)})


# --- the happy path ---------------------------------------------------------------------------------------


def test_collection_and_approval_from_pinned_keys_pass() -> None:
    verdict = judge(collection(), approval())
    assert verdict.ok, verdict.problems
    assert statuses(verdict) == ["counted", "counted"]
    assert set(verdict.collections) == {COLLECTOR.public}
    assert set(verdict.approvals) == {OFFICER.public}


def test_counted_signatures_name_role_and_key_id() -> None:
    verdict = judge(collection(), approval())
    assert {(s.role, s.key_id) for s in verdict.signatures} == {
        ("collector", COLLECTOR.public.key_id),
        ("approver", OFFICER.public.key_id),
    }


def test_newest_created_is_the_collection_time() -> None:
    assert judge(collection(), approval()).newest_created == CLOCK - dt.timedelta(hours=1)


def test_policy_without_approvers_passes_on_a_collection_alone() -> None:
    policy = make_policy(approvers=(), approver_threshold=0)
    assert judge(collection(), policy=policy).ok


def test_no_envelopes_fail_both_thresholds() -> None:
    assert codes(judge()) == ["COLLECTOR_THRESHOLD", "APPROVER_THRESHOLD"]


def test_missing_approval_fails_the_approver_threshold() -> None:
    assert codes(judge(collection())) == ["APPROVER_THRESHOLD"]


# --- untrusted and spoofed signatures ---------------------------------------------------------------------


def test_untrusted_signer_is_reported_and_not_counted() -> None:
    verdict = judge(collection(), approval(), approval(STRANGER))
    assert verdict.ok, verdict.problems
    assert sorted(statuses(verdict)) == ["counted", "counted", "untrusted"]
    assert STRANGER.public not in verdict.approvals


def test_untrusted_approval_alone_does_not_meet_the_threshold() -> None:
    assert codes(judge(collection(), approval(STRANGER))) == ["APPROVER_THRESHOLD"]


def test_spoofed_keyid_of_a_trusted_key_does_not_count() -> None:
    # The stranger signs an approval naming the officer as reviewer and claims the officer's key id.
    spoofed = sign_envelope(
        approval_statement(INVENTORY_SHA, Approval(BUNDLE, "approved", OFFICER.public.key_id, CLOCK, "")), STRANGER
    )
    body = json.loads(spoofed)
    body["signatures"][0]["keyid"] = OFFICER.public.key_id
    verdict = judge(collection(), json.dumps(body).encode())
    assert codes(verdict) == ["APPROVER_THRESHOLD"]
    assert statuses(verdict) == ["counted", "untrusted"]


def test_trusted_signature_with_a_wrong_keyid_still_counts() -> None:
    body = json.loads(approval())
    body["signatures"][0]["keyid"] = STRANGER.public.key_id
    assert judge(collection(), json.dumps(body).encode()).ok


def test_garbage_envelope_is_refused_as_invalid() -> None:
    verdict = judge(collection(), approval(), b"{not json")
    assert codes(verdict) == ["ENVELOPE_INVALID"]
    assert "refused" in statuses(verdict)


# --- thresholds count distinct keys -----------------------------------------------------------------------


def test_two_envelopes_from_one_approver_count_once() -> None:
    policy = make_policy(approvers=(OFFICER, OFFICER_2), approver_threshold=2)
    verdict = judge(collection(), approval(OFFICER), approval(OFFICER), policy=policy)
    assert codes(verdict) == ["APPROVER_THRESHOLD"]
    assert list(verdict.approvals) == [OFFICER.public]
    assert "duplicate" in statuses(verdict)


def test_two_distinct_approvers_meet_a_threshold_of_two() -> None:
    policy = make_policy(approvers=(OFFICER, OFFICER_2), approver_threshold=2)
    assert judge(collection(), approval(OFFICER), approval(OFFICER_2), policy=policy).ok


def test_two_collector_keys_meet_a_collector_threshold_of_two() -> None:
    policy = make_policy(collectors=(COLLECTOR, COLLECTOR_2), collector_threshold=2)
    verdict = judge(collection(COLLECTOR), collection(COLLECTOR_2), approval(), policy=policy)
    assert verdict.ok, verdict.problems
    assert set(verdict.collections) == {COLLECTOR.public, COLLECTOR_2.public}


def test_one_collector_key_does_not_meet_a_collector_threshold_of_two() -> None:
    policy = make_policy(collectors=(COLLECTOR, COLLECTOR_2), collector_threshold=2)
    assert codes(judge(collection(COLLECTOR), approval(), policy=policy)) == ["COLLECTOR_THRESHOLD"]


def test_one_collector_key_twice_does_not_meet_a_collector_threshold_of_two() -> None:
    policy = make_policy(collectors=(COLLECTOR, COLLECTOR_2), collector_threshold=2)
    verdict = judge(collection(COLLECTOR), collection(COLLECTOR), approval(), policy=policy)
    assert codes(verdict) == ["COLLECTOR_THRESHOLD"]


def test_one_collector_key_signing_two_different_collections_is_a_conflict() -> None:
    verdict = judge(collection(sequence=7), collection(sequence=8), approval())
    assert codes(verdict) == ["COLLECTION_CONFLICT"]


# --- roles ------------------------------------------------------------------------------------------------


def test_collector_key_signing_an_approval_is_role_confusion() -> None:
    verdict = judge(collection(), approval(), approval(COLLECTOR))
    assert codes(verdict) == ["ROLE_CONFUSION"]
    assert COLLECTOR.public not in verdict.approvals


def test_collector_approval_does_not_meet_the_approver_threshold() -> None:
    verdict = judge(collection(), approval(COLLECTOR))
    assert codes(verdict) == ["ROLE_CONFUSION", "APPROVER_THRESHOLD"]


def test_approver_key_signing_a_collection_is_role_confusion() -> None:
    verdict = judge(collection(OFFICER), approval())
    assert codes(verdict) == ["ROLE_CONFUSION", "COLLECTOR_THRESHOLD"]
    assert OFFICER.public not in verdict.collections


def test_approval_whose_reviewer_is_another_key_is_refused() -> None:
    statement = approval_statement(INVENTORY_SHA, Approval(BUNDLE, "approved", OFFICER_2.public.key_id, CLOCK, ""))
    policy = make_policy(approvers=(OFFICER, OFFICER_2))
    verdict = judge(collection(), sign_envelope(statement, OFFICER), policy=policy)
    assert codes(verdict) == ["STATEMENT_INVALID", "APPROVER_THRESHOLD"]


# --- mix-and-match ----------------------------------------------------------------------------------------


def test_approval_of_another_inventory_is_a_subject_mismatch() -> None:
    verdict = judge(collection(), approval(inventory_sha256=OTHER_SHA))
    assert codes(verdict) == ["SUBJECT_MISMATCH", "APPROVER_THRESHOLD"]


def test_collection_of_another_inventory_is_a_subject_mismatch() -> None:
    verdict = judge(collection(inventory=OTHER_INVENTORY), approval())
    assert codes(verdict) == ["SUBJECT_MISMATCH", "COLLECTOR_THRESHOLD"]


def test_approval_naming_another_bundle_is_a_bundle_mismatch() -> None:
    verdict = judge(collection(), approval(bundle_id="bundle-6"))
    assert codes(verdict) == ["BUNDLE_MISMATCH", "APPROVER_THRESHOLD"]


def test_collection_naming_another_bundle_is_a_bundle_mismatch() -> None:
    verdict = judge(collection(bundle_id="bundle-6"), approval())
    assert codes(verdict) == ["BUNDLE_MISMATCH", "COLLECTOR_THRESHOLD"]


# --- what the signature covers ----------------------------------------------------------------------------


def test_changed_payload_type_is_not_counted() -> None:
    verdict = judge(edit(collection(), payloadType="application/json"), approval())
    assert codes(verdict) == ["COLLECTOR_THRESHOLD"]
    assert "untrusted" in statuses(verdict)


def test_payload_type_other_than_in_toto_is_refused_even_when_signed() -> None:
    statement = base64.b64decode(json.loads(collection())["payload"])
    retyped = sign_envelope(statement, COLLECTOR, "application/json")
    verdict = judge(retyped, approval())
    assert codes(verdict) == ["PAYLOAD_TYPE", "COLLECTOR_THRESHOLD"]


def test_reserialised_payload_is_not_counted() -> None:
    original = collection()
    statement = json.loads(base64.b64decode(json.loads(original)["payload"]))
    reserialised = json.dumps(statement, indent=2, sort_keys=False).encode()
    assert json.loads(reserialised) == statement  # same meaning, other bytes
    verdict = judge(edit(original, payload=base64.b64encode(reserialised).decode()), approval())
    assert codes(verdict) == ["COLLECTOR_THRESHOLD"]


def test_signed_payload_that_is_not_a_statement_is_refused() -> None:
    verdict = judge(sign_envelope(b'{"hello": "world"}', COLLECTOR), collection(), approval())
    assert codes(verdict) == ["STATEMENT_INVALID"]


# --- time -------------------------------------------------------------------------------------------------


def test_expired_collection_is_refused() -> None:
    verdict = judge(collection(created=CLOCK - dt.timedelta(days=15)), approval())
    assert codes(verdict) == ["EXPIRED", "COLLECTOR_THRESHOLD"]


def test_collection_expiring_exactly_now_is_expired() -> None:
    verdict = judge(collection(created=CLOCK - dt.timedelta(days=14)), approval())
    assert codes(verdict) == ["EXPIRED", "COLLECTOR_THRESHOLD"]


def test_collection_created_beyond_the_clock_skew_is_refused() -> None:
    verdict = judge(collection(created=CLOCK + CLOCK_SKEW + dt.timedelta(seconds=1)), approval())
    assert codes(verdict) == ["CREATED_IN_FUTURE", "COLLECTOR_THRESHOLD"]


def test_collection_created_within_the_clock_skew_is_accepted() -> None:
    assert judge(collection(created=CLOCK + dt.timedelta(minutes=4)), approval()).ok


def test_collection_older_than_max_age_is_refused() -> None:
    policy = make_policy(max_age=dt.timedelta(days=1))
    verdict = judge(collection(created=CLOCK - dt.timedelta(days=2)), approval(), policy=policy)
    assert codes(verdict) == ["TOO_OLD", "COLLECTOR_THRESHOLD"]


def test_collection_younger_than_max_age_is_accepted() -> None:
    policy = make_policy(max_age=dt.timedelta(days=1))
    assert judge(collection(created=CLOCK - dt.timedelta(hours=12)), approval(), policy=policy).ok


def test_clock_set_back_cannot_revive_a_bundle_expired_before_the_latest_accepted_one() -> None:
    # Valid at CLOCK, but an earlier import already proved it is at least CLOCK + 30 days.
    state = TrustState(latest_created=CLOCK + dt.timedelta(days=30))
    verdict = judge(collection(created=CLOCK - dt.timedelta(hours=1)), approval(), state=state)
    assert codes(verdict) == ["EXPIRED", "COLLECTOR_THRESHOLD"]


def test_latest_created_in_the_past_does_not_move_now_backwards() -> None:
    state = TrustState(latest_created=CLOCK - dt.timedelta(days=300))
    verdict = judge(collection(created=CLOCK - dt.timedelta(days=15)), approval(), state=state)
    assert codes(verdict) == ["EXPIRED", "COLLECTOR_THRESHOLD"]


def test_created_ahead_of_a_slow_clock_but_before_latest_accepted_is_not_in_the_future() -> None:
    state = TrustState(latest_created=CLOCK + dt.timedelta(days=2))
    assert judge(collection(created=CLOCK + dt.timedelta(days=1)), approval(), state=state).ok


# --- order: rollback and fast-forward ---------------------------------------------------------------------


def test_sequence_below_the_last_imported_is_a_rollback() -> None:
    verdict = judge(collection(sequence=6), approval(), state=state_after(7, OTHER_SHA))
    assert codes(verdict) == ["ROLLBACK", "COLLECTOR_THRESHOLD"]


def test_collector_threshold_after_a_rollback_says_the_signature_verified_but_does_not_count() -> None:
    # The signature itself verifies ("counted" in the listing): the threshold line must not call it invalid.
    verdict = judge(collection(sequence=6), approval(), state=state_after(7, OTHER_SHA))
    [threshold] = [p for p in verdict.problems if p.code == "COLLECTOR_THRESHOLD"]
    assert "valid" not in threshold.message
    assert "1 collector signature(s) verified, 0 of them pass the age and sequence checks" in threshold.message


def test_equal_sequence_with_another_inventory_is_a_rollback() -> None:
    verdict = judge(collection(sequence=7), approval(), state=state_after(7, OTHER_SHA))
    assert codes(verdict) == ["ROLLBACK", "COLLECTOR_THRESHOLD"]


def test_equal_sequence_with_the_same_inventory_is_an_idempotent_reimport() -> None:
    assert judge(collection(sequence=7), approval(), state=state_after(7, INVENTORY_SHA)).ok


def test_next_sequence_is_accepted() -> None:
    assert judge(collection(sequence=8), approval(), state=state_after(7, OTHER_SHA)).ok


def test_high_water_mark_of_another_collector_does_not_apply() -> None:
    assert judge(collection(sequence=1), approval(), state=state_after(7, OTHER_SHA, signer=COLLECTOR_2)).ok


def test_sequence_jumping_beyond_the_max_gap_is_refused() -> None:
    policy = make_policy(max_sequence_gap=10)
    verdict = judge(collection(sequence=18), approval(), policy=policy, state=state_after(7, OTHER_SHA))
    assert codes(verdict) == ["SEQUENCE_GAP", "COLLECTOR_THRESHOLD"]


def test_sequence_jumping_exactly_the_max_gap_is_accepted() -> None:
    policy = make_policy(max_sequence_gap=10)
    assert judge(collection(sequence=17), approval(), policy=policy, state=state_after(7, OTHER_SHA)).ok


def test_fast_forward_to_2_pow_53_minus_1_is_refused() -> None:
    verdict = judge(collection(sequence=2**53 - 1), approval(), state=state_after(7, OTHER_SHA))
    assert codes(verdict) == ["SEQUENCE_GAP", "COLLECTOR_THRESHOLD"]


# --- sources ----------------------------------------------------------------------------------------------


def test_source_matching_an_allowed_glob_is_accepted() -> None:
    policy = make_policy(allowed_sources=("registry.example/*",))
    assert judge(collection(), approval(), policy=policy).ok


def test_source_matching_no_allowed_glob_is_refused() -> None:
    policy = make_policy(allowed_sources=("registry.example/*",))
    verdict = judge(collection(), approval(), policy=policy, sources=[*SOURCES, "evil.example/app:1"])
    assert codes(verdict) == ["SOURCE_NOT_ALLOWED"]


def test_source_on_a_host_that_only_starts_like_an_allowed_one_is_refused() -> None:
    policy = make_policy(allowed_sources=("registry.example/*",))
    verdict = judge(collection(), approval(), policy=policy, sources=["registry.example.evil/app:1"])
    assert codes(verdict) == ["SOURCE_NOT_ALLOWED"]


def test_source_glob_is_case_sensitive() -> None:
    policy = make_policy(allowed_sources=("registry.example/*",))
    verdict = judge(collection(), approval(), policy=policy, sources=["REGISTRY.example/app:1"])
    assert codes(verdict) == ["SOURCE_NOT_ALLOWED"]


def test_empty_allowed_sources_refuses_every_source() -> None:
    policy = make_policy(allowed_sources=())
    assert codes(judge(collection(), approval(), policy=policy)) == ["SOURCE_NOT_ALLOWED"]


# --- every problem is listed ------------------------------------------------------------------------------


def test_several_failures_are_all_listed() -> None:
    policy = make_policy(allowed_sources=("registry.example/*",))
    verdict = judge(
        collection(created=CLOCK - dt.timedelta(days=15)),
        approval(inventory_sha256=OTHER_SHA),
        approval(COLLECTOR),
        b"garbage",
        policy=policy,
        sources=["evil.example/app:1"],
    )
    assert sorted(codes(verdict)) == sorted(
        [
            "SUBJECT_MISMATCH",
            "ROLE_CONFUSION",
            "ENVELOPE_INVALID",
            "EXPIRED",
            "COLLECTOR_THRESHOLD",
            "APPROVER_THRESHOLD",
            "SOURCE_NOT_ALLOWED",
        ]
    )


def test_expired_and_rolled_back_collection_lists_both() -> None:
    verdict = judge(
        collection(sequence=6, created=CLOCK - dt.timedelta(days=15)), approval(), state=state_after(7, OTHER_SHA)
    )
    assert codes(verdict) == ["EXPIRED", "ROLLBACK", "COLLECTOR_THRESHOLD"]


def test_policy_key_read_from_another_file_is_the_same_key() -> None:
    # Keys are compared by their DER, not by where they were read from.
    same_key = replace(COLLECTOR.public, source="elsewhere.pub")
    renamed = replace(POLICY, collectors=Role((same_key,), 1))
    assert judge(collection(), approval(), policy=renamed).ok
