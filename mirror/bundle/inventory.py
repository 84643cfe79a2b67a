"""The inventory: what a bundle carries (artifacts) and the exact files that carry it (paths, sha256, sizes).

It is written as `inventory.json` at the top of the bundle. It lists every other file of the bundle; a later
signature covers the inventory's own sha256, and so every file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mirror.errors import BundleFormatError
from mirror.oci.digest import is_digest
from mirror.oci.document import strict_json

INVENTORY_PATH = "inventory.json"
API_VERSION = "mirror/v1"
KIND = "Inventory"
_HEX = re.compile(r"[a-f0-9]{64}")
_BLOB_PATH = re.compile(r"blobs/sha256/([a-f0-9]{64})")
_LAYOUT_FILES = {"oci-layout", "index.json"}
_TOP_FIELDS = {
    *("apiVersion", "kind", "bundleId", "created", "tool", "artifacts", "files", "base", "expected", "volumes"),
    *("hosts", "mirrorSets"),
}


def is_layout_path(path: str) -> bool:
    return path in _LAYOUT_FILES or _BLOB_PATH.fullmatch(path) is not None


def blob_path(digest: str) -> str:
    return "blobs/sha256/" + digest.removeprefix("sha256:")


@dataclass(frozen=True)
class FileRecord:
    path: str
    sha256: str  # lowercase hex, no prefix
    size: int

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "sha256": self.sha256, "size": self.size}


@dataclass(frozen=True)
class ArtifactRecord:
    kind: str
    source: str
    digest: str
    media_type: str
    size: int
    extra: dict[str, Any] = field(default_factory=dict)  # kind-specific facts: platforms, sourceDigest

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "source": self.source,
            "digest": self.digest,
            "mediaType": self.media_type,
            "size": self.size,
            **self.extra,
        }


@dataclass(frozen=True)
class BaseRecord:
    """The bundle an incremental bundle builds on: its inventory's digest, bundleId and creation time."""

    inventory: str  # sha256:<hex of the base's inventory.json bytes>
    bundle_id: str
    created: str

    def to_json(self) -> dict[str, str]:
        return {"inventory": self.inventory, "bundleId": self.bundle_id, "created": self.created}

    def describe(self) -> str:
        return f"bundle {self.bundle_id} (inventory {self.inventory}, created {self.created})"


@dataclass(frozen=True)
class ExpectedBlob:
    """A blob the artifacts need that this bundle does not carry: the base chain carried it."""

    digest: str
    size: int

    def to_json(self) -> dict[str, object]:
        return {"digest": self.digest, "size": self.size}


@dataclass(frozen=True)
class VolumeRecord:
    """A data volume of a split bundle: its file name (`night.tar.001`), sha256 (lowercase hex) and size."""

    name: str
    sha256: str
    size: int

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "sha256": self.sha256, "size": self.size}


@dataclass(frozen=True)
class HostRecord:
    """A host the collector contacted (`host[:port]`), how it came to (see mirror.egress.Contact), and whether
    any request to it went over plain HTTP."""

    host: str
    how: str
    plain_http: bool = False

    def to_json(self) -> dict[str, object]:
        body: dict[str, object] = {"host": self.host, "how": self.how}
        if self.plain_http:  # written only when true, so that inventories of HTTPS hosts read as before
            body["plainHTTP"] = True
        return body


