"""Manifests and indexes parsed strictly from their exact bytes.

The bytes are never re-serialised (that would change the digest); this module only reads them, refusing
documents that two readers could interpret differently (CVE-2021-41190): duplicate keys, both `manifests` and
`layers`, or a `mediaType` field that disagrees with the type the document was served or referenced as.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Any

from mirror.errors import InvalidDocumentError
from mirror.limits import DEFAULT_LIMITS
from mirror.oci import mediatypes as mt
from mirror.oci.digest import check_digest, sha256_digest
from mirror.oci.platform import Platform, platform_of_descriptor


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


class JsonTooDeepError(ValueError):
    """JSON nested deeper than its limit: refused before json.loads, whose recursion it would exhaust."""


_QUOTED = re.compile(rb'"[^"]*"')
_NOT_STRUCTURAL = bytes(b for b in range(256) if b not in b'[]{}"')
_NESTING_STEP = [0] * 256
_NESTING_STEP[ord("[")] = _NESTING_STEP[ord("{")] = 1
_NESTING_STEP[ord("]")] = _NESTING_STEP[ord("}")] = -1


def json_nesting_depth(raw: bytes) -> int:
    """How deep arrays and objects nest in `raw`, brackets inside strings left out.

    Linear and at C speed (replace, translate, regex, accumulate): a 100,000-deep `[[[[` costs milliseconds.
    Escapes go first (escaped backslashes, then escaped quotes, left to right as JSON reads them), then every
    byte but brackets and quotes. What is left of a string is a pair of quotes around the brackets it held:
    adjacent quotes go (an empty string, or two strings next to each other: quotes still alternate), then
    the few strings that held brackets.
    """
    if b"\\" in raw:
        raw = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    structural = raw.translate(None, _NOT_STRUCTURAL).replace(b'""', b"")
    brackets = _QUOTED.sub(b"", structural)
    return max(accumulate(map(_NESTING_STEP.__getitem__, brackets)), default=0)


def _check_depth(raw: bytes, max_depth: int) -> None:
    if raw.count(b"[") + raw.count(b"{") <= max_depth:
        return  # too few brackets to nest deeper: nothing to scan
    depth = json_nesting_depth(raw)
    if depth > max_depth:
        raise JsonTooDeepError(f"nested {depth} levels deep, more than the {max_depth} allowed")


def _loads(text: str | bytes, **options: Any) -> Any:
    try:
        return json.loads(text, **options)
    except RecursionError as exc:  # not reached within the depth limit; a backstop all the same
        raise JsonTooDeepError("nested too deeply") from exc


def bounded_json(raw: bytes | str, *, max_depth: int = DEFAULT_LIMITS.max_json_depth, **options: Any) -> Any:
    """json.loads for bytes from elsewhere (bundles, registries, token services, state files): nesting deeper
    than `max_depth` raises JsonTooDeepError, a ValueError as json.loads' own errors are."""
    _check_depth(raw.encode() if isinstance(raw, str) else raw, max_depth)
    return _loads(raw, **options)


def strict_json(raw: bytes, where: str, *, max_depth: int = DEFAULT_LIMITS.max_json_depth) -> Any:
    """Parse JSON, refusing duplicate keys, which different parsers resolve differently, and deep nesting."""
    try:
        # UTF-8 only, as Go's readers: json.loads would also guess UTF-16/32 and skip a BOM.
        text = raw.decode("utf-8")
        if text.startswith("\ufeff"):
            raise ValueError("byte order mark")
        _check_depth(raw, max_depth)
        return _loads(text, object_pairs_hook=_no_duplicate_keys)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidDocumentError(f"{where}: not valid JSON: {exc}") from exc


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    platform: Platform | None = None
    annotations: Mapping[str, str] = field(default_factory=dict)
    artifact_type: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def is_manifest(self) -> bool:
        return self.media_type in mt.ALL_MANIFESTS


