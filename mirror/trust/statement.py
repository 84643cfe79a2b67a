"""in-toto Statement v1 with mirror's two predicates: a collection (by the collector) and an approval.

Both have the bundle's inventory as their only subject, so a signature covers every file through it.
Payloads are parsed only after their signature was verified, from the exact signed bytes, and strictly.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from typing import Any

from mirror.errors import BundleFormatError
from mirror.oci.document import strict_json
from mirror.timestamps import format_time, parse_time  # re-exported: statements use both

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
COLLECTION = "urn:mirror:predicate:collection:v1"
APPROVAL = "urn:mirror:predicate:approval:v1"
SUBJECT_NAME = "inventory.json"
_HEX = re.compile(r"[a-f0-9]{64}")
_MAX_SEQUENCE = 2**53 - 1


@dataclass(frozen=True)
class Collection:
    bundle_id: str
    collector: str
    sequence: int
    created: dt.datetime
    expires: dt.datetime
    base: str | None  # sha256 hex of the base bundle's inventory, for incremental bundles


@dataclass(frozen=True)
class Approval:
    bundle_id: str
    decision: str
    reviewer: str  # key id of the approving key, as the approver saw it
    time: dt.datetime
    comment: str


def _statement(predicate_type: str, inventory_sha256: str, predicate: dict[str, Any]) -> bytes:
    body = {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": SUBJECT_NAME, "digest": {"sha256": inventory_sha256}}],
        "predicateType": predicate_type,
        "predicate": predicate,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def collection_statement(inventory_sha256: str, collection: Collection) -> bytes:
    return _statement(
        COLLECTION,
        inventory_sha256,
        {
            "bundleId": collection.bundle_id,
            "collector": collection.collector,
            "sequence": collection.sequence,
            "created": format_time(collection.created),
            "expires": format_time(collection.expires),
            "base": collection.base,
        },
    )


def approval_statement(inventory_sha256: str, approval: Approval) -> bytes:
    return _statement(
        APPROVAL,
        inventory_sha256,
        {
            "bundleId": approval.bundle_id,
            "decision": approval.decision,
            "reviewer": approval.reviewer,
            "time": format_time(approval.time),
            "comment": approval.comment,
        },
    )


def _exact(value: object, keys: set[str], where: str) -> dict[str, Any]:
    if not isinstance(value, dict) or set(value) != keys:
        raise BundleFormatError(f"{where}: expected exactly the fields {', '.join(sorted(keys))}")
    return value


def _string(value: object, where: str, limit: int = 4096) -> str:
    if not isinstance(value, str) or len(value) > limit:
        raise BundleFormatError(f"{where}: expected a string of at most {limit} characters")
    return value


@dataclass(frozen=True)
class Statement:
    inventory_sha256: str
    predicate_type: str
    predicate: Collection | Approval


def parse_statement(payload: bytes, where: str) -> Statement:
    body = _exact(strict_json(payload, where), {"_type", "subject", "predicateType", "predicate"}, where)
    if body["_type"] != STATEMENT_TYPE:
        raise BundleFormatError(f"{where}: _type is not {STATEMENT_TYPE}")
    subjects = body["subject"]
    if not isinstance(subjects, list) or len(subjects) != 1:
        raise BundleFormatError(f"{where}: expected exactly one subject, the inventory")
    subject = _exact(subjects[0], {"name", "digest"}, f"{where} subject")
    digest = _exact(subject["digest"], {"sha256"}, f"{where} subject digest")
    if subject["name"] != SUBJECT_NAME or not isinstance(digest["sha256"], str) or not _HEX.fullmatch(digest["sha256"]):
        raise BundleFormatError(f"{where}: the subject must be {SUBJECT_NAME} with a sha256 digest")
    predicate_type = body["predicateType"]
    p = f"{where} predicate"
    if predicate_type == COLLECTION:
        fields = _exact(body["predicate"], {"bundleId", "collector", "sequence", "created", "expires", "base"}, p)
        sequence = fields["sequence"]
        if not isinstance(sequence, int) or isinstance(sequence, bool) or not 1 <= sequence <= _MAX_SEQUENCE:
            raise BundleFormatError(f"{p}: sequence must be an integer from 1 to 2^53-1")
        base = fields["base"]
        if base is not None and (not isinstance(base, str) or not _HEX.fullmatch(base)):
            raise BundleFormatError(f"{p}: base must be null or a sha256 hex digest")
        predicate: Collection | Approval = Collection(
            bundle_id=_string(fields["bundleId"], f"{p} bundleId", 200),
            collector=_string(fields["collector"], f"{p} collector", 200),
            sequence=sequence,
            created=parse_time(fields["created"], f"{p} created"),
            expires=parse_time(fields["expires"], f"{p} expires"),
            base=base,
        )
    elif predicate_type == APPROVAL:
        fields = _exact(body["predicate"], {"bundleId", "decision", "reviewer", "time", "comment"}, p)
        if fields["decision"] != "approved":
            raise BundleFormatError(f"{p}: decision must be 'approved'")
        predicate = Approval(
            bundle_id=_string(fields["bundleId"], f"{p} bundleId", 200),
            decision="approved",
            reviewer=_string(fields["reviewer"], f"{p} reviewer", 64),
            time=parse_time(fields["time"], f"{p} time"),
            comment=_string(fields["comment"], f"{p} comment"),
        )
    else:
        raise BundleFormatError(f"{where}: predicateType {predicate_type!r} is not one mirror accepts")
    return Statement(digest["sha256"], predicate_type, predicate)
