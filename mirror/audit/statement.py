"""The signed result of a clean audit: an in-toto Statement v1 in a DSSE envelope, "these targets held exactly
these bundles at this time".

See docs/audit.md ("The statement").
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mirror.errors import UsageError
from mirror.fsutil import atomic_write
from mirror.trust.dsse import sign_envelope
from mirror.trust.keys import Signer
from mirror.trust.statement import STATEMENT_TYPE

AUDIT_PREDICATE = "urn:mirror:predicate:audit:v1"


def check_statement_flags(statement: Path | None, key: Path | None) -> None:
    """Before anything is read: --statement and --key go together, and the statement's directory exists."""
    if statement is None and key is None:
        return
    if statement is None or key is None:
        raise UsageError("--statement FILE and --key KEY go together: the statement is signed with KEY")
    if statement.is_dir():
        raise UsageError(f"--statement {statement}: is a directory", hint="give a file name, e.g. audit.intoto.json")
    if not statement.absolute().parent.is_dir():
        raise UsageError(f"--statement {statement}: directory {statement.absolute().parent} does not exist")


def audit_statement(predicate: dict[str, Any], subjects: list[tuple[str, str]]) -> bytes:
    """The Statement: one subject per bundle held (its id, its inventory's sha256), the audit as predicate."""
    body = {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": name, "digest": {"sha256": sha256}} for name, sha256 in subjects],
        "predicateType": AUDIT_PREDICATE,
        "predicate": predicate,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def write_statement(path: Path, payload: bytes, signer: Signer) -> None:
    """The envelope at `path`, whole or not at all (written beside it, then renamed over it)."""
    atomic_write(path, sign_envelope(payload, signer))
