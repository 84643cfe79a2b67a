"""The trust policy of the high side, loaded strictly: any doubt about it is a usage error (exit 2)."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mirror.errors import ManifestError, UsageError
from mirror.fsutil import require_regular_file
from mirror.supplychain.rules import VerifyRule, parse_rules, trusted_root_file
from mirror.trust.keys import PublicKey, load_public_key
from mirror.yamlio import load_yaml_documents

API_VERSION = "mirror/v1"
KIND = "TrustPolicy"
_FIELDS = {
    *("apiVersion", "kind", "collectors", "approvers", "maxAge", "allowedSources", "stateFile", "maxSequenceGap"),
    *("requireSignatures", "trustedRoot", "importers"),
}
_ROLE_FIELDS = {"keys", "threshold"}
_IMPORTER_FIELDS = {"keys", "fromEntry"}
_DURATION = re.compile(r"([0-9]+)([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
DEFAULT_MAX_SEQUENCE_GAP = 1000


@dataclass(frozen=True)
class Role:
    keys: tuple[PublicKey, ...]
    threshold: int


@dataclass(frozen=True)
class Importers:
    """The keys that sign the import journal's entries (docs/journal.md), from entry number `from_entry` on."""

    keys: tuple[PublicKey, ...]
    from_entry: int = 1


@dataclass(frozen=True)
class TrustPolicy:
    path: Path
    collectors: Role
    approvers: Role
    max_age: dt.timedelta | None
    allowed_sources: tuple[str, ...] | None
    state_file: Path
    max_sequence_gap: int
    # Upstream signatures every matching image must carry, re-verified offline (mirror/trust/upstream.py); the
    # trusted root for keyless ones (None: the one the bundle carries).
    require_signatures: tuple[VerifyRule, ...] = ()
    trusted_root: Path | None = None
    importers: Importers | None = None  # None: journal entries need no signature


def parse_duration(text: object, where: str) -> dt.timedelta:
    match = _DURATION.fullmatch(text) if isinstance(text, str) else None
    if not match or int(match.group(1)) == 0:
        raise UsageError(f"{where}: expected a duration such as 14d, 12h or 30m, got {text!r}")
    return dt.timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


def _role(path: Path, value: Any, name: str, *, required: bool) -> Role:
    def fail(field: str, problem: str) -> ManifestError:
        return ManifestError(str(path), f"{name}.{field}" if field else name, problem)

    if value is None and not required:
        return Role((), 0)
    if not isinstance(value, dict):
        raise fail("", "expected a mapping with keys and threshold")
    unknown = sorted(set(value) - _ROLE_FIELDS)
    if unknown:
        raise fail(unknown[0], "unknown field")
    files = value.get("keys")
    if not isinstance(files, list) or not all(isinstance(f, str) and f for f in files):
        raise fail("keys", "expected a list of public key files")
    threshold = value.get("threshold")
    if not isinstance(threshold, int) or isinstance(threshold, bool) or threshold < (1 if required else 0):
        raise fail("threshold", f"expected an integer of at least {1 if required else 0}")
    keys: list[PublicKey] = []
    for i, file in enumerate(files):
        try:
            key = load_public_key(path.parent / file)
        except UsageError as exc:
            raise fail(f"keys[{i}]", exc.message) from exc
        if key in keys:
            raise fail(f"keys[{i}]", f"{file} is the same key as keys[{keys.index(key)}]; a key counts once")
        keys.append(key)
    if threshold > len(keys):
        raise fail("threshold", f"{threshold} is more than the {len(keys)} key(s) listed")
    return Role(tuple(keys), threshold)


def _importers(path: Path, value: Any, collectors: Role, approvers: Role) -> Importers | None:
    def fail(field: str, problem: str) -> ManifestError:
        return ManifestError(str(path), f"importers.{field}" if field else "importers", problem)

    if value is None:
        return None
    if not isinstance(value, dict):
        raise fail("", "expected a mapping with keys and an optional fromEntry")
    unknown = sorted(str(k) for k in set(value) - _IMPORTER_FIELDS)
    if unknown:
        raise fail(unknown[0], "unknown field")
    role = _role(path, {"keys": value.get("keys"), "threshold": 1}, "importers", required=True)
    shared = set(role.keys) & {*collectors.keys, *approvers.keys}
    if shared:
        raise fail("keys", f"key {sorted(k.key_id for k in shared)[0]} is also a collector or approver key")
    start = value.get("fromEntry", 1)
    if not isinstance(start, int) or isinstance(start, bool) or start < 1:
        raise fail("fromEntry", "expected a positive integer: the first journal entry the keys sign")
    return Importers(role.keys, start)


def load_policy(path: Path) -> TrustPolicy:
    require_regular_file(path, "trust policy")
    documents = load_yaml_documents(path)
    if len(documents) != 1 or not isinstance(documents[0], dict):
        raise ManifestError(str(path), "", "expected one TrustPolicy document")
    body = documents[0]

    def fail(field: str, problem: str, hint: str | None = None) -> ManifestError:
        return ManifestError(str(path), field, problem, hint=hint)

    unknown = sorted(str(k) for k in set(body) - _FIELDS)
    if unknown:
        raise fail(unknown[0], "unknown field", hint=f"allowed fields: {', '.join(sorted(_FIELDS))}")
    if body.get("apiVersion") != API_VERSION or body.get("kind") != KIND:
        raise fail("kind", f"expected apiVersion {API_VERSION} and kind {KIND}")
    collectors = _role(path, body.get("collectors"), "collectors", required=True)
    approvers = _role(path, body.get("approvers"), "approvers", required=False)
    overlap = set(collectors.keys) & set(approvers.keys)
    if overlap:
        raise fail(
            "approvers.keys",
            f"key {sorted(k.key_id for k in overlap)[0]} is both a collector and an approver",
            hint="collector and approver keys must be different keys, so no one approves their own bundle",
        )
    max_age = None
    if body.get("maxAge") is not None:
        try:
            max_age = parse_duration(body["maxAge"], "maxAge")
        except UsageError as exc:
            raise fail("maxAge", exc.message.removeprefix("maxAge: ")) from exc
    sources = body.get("allowedSources")
    if sources is not None and (not isinstance(sources, list) or not all(isinstance(s, str) and s for s in sources)):
        raise fail("allowedSources", "expected a list of glob patterns such as registry.example/*")
    state = body.get("stateFile")
    if not isinstance(state, str) or not state:
        raise fail("stateFile", "required: the file that records the last imported sequence (anti-rollback)")
    gap = body.get("maxSequenceGap", DEFAULT_MAX_SEQUENCE_GAP)
    if not isinstance(gap, int) or isinstance(gap, bool) or gap < 1:
        raise fail("maxSequenceGap", "expected a positive integer")
    trusted_root = trusted_root_file(body.get("trustedRoot"), path, "trustedRoot")
    required = parse_rules(
        body.get("requireSignatures"),
        path,
        "requireSignatures",
        with_match=True,
        trusted_root=trusted_root,
        root_required=False,
        root_field="trustedRoot",
    )
    return TrustPolicy(
        path=path,
        collectors=collectors,
        approvers=approvers,
        max_age=max_age,
        allowed_sources=tuple(sources) if sources is not None else None,
        state_file=path.parent / state,
        max_sequence_gap=gap,
        require_signatures=required,
        trusted_root=trusted_root,
        importers=_importers(path, body.get("importers"), collectors, approvers),
    )
