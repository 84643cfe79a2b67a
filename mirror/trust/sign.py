"""Producing envelopes: the collector's over a new bundle, an approver's over a checked one."""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

from mirror.errors import UsageError
from mirror.oci.document import bounded_json
from mirror.trust.dsse import sign_envelope
from mirror.trust.keys import Signer
from mirror.trust.statement import Approval, Collection, approval_statement, collection_statement


def sequence_file(key_path: Path) -> Path:
    """The collector's own record of the last sequence it signed, kept beside its key."""
    return key_path.with_name(key_path.stem + ".state.json")


STATE_FILE_VARIABLE = "MIRROR_STATE_FILE"


def reserve_sequence(
    key_path: Path,
    explicit: int | None = None,
    state_file: Path | None = None,
    warn: Callable[[str], None] | None = None,
) -> int:
    """The next sequence for this collector key, recorded before use so two collects never share one.

    The record lives in `state_file` (`--state-file`, or $MIRROR_STATE_FILE), by default beside the key (a key
    mounted read-only, as from a Kubernetes Secret, needs it elsewhere). A collect that fails afterwards leaves a
    gap, which the high side accepts (within maxSequenceGap). One key has one sequence: a record elsewhere also
    counts a higher record beside the key (manual collects kept theirs there), and `warn` says so.
    """
    path = state_file if state_file is not None else sequence_file(key_path)
    beside = _record_beside_key(key_path, path)
    try:
        handle = open(path, "a+")  # noqa: SIM115 - closed by the with below
    except OSError as exc:
        raise UsageError(
            f"{path}: cannot write the collector's sequence record: {exc.strerror}",
            hint=f"pass --state-file PATH (or set {STATE_FILE_VARIABLE}) on a writable volume",
        ) from exc
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        handle.seek(0)
        last = _recorded(handle.read(), path)
        if beside is not None and beside[1] > last:
            if warn is not None:
                warn(
                    f"{beside[0]}: this key's sequence record beside the key is ahead of {path} ({beside[1]} > "
                    f"{last}); continuing from {beside[1]}. Give every collect with this key the same record "
                    f"(--state-file or {STATE_FILE_VARIABLE}={path}), then remove {beside[0]}"
                )
            last = beside[1]
        if explicit is not None and explicit <= 0:
            raise UsageError("--sequence must be a positive integer")
        sequence = explicit if explicit is not None else last + 1
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"sequence": max(sequence, last)}) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    return sequence


def _recorded(text: str, path: Path) -> int:
    try:
        return int(bounded_json(text)["sequence"]) if text.strip() else 0
    except (ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"{path}: unreadable collector state", hint="restore it, or pass --sequence") from exc


def _record_beside_key(key_path: Path, used: Path) -> tuple[Path, int] | None:
    """The record beside the key and its sequence, when another record is used and that one can be read."""
    beside = sequence_file(key_path)
    try:
        if beside.resolve() == used.resolve():
            return None
        with open(beside, encoding="utf-8") as handle:
            text = handle.read(4096)
    except OSError:
        return None  # absent or unreadable: nothing to reconcile
    try:
        return beside, _recorded(text, beside)
    except UsageError:
        return None  # not ours to judge: only the record in use must be readable


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
