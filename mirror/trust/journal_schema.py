"""The fields of each kind of journal entry, checked strictly: what audit and prune read is typed.

See docs/journal.md ("The format"). A new kind is a new entry of KINDS here and a section there; readers refuse
kinds they do not know, so an older mirror never misreads a newer journal.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Mapping
from typing import Any

from mirror.errors import MirrorError
from mirror.trust.statement import parse_time

FORMAT_VERSION = 1

Check = Callable[[Any, str], None]

_HEX64 = re.compile(r"[a-f0-9]{64}")
_SHA256 = re.compile(r"sha256:[a-f0-9]{64}")
_DIGEST = re.compile(r"[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+")  # the OCI digest grammar
_GIT_OBJECT = re.compile(r"[a-f0-9]{40}|[a-f0-9]{64}")


class SchemaError(ValueError):
    """A field outside the format; the message names it."""


def _fail(where: str, expected: str) -> SchemaError:
    return SchemaError(f"{where}: expected {expected}")


def string(value: Any, where: str) -> None:
    if not isinstance(value, str):
        raise _fail(where, "a string")


def integer(minimum: int) -> Check:
    def check(value: Any, where: str) -> None:
        if type(value) is not int or value < minimum:
            raise _fail(where, f"an integer of at least {minimum}")

    return check


def boolean(value: Any, where: str) -> None:
    if type(value) is not bool:
        raise _fail(where, "true or false")


def matching(pattern: re.Pattern[str], expected: str) -> Check:
    def check(value: Any, where: str) -> None:
        if not isinstance(value, str) or not pattern.fullmatch(value):
            raise _fail(where, expected)

    return check


def one_of(*allowed: str) -> Check:
    def check(value: Any, where: str) -> None:
        if value not in allowed:
            raise _fail(where, "one of " + ", ".join(allowed))

    return check


def nullable(inner: Check) -> Check:
    def check(value: Any, where: str) -> None:
        if value is not None:
            inner(value, where)

    return check


def list_of(inner: Check) -> Check:
    def check(value: Any, where: str) -> None:
        if not isinstance(value, list):
            raise _fail(where, "a list")
        for i, item in enumerate(value):
            inner(item, f"{where}[{i}]")

    return check


def mapping_of(keys: Check, values: Check) -> Check:
    def check(value: Any, where: str) -> None:
        if not isinstance(value, dict):
            raise _fail(where, "an object")
        for key, item in value.items():
            keys(key, f"{where} key")
            values(item, f"{where}.{key}")

    return check


def obj(required: Mapping[str, Check], optional: Mapping[str, Check] | None = None) -> Check:
    """An object with exactly the required fields and any of the optional ones, nothing else."""
    fields = {**required, **(optional or {})}
    needed, allowed = frozenset(required), frozenset(fields)

    def check(value: Any, where: str) -> None:
        if not isinstance(value, dict):
            raise _fail(where or "entry", "an object")
        keys = value.keys()
        if not needed <= keys:
            raise SchemaError(f"{where or 'entry'}: missing field {sorted(needed - keys)[0]}")
        if not keys <= allowed:
            raise SchemaError(f"{where or 'entry'}: unknown field {sorted(str(k) for k in keys - allowed)[0]}")
        prefix = f"{where}." if where else ""
        for name, item in value.items():
            fields[name](item, prefix + name)

    return check


def _time(value: Any, where: str) -> None:
    try:
        parse_time(value, where)
    except MirrorError as exc:
        raise _fail(where, "a UTC time like 2026-01-31T12:00:00Z") from exc


def _base64(value: Any, where: str) -> None:
    try:
        if isinstance(value, str) and value:
            base64.b64decode(value, validate=True)
            return
    except binascii.Error:
        pass
    raise _fail(where, "standard base64")


def _version(value: Any, where: str) -> None:
    if type(value) is not int or value != FORMAT_VERSION:
        raise _fail(where, f"{FORMAT_VERSION}, the format version")


hex64 = matching(_HEX64, "64 hex digits")
sha256_ref = matching(_SHA256, '"sha256:" and 64 hex digits')
digest = matching(_DIGEST, "a digest such as sha256:<hex>")
git_object = matching(_GIT_OBJECT, "a Git object name (40 or 64 hex digits)")
exit_code = integer(0)
codes = list_of(string)

COMMON: dict[str, Check] = {
    "v": _version,
    "seq": integer(1),
    "prev": nullable(sha256_ref),
    "time": _time,
    "kind": string,  # checked against KINDS first
    "notes": list_of(string),
}
SIGNATURE = obj({"keyid": string, "sig": _base64})

_WRITTEN = obj(
    {
        "images": list_of(
            obj(
                {
                    "repository": string,
                    "tag": nullable(string),
                    "digest": digest,
                    "manifests": list_of(digest),
                    "status": nullable(one_of("pushed", "unchanged")),
                    "previous": nullable(digest),
                }
            )
        ),
        "attached": list_of(obj({"repository": string, "tag": nullable(string), "digest": digest})),
        "git": list_of(
            obj(
                {
                    "repository": string,
                    "ref": string,
                    "old": nullable(git_object),
                    "new": git_object,
                    "outcome": nullable(one_of("created", "updated", "unchanged", "forced")),
                }
            )
        ),
        "fluxFiles": integer(0),
        "mirrorConfigFiles": integer(0),
    }
)
# How far a partial import's writes got: these fields of its WriteLog (importer/run.py), no others.
PROGRESS_FIELDS: dict[str, Check] = {
    "stateRecorded": boolean,
    "registryWriteRequests": integer(0),
    "gitPushed": list_of(string),
    "gitInterrupted": nullable(string),
    "fluxFiles": integer(0),
    "mirrorConfigFiles": integer(0),
}
_PROGRESS = obj({}, PROGRESS_FIELDS)

_IMPORT: dict[str, Check] = {
    "result": one_of("imported", "partial", "refused", "failed"),
    "exitCode": exit_code,
    "bundleId": nullable(string),
    "inventory": nullable(sha256_ref),
    "sequence": nullable(integer(1)),
    "collectors": list_of(hex64),
    "approvers": list_of(hex64),
    "registry": string,
    "git": nullable(string),
    "written": nullable(_WRITTEN),
    "progress": nullable(_PROGRESS),
    "problems": codes,
    "message": nullable(string),
}

KINDS: dict[str, dict[str, Check]] = {
    "import": _IMPORT,
    # A bundle the journal lists as imported, imported again by `mirror restore` (docs/day-two.md): an import's
    # fields, `restored` for `imported`, and the entry whose import it repeats.
    "restore": {
        **_IMPORT,
        "result": one_of("restored", "partial", "refused", "failed"),
        "restores": integer(1),
    },
    "prune": {
        "result": one_of("pruned", "partial", "refused", "failed"),
        "exitCode": exit_code,
        "registry": string,
        "kept": list_of(sha256_ref),
        "deleted": nullable(list_of(obj({"repository": string, "digest": digest, "tags": list_of(string)}))),
        "problems": codes,
        "message": nullable(string),
    },
    "adopt": {
        "state": obj(
            {
                "collectors": mapping_of(hex64, obj({"sequence": integer(1), "inventory": hex64})),
                "latestCreated": nullable(_time),
            }
        ),
    },
}
# The one field of a kind that may be left out (null) when the entry would not fit in a line, and a note says so.
OMITTABLE = {"import": "written", "restore": "written", "prune": "deleted"}


def check_entry(body: Any) -> None:
    """Raise SchemaError unless `body` is an entry of a known kind with exactly its fields."""
    if not isinstance(body, dict):
        raise SchemaError("an entry is a JSON object")
    kind = body.get("kind")
    if kind not in KINDS:
        raise SchemaError(f"kind: {kind!r} is not one of {', '.join(KINDS)}")
    obj({**COMMON, **KINDS[kind]}, {"signature": SIGNATURE})(body, "")