def parse_descriptor(value: Any, where: str) -> Descriptor:
    if not isinstance(value, dict):
        raise InvalidDocumentError(f"{where}: a descriptor must be an object")
    media_type = value.get("mediaType")
    if not isinstance(media_type, str) or not media_type:
        raise InvalidDocumentError(f"{where}.mediaType: missing or not a string")
    digest = check_digest(value.get("digest"), f"{where}.digest")
    size = value.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise InvalidDocumentError(f"{where}.size: {size!r} is not a non-negative integer")
    if value.get("urls"):
        raise InvalidDocumentError(
            f"{where}: descriptor {digest} carries external urls (a foreign layer)",
            hint="foreign layers are fetched from hosts outside the registry and cannot be carried or verified",
        )
    annotations = value.get("annotations") or {}
    if not isinstance(annotations, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in annotations.items()
    ):
        raise InvalidDocumentError(f"{where}.annotations: must map strings to strings")
    artifact_type = value.get("artifactType")
    if artifact_type is not None and not isinstance(artifact_type, str):
        raise InvalidDocumentError(f"{where}.artifactType: must be a string")
    return Descriptor(
        media_type=media_type,
        digest=digest,
        size=size,
        platform=platform_of_descriptor(value.get("platform")),
        annotations=annotations,
        artifact_type=artifact_type,
        raw=value,
    )


@dataclass(frozen=True)
class ManifestDocument:
    media_type: str
    digest: str
    raw: bytes = field(repr=False)
    config: Descriptor | None = None
    layers: tuple[Descriptor, ...] = ()
    manifests: tuple[Descriptor, ...] = ()
    body: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def size(self) -> int:
        return len(self.raw)

    @property
    def is_index(self) -> bool:
        return self.media_type in mt.INDEXES

    @property
    def blobs(self) -> tuple[Descriptor, ...]:
        """The non-manifest content this document points at: config then layers."""
        return ((self.config,) if self.config else ()) + self.layers


def _infer_media_type(body: dict[str, Any], declared: str | None, where: str) -> str:
    field_type = body.get("mediaType")
    if field_type is not None and not isinstance(field_type, str):
        raise InvalidDocumentError(f"{where}.mediaType: must be a string")
    if field_type and declared and field_type != declared:
        raise InvalidDocumentError(
            f"{where}: mediaType field {field_type!r} differs from the declared type {declared!r}"
        )
    media_type = field_type or declared
    if media_type is None:
        raise InvalidDocumentError(f"{where}: no mediaType in the document or its descriptor")
    if media_type in (mt.DOCKER_SCHEMA1, mt.DOCKER_SCHEMA1_SIGNED):
        raise InvalidDocumentError(
            f"{where}: Docker schema 1 manifests are not supported",
            hint="schema 1 is deprecated and unverifiable; ask the publisher for a schema 2 or OCI image",
        )
    if media_type not in mt.ALL_MANIFESTS:
        raise InvalidDocumentError(f"{where}: unsupported manifest media type {media_type!r}")
    if media_type in (mt.DOCKER_MANIFEST, mt.DOCKER_LIST) and not field_type:
        raise InvalidDocumentError(f"{where}: a Docker schema 2 document must carry its mediaType field")
    return media_type


def parse_manifest(raw: bytes, *, declared_type: str | None, where: str, digest: str | None = None) -> ManifestDocument:
    """Parse manifest or index bytes; `declared_type` is the Content-Type or the referring descriptor's type."""
    body = strict_json(raw, where)
    if not isinstance(body, dict):
        raise InvalidDocumentError(f"{where}: a manifest must be a JSON object")
    if type(body.get("schemaVersion")) is not int or body.get("schemaVersion") != 2:
        raise InvalidDocumentError(f"{where}.schemaVersion: expected 2, got {body.get('schemaVersion')!r}")
    has_manifests = "manifests" in body
    has_image_fields = "layers" in body or "config" in body
    if has_manifests and has_image_fields:
        raise InvalidDocumentError(f"{where}: ambiguous document with both 'manifests' and 'layers'/'config'")
    media_type = _infer_media_type(body, declared_type, where)
    digest = digest or sha256_digest(raw)

    if media_type in mt.INDEXES:
        if has_image_fields:
            raise InvalidDocumentError(f"{where}: an index must not carry 'layers' or 'config'")
        entries = body.get("manifests")
        if not isinstance(entries, list):
            raise InvalidDocumentError(f"{where}.manifests: must be a list")
        manifests = tuple(parse_descriptor(d, f"{where}.manifests[{i}]") for i, d in enumerate(entries))
        return ManifestDocument(media_type, digest, raw, manifests=manifests, body=body)

    if has_manifests:
        raise InvalidDocumentError(f"{where}: an image manifest must not carry 'manifests'")
    config = parse_descriptor(body.get("config"), f"{where}.config")
    layers_value = body.get("layers")
    if not isinstance(layers_value, list):
        raise InvalidDocumentError(f"{where}.layers: must be a list")
    layers = tuple(parse_descriptor(d, f"{where}.layers[{i}]") for i, d in enumerate(layers_value))
    return ManifestDocument(media_type, digest, raw, config=config, layers=layers, body=body)
