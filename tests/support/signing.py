"""Signing a crafted bundle: after a test edits a bundle's inventory, it is signed again as a real collector and
real approvers would sign it, so the attack reaches the checks after the signatures."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any

import yaml

from mirror.bundle.signatures import add_envelope
from mirror.trust.keys import load_signer
from mirror.trust.sign import sign_approval, sign_collection


def edit_inventory(bundle: Path, edit: Any) -> None:
    """Apply `edit(body)` to the inventory of a directory bundle."""
    path = bundle / "inventory.json"
    body = json.loads(path.read_bytes())
    edit(body)
    path.write_text(json.dumps(body, indent=1))


def resign(bundle: Path, collector_key: Path, approver_keys: list[Path], *, sequence: int = 1) -> None:
    """Every envelope of a directory bundle replaced by the collector's and the approvers' over its inventory."""
    for old in (bundle / "signatures").glob("*.json"):
        old.unlink()
    raw = (bundle / "inventory.json").read_bytes()
    bundle_id = json.loads(raw)["bundleId"]
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    collection = sign_collection(
        load_signer(collector_key, env={}),
        raw,
        bundle_id=bundle_id,
        collector="collector",
        sequence=sequence,
        created=now,
        valid_for=dt.timedelta(days=7),
    )
    add_envelope(bundle, collection)
    for key in approver_keys:
        approval = sign_approval(
            load_signer(key, env={}), hashlib.sha256(raw).hexdigest(), bundle_id=bundle_id, comment="", now=now
        )
        add_envelope(bundle, approval)


def write_policy(path: Path, collector_pub: Path, approver_pubs: list[Path]) -> Path:
    """A trust policy for these keys: every approver needed, no source restriction, state beside the policy."""
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "mirror/v1",
                "kind": "TrustPolicy",
                "collectors": {"keys": [str(collector_pub)], "threshold": 1},
                "approvers": {"keys": [str(p) for p in approver_pubs], "threshold": len(approver_pubs)},
                "maxAge": "14d",
                "stateFile": "state.json",
            }
        )
    )
    return path