@dataclass(frozen=True)
class Inventory:
    bundle_id: str
    created: str
    tool: str
    artifacts: tuple[ArtifactRecord, ...]
    files: tuple[FileRecord, ...]
    base: BaseRecord | None = None
    expected: tuple[ExpectedBlob, ...] = ()
    volumes: tuple[VolumeRecord, ...] = ()  # empty unless the bundle is split; see mirror/bundle/volumes.py
    hosts: tuple[HostRecord, ...] = ()  # every host the collect contacted; absent from older inventories
    mirror_sets: tuple[str, ...] = ()  # metadata.name of each MirrorSet collected; absent from older inventories

    def to_bytes(self) -> bytes:
        body: dict[str, object] = {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "bundleId": self.bundle_id,
            "created": self.created,
            "tool": self.tool,
            "artifacts": [a.to_json() for a in self.artifacts],
            "files": [f.to_json() for f in sorted(self.files, key=lambda f: f.path)],
        }
        if self.base is not None:
            body["base"] = self.base.to_json()
            body["expected"] = [e.to_json() for e in sorted(self.expected, key=lambda e: e.digest)]
        if self.volumes:
            body["volumes"] = [v.to_json() for v in self.volumes]
        if self.hosts:
            body["hosts"] = [h.to_json() for h in self.hosts]
        if self.mirror_sets:
            body["mirrorSets"] = list(self.mirror_sets)
        # Compact: a nothing-changed night's inventory is mostly its artifacts, one line of JSON each would be
        # a quarter of it in indentation (docs/bundle-format.md).
        return json.dumps(body, sort_keys=True, separators=(",", ":")).encode() + b"\n"

    @property
    def total_size(self) -> int:
        return sum(f.size for f in self.files)

    def file(self, path: str) -> FileRecord | None:
        return next((f for f in self.files if f.path == path), None)

    @property
    def expected_sizes(self) -> dict[str, int]:
        """What an incremental bundle leaves to its base chain, digest → size: the blobs `expected` lists, and
        every artifact whose own blob (manifest, git bundle) is not among the files, which `expected` need not
        list (docs/bundle-format.md, "Incremental bundles"). Empty for a full bundle."""
        if self.base is None:
            return {}
        return {**_left_to_base(self.artifacts, self.files), **{e.digest: e.size for e in self.expected}}


def _left_to_base(artifacts: tuple[ArtifactRecord, ...], files: tuple[FileRecord, ...]) -> dict[str, int]:
    carried = {f.path for f in files}
    return {a.digest: a.size for a in artifacts if blob_path(a.digest) not in carried}


def _fail(problem: str) -> BundleFormatError:
    return BundleFormatError(f"{INVENTORY_PATH}: {problem}", hint="the bundle may have been modified; do not import it")


