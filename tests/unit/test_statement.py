"""in-toto Statement v1 with mirror's collection and approval predicates: what is written parses back, and
anything else is refused."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import pytest

from mirror.errors import BundleFormatError, VerificationError
from mirror.trust.statement import (
    APPROVAL,
    COLLECTION,
    STATEMENT_TYPE,
    Approval,
    Collection,
    approval_statement,
    collection_statement,
    parse_statement,
)

INVENTORY = "a" * 64
CREATED = dt.datetime(2026, 1, 31, 12, 0, 0, tzinfo=dt.UTC)
COLLECTED = Collection(
    bundle_id="bundle-7",
    collector="low-side",
    sequence=7,
    created=CREATED,
    expires=CREATED + dt.timedelta(days=14),
    base=None,
)
APPROVED = Approval(
    bundle_id="bundle-7", decision="approved", reviewer="b" * 64, time=CREATED + dt.timedelta(hours=2), comment="ok"
)

Body = dict[str, Any]


def collection_body() -> Body:
    return json.loads(collection_statement(INVENTORY, COLLECTED))


def approval_body() -> Body:
    return json.loads(approval_statement(INVENTORY, APPROVED))


def parse(body: Body) -> Any:
    return parse_statement(json.dumps(body).encode(), "statement")


def mutated(body: Body, change: Callable[[Body], None]) -> Body:
    change(body)
    return body


def setter(*path_and_value: Any) -> Callable[[Body], None]:
    *path, value = path_and_value

    def change(body: Body) -> None:
        target = body
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = value

    return change


def deleter(*path: Any) -> Callable[[Body], None]:
    def change(body: Body) -> None:
        target = body
        for step in path[:-1]:
            target = target[step]
        del target[path[-1]]

    return change


# --- round trips ------------------------------------------------------------------------------------------


def test_collection_statement_round_trips() -> None:
    statement = parse_statement(collection_statement(INVENTORY, COLLECTED), "statement")
    assert (statement.inventory_sha256, statement.predicate_type, statement.predicate) == (
        INVENTORY,
        COLLECTION,
        COLLECTED,
    )


def test_collection_statement_with_a_base_round_trips() -> None:
    incremental = Collection("bundle-8", "low-side", 8, CREATED, CREATED + dt.timedelta(days=1), "c" * 64)
    assert parse_statement(collection_statement(INVENTORY, incremental), "statement").predicate == incremental


def test_approval_statement_round_trips() -> None:
    statement = parse_statement(approval_statement(INVENTORY, APPROVED), "statement")
    assert (statement.inventory_sha256, statement.predicate_type, statement.predicate) == (
        INVENTORY,
        APPROVAL,
        APPROVED,
    )


def test_statement_has_the_in_toto_v1_shape() -> None:
    body = collection_body()
    assert body["_type"] == STATEMENT_TYPE == "https://in-toto.io/Statement/v1"
    assert body["subject"] == [{"name": "inventory.json", "digest": {"sha256": INVENTORY}}]


def test_times_are_written_in_utc_z_form_from_another_zone() -> None:
    zone = dt.timezone(dt.timedelta(hours=2))
    approval = Approval("b", "approved", "k", dt.datetime(2026, 1, 31, 14, 0, 0, tzinfo=zone), "")
    assert json.loads(approval_statement(INVENTORY, approval))["predicate"]["time"] == "2026-01-31T12:00:00Z"


# --- strictness -------------------------------------------------------------------------------------------

COLLECTION_MUTATIONS: dict[str, Callable[[Body], None]] = {
    "extra predicate field": setter("predicate", "note", "x"),
    "missing predicate field": deleter("predicate", "base"),
    "extra top-level field": setter("extra", 1),
    "missing predicate": deleter("predicate"),
    "missing subject": deleter("subject"),
    "wrong _type": setter("_type", "https://in-toto.io/Statement/v0.1"),
    "two subjects": setter(
        "subject",
        [
            {"name": "inventory.json", "digest": {"sha256": INVENTORY}},
            {"name": "inventory.json", "digest": {"sha256": "d" * 64}},
        ],
    ),
    "no subjects": setter("subject", []),
    "subject is an object": setter("subject", {"name": "inventory.json", "digest": {"sha256": INVENTORY}}),
    "subject name not inventory.json": setter("subject", 0, "name", "index.json"),
    "extra subject field": setter("subject", 0, "uri", "x"),
    "second digest algorithm": setter("subject", 0, "digest", "sha512", "e" * 128),
    "digest algorithm not sha256": setter("subject", 0, "digest", {"sha512": "e" * 128}),
    "uppercase hex": setter("subject", 0, "digest", "sha256", "A" * 64),
    "short hex": setter("subject", 0, "digest", "sha256", "a" * 63),
    "prefixed digest": setter("subject", 0, "digest", "sha256", "sha256:" + "a" * 64),
    "sequence 0": setter("predicate", "sequence", 0),
    "sequence negative": setter("predicate", "sequence", -1),
    "sequence bool": setter("predicate", "sequence", True),
    "sequence float": setter("predicate", "sequence", 7.0),
    "sequence string": setter("predicate", "sequence", "7"),
    "sequence above 2^53-1": setter("predicate", "sequence", 2**53),
    "base not hex": setter("predicate", "base", "not-a-digest"),
    "base uppercase hex": setter("predicate", "base", "C" * 64),
    "created with offset": setter("predicate", "created", "2026-01-31T12:00:00+00:00"),
    "created with fraction": setter("predicate", "created", "2026-01-31T12:00:00.000Z"),
    "created without Z": setter("predicate", "created", "2026-01-31T12:00:00"),
    "created with space": setter("predicate", "created", "2026-01-31 12:00:00Z"),
    "created lowercase z": setter("predicate", "created", "2026-01-31T12:00:00z"),
    "created impossible date": setter("predicate", "created", "2026-02-30T12:00:00Z"),
    "created as number": setter("predicate", "created", 1769860800),
    "expires with offset": setter("predicate", "expires", "2026-02-14T12:00:00+01:00"),
    "bundleId not a string": setter("predicate", "bundleId", 7),
    "bundleId too long": setter("predicate", "bundleId", "b" * 201),
    "unknown predicateType": setter("predicateType", "https://slsa.dev/provenance/v1"),
    "predicate not an object": setter("predicate", []),
}


@pytest.mark.parametrize("change", COLLECTION_MUTATIONS.values(), ids=COLLECTION_MUTATIONS.keys())
def test_malformed_collection_statement_is_refused(change: Callable[[Body], None]) -> None:
    with pytest.raises(BundleFormatError):
        parse(mutated(collection_body(), change))


APPROVAL_MUTATIONS: dict[str, Callable[[Body], None]] = {
    "extra predicate field": setter("predicate", "scan", "clean"),
    "missing comment": deleter("predicate", "comment"),
    "decision rejected": setter("predicate", "decision", "rejected"),
    "decision capitalised": setter("predicate", "decision", "Approved"),
    "decision true": setter("predicate", "decision", True),
    "time with offset": setter("predicate", "time", "2026-01-31T14:00:00+02:00"),
    "reviewer too long": setter("predicate", "reviewer", "b" * 65),
    "comment not a string": setter("predicate", "comment", None),
    "collection fields under approval type": setter("predicate", collection_body()["predicate"]),
}


@pytest.mark.parametrize("change", APPROVAL_MUTATIONS.values(), ids=APPROVAL_MUTATIONS.keys())
def test_malformed_approval_statement_is_refused(change: Callable[[Body], None]) -> None:
    with pytest.raises(BundleFormatError):
        parse(mutated(approval_body(), change))


def test_approval_fields_under_the_collection_type_are_refused() -> None:
    body = approval_body()
    body["predicateType"] = COLLECTION
    with pytest.raises(BundleFormatError):
        parse(body)


def test_largest_sequence_2_pow_53_minus_1_is_accepted() -> None:
    body = collection_body()
    body["predicate"]["sequence"] = 2**53 - 1
    assert parse(body).predicate.sequence == 2**53 - 1


def test_time_with_non_ascii_digits_is_refused() -> None:
    # "２０２６" (fullwidth digits) is not the Z form other verifiers read; it must not parse as 2026.
    body = collection_body()
    body["predicate"]["created"] = "２０２６-01-31T12:00:00Z"
    with pytest.raises(BundleFormatError):
        parse(body)


def test_duplicate_json_keys_in_a_statement_are_refused() -> None:
    raw = collection_statement(INVENTORY, COLLECTED)
    forged = raw.replace(b'"sequence":7', b'"sequence":7,"sequence":9', 1)
    assert forged != raw
    with pytest.raises(VerificationError):
        parse_statement(forged, "statement")


def test_statement_that_is_not_utf8_json_is_refused() -> None:
    with pytest.raises(VerificationError):
        parse_statement(b"\xff\xfe{}", "statement")
