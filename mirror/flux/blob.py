"""The Flux objects blob: the objects a fleet's collect read, carried in the bundle as one JSON document
(`FluxObjects`) for the importer to rewrite. Written on the connected side, parsed on the high side."""

from __future__ import annotations

import json
from collections.abc import Sequence

from mirror.errors import UsageError
from mirror.flux.objects import FluxObject, object_from_document

FLUX_OBJECTS_MEDIA_TYPE = "application/vnd.mirror.flux.objects.v1+json"
MAX_FLUX_OBJECTS_BYTES = 64 * 1024 * 1024


def objects_blob(objects: Sequence[FluxObject]) -> bytes:
    listed = sorted(objects, key=lambda o: (o.namespace or "", o.kind, o.name, o.file))
    body = {
        "apiVersion": "mirror/v1",
        "kind": "FluxObjects",
        "objects": [{"file": o.file, "index": o.index, "object": o.body} for o in listed],
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def parse_objects_blob(raw: bytes, where: str) -> list[FluxObject]:
    body = json.loads(raw)
    if not isinstance(body, dict) or body.get("kind") != "FluxObjects" or not isinstance(body.get("objects"), list):
        raise UsageError(f"{where}: not a mirror FluxObjects document")
    result = []
    for item in body["objects"]:
        obj = object_from_document(item.get("object"), str(item.get("file", where)), int(item.get("index", 0)))
        if obj is not None:
            result.append(obj)
    return result