def _int(value: Any, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise _fail(f"{where}: expected a non-negative integer")
    return value


def _str(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise _fail(f"{where}: expected a non-empty string")
    return value


# Kind-specific artifact fields that mirror writes and reads back (review, import, incremental collect), by
# name whatever the kind, since readers look fields up by name: each value must have the type written.
_OBJECT_ID = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


def _is_text(value: Any) -> bool:
    return isinstance(value, str)


def _is_texts(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _is_strings(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(k, str) and isinstance(x, str) for k, x in value.items())


def _is_object_id(value: Any) -> bool:
    return isinstance(value, str) and _OBJECT_ID.fullmatch(value) is not None


def _is_refs(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(k, str) and _is_object_id(v) for k, v in value.items())


_EXTRA_FIELDS: dict[str, tuple[str, Callable[[Any], bool]]] = {
    # images
    "platforms": ("a list of strings", _is_texts),
    "sourceDigest": ("a sha256 digest", is_digest),
    "foundBy": ("a list of strings", _is_texts),
    "via": ("a string", _is_text),
    # charts
    "chart": ("a string", _is_text),
    "version": ("a string", _is_text),
    "repo": ("a string", _is_text),
    "archiveSha256": ("64 lowercase hex digits", lambda v: isinstance(v, str) and _HEX.fullmatch(v) is not None),
    "requiredBy": ("a string", _is_text),
    # git sources
    "name": ("a string", _is_text),
    "ref": (
        "a mapping of strings to strings",
        lambda v: isinstance(v, dict) and all(isinstance(k, str) and isinstance(x, str) for k, x in v.items()),
    ),
    "refName": ("a string or null", lambda v: v is None or isinstance(v, str)),
    "commit": ("a full commit id", _is_object_id),
    "heads": ("a mapping of ref names to full object ids", _is_refs),
    "unchanged": ("a mapping of ref names to full object ids", _is_refs),
    "prerequisites": ("a list of full commit ids", lambda v: isinstance(v, list) and all(map(_is_object_id, v))),
    # Flux fleets
    "path": ("a string", _is_text),
    "git": ("a string or null", lambda v: v is None or isinstance(v, str)),
    "objects": ("a non-negative integer", lambda v: type(v) is int and v >= 0),
    # attached manifests (mirror/supplychain/attached.py)
    "subject": ("a sha256 digest", is_digest),
    "artifactType": ("a string", _is_text),
    "found": ("a string", _is_text),
    "image": ("a string", _is_text),
    "tag": ("a string", _is_text),
    # files (spec.files): the file's own sha256 and size, beside the manifest that carries it
    "fileSha256": ("64 lowercase hex digits", lambda v: isinstance(v, str) and _HEX.fullmatch(v) is not None),
    "fileSize": ("a non-negative integer", lambda v: type(v) is int and v >= 0),
    # upstream signatures the collector verified (mirror/supplychain): [{"key": HEX}] or [{"issuer", "identity"}]
    "signers": ("a list of objects of strings", lambda v: isinstance(v, list) and all(map(_is_strings, v))),
}


def _extra(item: dict[str, Any], where: str) -> dict[str, Any]:
    """The artifact's kind-specific fields, each of the type mirror writes; fields unknown here are kept as
    they are (inspect shows them in its JSON only)."""
    extra = {k: v for k, v in item.items() if k not in {"kind", "source", "digest", "mediaType", "size"}}
    for name, value in extra.items():
        expected = _EXTRA_FIELDS.get(name)
        if expected is not None and not expected[1](value):
            raise _fail(f"{where}.{name}: expected {expected[0]}")
    return extra


def parse_inventory(raw: bytes) -> Inventory:
    """Parse and validate inventory bytes; every path must be a layout path, named by its own digest."""
    body = strict_json(raw, INVENTORY_PATH)
    if not isinstance(body, dict):
        raise _fail("expected a JSON object")
    if body.get("apiVersion") != API_VERSION or body.get("kind") != KIND:
        raise _fail(f"expected apiVersion {API_VERSION!r} and kind {KIND!r}")
    unknown = sorted(set(body) - _TOP_FIELDS)
    if unknown:
        raise _fail(f"unknown field {unknown[0]!r}")
    for name in ("files", "artifacts"):
        if not isinstance(body.get(name), list):
            raise _fail(f"{name}: expected a list")
    files: list[FileRecord] = []
    seen: set[str] = set()
    for i, item in enumerate(body["files"]):
        where = f"files[{i}]"
        if not isinstance(item, dict) or set(item) != {"path", "sha256", "size"}:
            raise _fail(f"{where}: expected exactly path, sha256 and size")
        path = _str(item["path"], f"{where}.path")
        sha = _str(item["sha256"], f"{where}.sha256")
        if not is_layout_path(path):
            raise _fail(f"{where}.path: {path!r} is not a file of an OCI layout")
        if not _HEX.fullmatch(sha):
            raise _fail(f"{where}.sha256: not 64 lowercase hex digits")
        match = _BLOB_PATH.fullmatch(path)
        if match and match.group(1) != sha:
            raise _fail(f"{where}: blob {path} is listed with another digest")
        if path in seen:
            raise _fail(f"{where}.path: {path} is listed twice")
        seen.add(path)
        files.append(FileRecord(path, sha, _int(item["size"], f"{where}.size")))
    artifacts = []
    for i, item in enumerate(body["artifacts"]):
        where = f"artifacts[{i}]"
        if not isinstance(item, dict):
            raise _fail(f"{where}: expected an object")
        digest = item.get("digest")
        if not is_digest(digest):
            raise _fail(f"{where}.digest: not a sha256 digest")
        extra = _extra(item, where)
        artifacts.append(
            ArtifactRecord(
                kind=_str(item.get("kind"), f"{where}.kind"),
                source=_str(item.get("source"), f"{where}.source"),
                digest=digest,
                media_type=_str(item.get("mediaType"), f"{where}.mediaType"),
                size=_int(item.get("size"), f"{where}.size"),
                extra=extra,
            )
        )
    base, expected = _parse_base(body, seen)
    inventory = Inventory(
        bundle_id=_str(body.get("bundleId"), "bundleId"),
        created=_str(body.get("created"), "created"),
        tool=_str(body.get("tool"), "tool"),
        artifacts=tuple(artifacts),
        files=tuple(files),
        base=base,
        expected=expected,
        volumes=_volumes(body.get("volumes", [])),
        hosts=_hosts(body.get("hosts", [])),
        mirror_sets=_mirror_sets(body.get("mirrorSets", [])),
    )
    _check_left_to_base(inventory)
    return inventory


def _parse_base(body: dict[str, Any], paths: set[str]) -> tuple[BaseRecord | None, tuple[ExpectedBlob, ...]]:
    """`base` and `expected` come together: an incremental bundle names its base and what it leaves to it."""
    if "base" not in body and "expected" not in body:
        return None, ()
    if "base" not in body or "expected" not in body:
        raise _fail("base and expected: an incremental bundle lists both, a full bundle neither")
    raw = body["base"]
    if not isinstance(raw, dict) or set(raw) != {"inventory", "bundleId", "created"}:
        raise _fail("base: expected exactly inventory, bundleId and created")
    if not is_digest(raw["inventory"]):
        raise _fail("base.inventory: not a sha256 digest")
    base = BaseRecord(raw["inventory"], _str(raw["bundleId"], "base.bundleId"), _str(raw["created"], "base.created"))
    if not isinstance(body["expected"], list):
        raise _fail("expected: expected a list")
    expected: list[ExpectedBlob] = []
    for i, item in enumerate(body["expected"]):
        where = f"expected[{i}]"
        if not isinstance(item, dict) or set(item) != {"digest", "size"}:
            raise _fail(f"{where}: expected exactly digest and size")
        if not is_digest(item["digest"]):
            raise _fail(f"{where}.digest: not a sha256 digest")
        if expected and item["digest"] <= expected[-1].digest:
            raise _fail(f"{where}.digest: the list is not sorted by digest, or lists {item['digest']} twice")
        if blob_path(item["digest"]) in paths:
            raise _fail(f"{where}: {item['digest']} is carried in files and expected too")
        expected.append(ExpectedBlob(item["digest"], _int(item["size"], f"{where}.size")))
    return base, tuple(expected)


def _check_left_to_base(inventory: Inventory) -> None:
    """An artifact left to the base is expected with its record's size: two sizes for one digest are refused."""
    if inventory.base is None:
        return
    sizes = {e.digest: e.size for e in inventory.expected}
    carried = {f.path for f in inventory.files}
    for i, artifact in enumerate(inventory.artifacts):
        if blob_path(artifact.digest) in carried:
            continue
        size = sizes.setdefault(artifact.digest, artifact.size)
        if size != artifact.size:
            raise _fail(f"artifacts[{i}]: {artifact.digest} is left to the base with another size than expected")


_VOLUME_NAME = re.compile(r"([A-Za-z0-9_+=-][A-Za-z0-9._+=-]*)\.([0-9]{3,})")


def _volumes(value: Any) -> tuple[VolumeRecord, ...]:
    """Data volumes are plain file names of one stem, numbered from .001 in order, so position is checkable."""
    if not isinstance(value, list):
        raise _fail("volumes: expected a list")
    volumes = []
    stems = set()
    for i, item in enumerate(value):
        where = f"volumes[{i}]"
        if not isinstance(item, dict) or set(item) != {"name", "sha256", "size"}:
            raise _fail(f"{where}: expected exactly name, sha256 and size")
        name = _str(item["name"], f"{where}.name")
        match = _VOLUME_NAME.fullmatch(name)
        if match is None or int(match.group(2)) != i + 1:
            raise _fail(f"{where}.name: {name!r} is not a file name ending in .{i + 1:03d}")
        stems.add(match.group(1))
        sha = _str(item["sha256"], f"{where}.sha256")
        if not _HEX.fullmatch(sha):
            raise _fail(f"{where}.sha256: not 64 lowercase hex digits")
        volumes.append(VolumeRecord(name, sha, _int(item["size"], f"{where}.size")))
    if len(stems) > 1:
        raise _fail("volumes: the names do not share one stem")
    return tuple(volumes)


def _hosts(value: Any) -> tuple[HostRecord, ...]:
    if not isinstance(value, list):
        raise _fail("hosts: expected a list")
    result = []
    for i, item in enumerate(value):
        where = f"hosts[{i}]"
        if not isinstance(item, dict) or not {"host", "how"} <= set(item) <= {"host", "how", "plainHTTP"}:
            raise _fail(f"{where}: expected host and how, and plainHTTP only")
        plain = item.get("plainHTTP", False)
        if not isinstance(plain, bool):
            raise _fail(f"{where}.plainHTTP: expected true or false")
        result.append(HostRecord(_str(item["host"], f"{where}.host"), _str(item["how"], f"{where}.how"), plain))
    return tuple(result)


def _mirror_sets(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise _fail("mirrorSets: expected a list of MirrorSet names")
    return tuple(_str(name, f"mirrorSets[{i}]") for i, name in enumerate(value))
