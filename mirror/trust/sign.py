"""Producing envelopes: the collector's over a new bundle, an approver's over a checked one."""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import json
import os
from pathlib import Path

from mirror.errors import UsageError
from mirror.oci.document import bounded_json
from mirror.trust.dsse import sign_envelope
from mirror.trust.keys import Signer
from mirror.trust.statement import Approval, Collection, approval_statement, collection_statement


def sequence_file(key_path: Path) -> Path:
    """The collector's own record of the last sequence it signed, kept beside its key."""
    return key_path.with_name(key_path.stem + ".state.json")


def reserve_sequence(key_path: Path, explicit: int | None = None, state_file: Path | None = None) -> int:
    """The next sequence for this collector key, recorded before use so two collects never share one.

    The record lives in `state_file`, by default beside the key (a key mounted read-only, as from a Kubernetes
    Secret, needs it elsewhere). A collect that fails afterwards leaves a gap, which the high side accepts (within
    maxSequenceGap).
    """
    path = state_file if state_file is not None else sequence_file(key_path)
    try:
        handle = open(path, "a+")  # noqa: SIM115 - closed by the with below
    except OSError as exc:
        raise UsageError(
            f"{path}: cannot write the collector's sequence record: {exc.strerror}",
            hint="pass --state-file PATH on a writable volume",
        ) from exc
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        handle.seek(0)
        text = handle.read()
        try:
            last = int(bounded_json(text)["sequence"]) if text.strip() else 0
        except (ValueError, KeyError, TypeError) as exc:
            raise UsageError(f"{path}: unreadable collector state", hint="restore it, or pass --sequence") from exc
        if explicit is not None and explicit <= 0:
            raise UsageError("--sequence must be a positive integer")
        sequence = explicit if explicit is not None else last + 1
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"sequence": max(sequence, last)}) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    return sequence


def sign_collection(
    signer: Signer,
    inventory: bytes,
    *,
    bundle_id: str,
    collector: str,
    sequence: int,
    created: dt.datetime,
    valid_for: dt.timedelta,
    base: str | None = None,
) -> bytes:
    collection = Collection(bundle_id, collector, sequence, created, created + valid_for, base)
    return sign_envelope(collection_statement(hashlib.sha256(inventory).hexdigest(), collection), signer)


def sign_approval(signer: Signer, inventory_sha256: str, *, bundle_id: str, comment: str, now: dt.datetime) -> bytes:
    approval = Approval(bundle_id, "approved", signer.public.key_id, now, comment)
    return sign_envelope(approval_statement(inventory_sha256, approval), signer)
