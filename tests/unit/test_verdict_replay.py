"""The verdict on a bundle `mirror restore` imports again: the journal says it was imported, so its age and
sequence are not judged again; its signatures are (docs/day-two.md, "Restore")."""

from __future__ import annotations

import datetime as dt

from mirror.trust.state import TrustState
from mirror.trust.verdict import Verdict, evaluate
from tests.unit.test_verdict import (
    BUNDLE,
    CLOCK,
    INVENTORY_SHA,
    OTHER_SHA,
    POLICY,
    SOURCES,
    STRANGER,
    approval,
    codes,
    collection,
    make_policy,
    state_after,
)

LATER = CLOCK + dt.timedelta(days=400)  # long after the collection expired


def replayed(*envelopes: bytes, replay: str | None, state: TrustState | None = None, **policy: object) -> Verdict:
    return evaluate(
        inventory_sha256=INVENTORY_SHA,
        bundle_id=BUNDLE,
        envelopes={f"signatures/{i}.json": raw for i, raw in enumerate(envelopes)},
        sources=SOURCES,
        policy=make_policy(**policy) if policy else POLICY,  # type: ignore[arg-type]
        state=state or TrustState(),
        clock=LATER,
        replay=replay,
    )


def test_an_expired_bundle_the_journal_lists_is_accepted_again() -> None:
    assert codes(replayed(collection(), approval(), replay=None)) == ["EXPIRED", "COLLECTOR_THRESHOLD"]
    assert replayed(collection(), approval(), replay=INVENTORY_SHA).ok


def test_a_sequence_before_the_last_imported_is_accepted_again() -> None:
    state = state_after(9, OTHER_SHA)
    verdict = replayed(collection(sequence=7), approval(), replay=INVENTORY_SHA, state=state)
    assert verdict.ok, verdict.problems


def test_a_bundle_older_than_max_age_is_accepted_again() -> None:
    verdict = replayed(collection(), approval(), replay=INVENTORY_SHA, max_age=dt.timedelta(days=1))
    assert verdict.ok, verdict.problems


def test_the_waiver_is_for_the_inventory_named_and_no_other() -> None:
    assert "EXPIRED" in codes(replayed(collection(), approval(), replay=OTHER_SHA))


def test_signatures_still_count_only_from_the_policy_keys() -> None:
    verdict = replayed(collection(STRANGER), approval(), replay=INVENTORY_SHA)
    assert codes(verdict) == ["COLLECTOR_THRESHOLD"]


def test_approvals_are_still_required() -> None:
    assert codes(replayed(collection(), replay=INVENTORY_SHA)) == ["APPROVER_THRESHOLD"]
