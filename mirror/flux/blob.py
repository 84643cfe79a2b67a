"""The Flux objects blob: the objects a fleet's collect read, carried in the bundle as one JSON document
(`FluxObjects`) for the importer to rewrite. Written on the connected side, parsed on the high side."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from mirror.errors import InvalidDocumentError, UsageError
from mirror.flux.objects import FluxObject, object_from_document
from mirror.limits import DEFAULT_LIMITS, Limits
from mirror.oci.document import strict_json

FLUX_OBJECTS_MEDIA_TYPE = "application/vnd.mirror.flux.objects.v1+json"


def objects_blob(objects: Sequence[FluxObject], *, max_bytes: int, where: str) -> bytes:
    """The objects as one compact JSON document with sorted keys, refused (exit 2, naming `where` and the limit)
    as soon as it grows past `max_bytes`: the objects are encoded one by one, so an oversized fleet is stopped
    while the blob is built, not after."""
    listed = sorted(objects, key=lambda o: (o.namespace or "", o.kind, o.name, o.file))
    head, tail = b'{"apiVersion":"mirror/v1","kind":"FluxObjects","objects":[', b"]}"
    parts = [head]
    size = len(head) + len(tail)
    for number, obj in enumerate(listed):
        item = {"file": obj.file, "index": obj.index, "object": obj.body}
        part = (b"," if number else b"") + json.dumps(item, sort_keys=True, separators=(",", ":")).encode()
        size += len(part)
        if size > max_bytes:
            raise UsageError(
                f"{where}: the Flux objects come to more than {max_bytes} bytes (the limit of a fleet's objects), "
                f"passed at {obj.display} in {obj.file}",
                hint="collect a narrower path, or split the fleet into several flux entries",
            )
        parts.append(part)
    parts.append(tail)
    return b"".join(parts)


def _item_fault(item: Any) -> str | None:
    if not isinstance(item, dict):
        return "an entry is not an object"
    if not isinstance(item.get("file"), str):
        return "an entry's file is not a string"
    if type(item.get("index", 0)) is not int:
        return "an entry's index is not an integer"
    return None


def parse_objects_blob(raw: bytes, where: str, *, limits: Limits = DEFAULT_LIMITS) -> list[FluxObject]:
    """The objects of a blob read from a bundle; malformed content is InvalidDocumentError (exit 3)."""
    body = strict_json(raw, where, max_depth=limits.max_json_depth)
    if not isinstance(body, dict) or body.get("kind") != "FluxObjects" or not isinstance(body.get("objects"), list):
        raise InvalidDocumentError(f"{where}: not a mirror FluxObjects document")
    result = []
    for number, item in enumerate(body["objects"]):
        fault = _item_fault(item)
        if fault is not None:
            raise InvalidDocumentError(f"{where}: objects[{number}]: {fault}")
        obj = object_from_document(item.get("object"), item["file"], item.get("index", 0))
        if obj is not None:
            result.append(obj)
    return result
