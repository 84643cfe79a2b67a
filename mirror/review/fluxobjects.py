"""The Flux objects of a fleet as a reviewer sees them: each object by kind, namespace and name, and between two
bundles, the objects added, removed and changed, with the fields that changed. See docs/review.md.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from mirror.bundle.inventory import ArtifactRecord, blob_path
from mirror.bundle.reader import BundleReader, read_small
from mirror.errors import MirrorError
from mirror.flux.blob import parse_objects_blob
from mirror.flux.objects import FluxObject
from mirror.limits import DEFAULT_LIMITS
from mirror.oci.digest import sha256_digest

_LIMITS = DEFAULT_LIMITS
# Kinds whose values may be credentials: a change is named by its field, never shown.
_SECRET_KINDS = {"Secret"}


@dataclass(frozen=True)
class ObjectName:
    api_version: str
    kind: str
    namespace: str  # "" for a cluster-scoped object
    name: str

    @property
    def display(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}" if self.namespace else f"{self.kind} {self.name}"

    @property
    def identity(self) -> tuple[str, str, str, str]:
        # The API group, not the version: an object moved from v1beta2 to v1 is the same object, changed.
        return (self.api_version.rpartition("/")[0], self.kind, self.namespace, self.name)

    def to_json(self) -> dict[str, str]:
        return {"apiVersion": self.api_version, "kind": self.kind, "namespace": self.namespace, "name": self.name}


@dataclass(frozen=True)
class FieldChange:
    """One leaf of the object that changed: its value before and after (a scalar, or an empty list or mapping;
    strings cut at review_max_value_chars). Absent is None, as is a value not shown (a Secret's)."""

    path: str  # spec.chart.spec.version, spec.ignore[2]
    old: Any
    new: Any
    old_present: bool = True
    new_present: bool = True

    def to_json(self) -> dict[str, object]:
        return {"path": self.path, "old": self.old, "new": self.new}

    def describe(self, shown: bool) -> str:
        """`spec.x "1.0" -> "1.1"`, `spec.y added: 3`; a Secret's field by its path alone (unescaped)."""
        if not shown:
            return f"{self.path} (value not shown)"
        if not self.old_present:
            return f"{self.path} added: {_json(self.new)}"
        if not self.new_present:
            return f"{self.path} removed (was {_json(self.old)})"
        return f"{self.path} {_json(self.old)} -> {_json(self.new)}"


@dataclass(frozen=True)
class ObjectChange:
    name: ObjectName
    what: str  # added | removed | changed
    fields: tuple[FieldChange, ...] = ()
    more_fields: int = 0  # changed fields beyond the cap, counted
    hidden: bool = False  # a Secret's: the values are not shown

    def to_json(self) -> dict[str, object]:
        return {
            **self.name.to_json(),
            "change": self.what,
            "fields": [f.to_json() for f in self.fields],
            "moreFields": self.more_fields,
            "valuesShown": not self.hidden,
        }


@dataclass
class FleetChange:
    """The objects of one Flux fleet (source and path) that changed from one bundle to the next."""

    source: str
    path: str
    objects: list[ObjectChange] = field(default_factory=list)
    note: str = ""

    def to_json(self) -> dict[str, object]:
        return {
            "source": self.source,
            "path": self.path,
            "objects": [o.to_json() for o in self.objects],
            "note": self.note,
        }


def _name(obj: FluxObject) -> ObjectName:
    return ObjectName(obj.api_version, obj.kind, obj.namespace or "", obj.name)


def read_objects(reader: BundleReader, artifact: ArtifactRecord) -> list[FluxObject]:
    """The fleet's objects, from its blob checked against its digest; a MirrorError says why they are not."""
    raw = read_small(reader, blob_path(artifact.digest), _LIMITS.max_flux_objects_bytes)
    if sha256_digest(raw) != artifact.digest:
        raise MirrorError(f"{blob_path(artifact.digest)} does not match its digest")
    return parse_objects_blob(raw, f"{reader.location}: {blob_path(artifact.digest)}", limits=_LIMITS)


def object_names(objects: list[FluxObject]) -> list[ObjectName]:
    return [_name(o) for o in objects]


def _leaves(value: Any, path: str, out: dict[str, Any]) -> None:
    if isinstance(value, dict) and value:
        for key, item in value.items():
            _leaves(item, f"{path}.{key}" if path else str(key), out)
    elif isinstance(value, list) and value:
        for index, item in enumerate(value):
            _leaves(item, f"{path}[{index}]", out)
    else:
        out[path] = value


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _cut(value: Any) -> Any:
    cap = _LIMITS.review_max_value_chars
    return value[: cap - 1] + "…" if isinstance(value, str) and len(value) > cap else value


def _changed(name: ObjectName, old: FluxObject, new: FluxObject) -> ObjectChange | None:
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    _leaves(old.body, "", before)
    _leaves(new.body, "", after)
    hidden = name.kind in _SECRET_KINDS
    paths = [p for p in sorted(set(before) | set(after)) if before.get(p, _ABSENT) != after.get(p, _ABSENT)]
    if not paths:
        return None
    cap = _LIMITS.review_max_object_fields
    fields = tuple(
        FieldChange(p, None, None, p in before, p in after)
        if hidden
        else FieldChange(p, _cut(before.get(p)), _cut(after.get(p)), p in before, p in after)
        for p in paths[:cap]
    )
    return ObjectChange(name, "changed", fields, max(0, len(paths) - cap), hidden)


_ABSENT = object()


def object_changes(old: list[FluxObject], new: list[FluxObject]) -> list[ObjectChange]:
    """Objects matched by API group, kind, namespace and name; in the order of the new fleet, then the removed."""
    before = {_name(o).identity: o for o in old}
    after = {_name(o).identity: o for o in new}
    changes = []
    for identity, obj in after.items():
        previous = before.get(identity)
        if previous is None:
            changes.append(ObjectChange(_name(obj), "added"))
        elif (change := _changed(_name(obj), previous, obj)) is not None:
            changes.append(change)
    changes += [ObjectChange(_name(o), "removed") for identity, o in before.items() if identity not in after]
    return changes
