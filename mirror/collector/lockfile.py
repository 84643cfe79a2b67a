"""Reading the lock `collect --lock FILE` is given: untrusted JSON (whoever handed it over), bounded, every field
checked, a malformed lock refused (exit 2) naming the artifact and field. See docs/collector.md ("Collecting a
reviewed lock").

Each kind has one reader (`_READERS`): a kind added later (files) is pinned by adding a reader returning a
`Locked` record, and the few lines in mirror.collector.pinning that apply it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mirror.errors import InvalidDocumentError, ReferenceError_, UsageError
from mirror.fsutil import require_regular_file
from mirror.limits import DEFAULT_LIMITS, Limits
from mirror.manifest.tagselect import TagSelector, parse_tag_selector
from mirror.oci.document import strict_json
from mirror.oci.reference import ImageReference, parse_reference

__all__ = ["Lock", "Locked", "read_lock"]

API_VERSION = "mirror/v1"
KIND = "Lock"
_DIGEST_HEX = frozenset("0123456789abcdef")


class LockError(UsageError):
    """A lock that cannot be used: not readable, malformed, or of another shape than resolve --json writes."""


@dataclass(frozen=True)
class Locked:
    """One artifact of the lock: its kind, its source as resolve printed it, the digest, and kind-specific fields."""

    kind: str
    source: str
    digest: str
    where: str  # `artifacts[3]`, for messages
    via: str = "listed"
    reference: ImageReference | None = None  # image: its repository and tag (or digest)
    source_digest: str | None = None  # image: the upstream digest, when a platform filter narrowed it
    selected_by: tuple[TagSelector, ...] = ()  # image: the selectors of its repository that chose its tag
    fields: Mapping[str, str] = field(default_factory=dict)  # chart: repo, chart, version; git: name, commit


@dataclass(frozen=True)
class Lock:
    path: str
    artifacts: tuple[Locked, ...]

    def of_kind(self, kind: str) -> list[Locked]:
        return [a for a in self.artifacts if a.kind == kind]


def _fail(path: Path, where: str, problem: str) -> LockError:
    return LockError(
        f"{path}: {where}: {problem}" if where else f"{path}: {problem}",
        hint="give the lock `mirror resolve --json` printed for the same MirrorSets",
    )


def _string(entry: Mapping[str, Any], key: str, path: Path, where: str, *, optional: bool = False) -> str | None:
    value = entry.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value:
        raise _fail(path, f"{where}.{key}", f"expected a non-empty string, got {type(value).__name__}")
    return value


def _digest(entry: Mapping[str, Any], key: str, path: Path, where: str, *, optional: bool = False) -> str | None:
    value = _string(entry, key, path, where, optional=optional)
    if value is None:
        return None
    hex_part = value.removeprefix("sha256:")
    if not value.startswith("sha256:") or len(hex_part) != 64 or not set(hex_part) <= _DIGEST_HEX:
        raise _fail(path, f"{where}.{key}", "expected sha256:<64 lowercase hex>")
    return value


def _via(entry: Mapping[str, Any], path: Path, where: str) -> str:
    via = entry.get("via", "listed")
    if via not in ("listed", "chart", "flux", "dependency"):
        raise _fail(path, f"{where}.via", "expected listed, chart, flux or dependency")
    return str(via)


def _image(entry: Mapping[str, Any], path: Path, where: str) -> Locked:
    source = _string(entry, "source", path, where)
    assert source is not None
    try:
        reference = parse_reference(source)
    except ReferenceError_ as exc:
        raise _fail(path, f"{where}.source", exc.message) from exc
    digest = _digest(entry, "digest", path, where)
    assert digest is not None
    selected = entry.get("selectedBy", [])
    if not isinstance(selected, list):
        raise _fail(path, f"{where}.selectedBy", "expected a list of tag selectors")
    if selected and (reference.tag is None or reference.digest is not None):
        raise _fail(path, f"{where}.source", "a tag a selector chose is named by its tag alone")
    selected_by = []
    for i, selector in enumerate(selected):
        try:
            selected_by.append(parse_tag_selector(selector, f"{where}.selectedBy[{i}]"))
        except UsageError as exc:
            raise _fail(path, "", exc.message) from exc
    return Locked(
        "image",
        source,
        digest,
        where,
        _via(entry, path, where),
        reference=reference,
        source_digest=_digest(entry, "sourceDigest", path, where, optional=True),
        selected_by=tuple(selected_by),
    )


def _chart(entry: Mapping[str, Any], path: Path, where: str) -> Locked:
    fields = {key: _string(entry, key, path, where) for key in ("repo", "chart", "version")}
    source, digest = _string(entry, "source", path, where), _digest(entry, "digest", path, where)
    assert source is not None and digest is not None
    return Locked(
        "chart", source, digest, where, _via(entry, path, where), fields={k: str(v) for k, v in fields.items()}
    )


def _git(entry: Mapping[str, Any], path: Path, where: str) -> Locked:
    source, digest = _string(entry, "source", path, where), _digest(entry, "digest", path, where)
    name, commit = _string(entry, "name", path, where), _string(entry, "commit", path, where)
    assert source is not None and digest is not None and name is not None and commit is not None
    if len(commit) != 40 or not set(commit) <= _DIGEST_HEX:
        raise _fail(path, f"{where}.commit", "expected a full 40-character lowercase commit id")
    return Locked("git", source, digest, where, fields={"name": name, "commit": commit})


def _flux(entry: Mapping[str, Any], path: Path, where: str) -> Locked:
    """A Flux fleet is read from its Git source at the locked commit: nothing of its own to pin."""
    source, digest = _string(entry, "source", path, where), _digest(entry, "digest", path, where)
    assert source is not None and digest is not None
    return Locked("flux", source, digest, where)


def _file(entry: Mapping[str, Any], path: Path, where: str) -> Locked:
    """A file (spec.files) pinned by the sha256 of its bytes, whatever its MirrorSet entry says."""
    source, digest = _string(entry, "source", path, where), _digest(entry, "digest", path, where)
    name = _string(entry, "name", path, where)
    assert source is not None and digest is not None and name is not None
    return Locked("file", source, digest, where, fields={"name": name})


_READERS: dict[str, Callable[[Mapping[str, Any], Path, str], Locked]] = {
    "image": _image,
    "chart": _chart,
    "git": _git,
    "flux": _flux,
    "file": _file,
}


def read_lock(path: Path, limits: Limits = DEFAULT_LIMITS) -> Lock:
    """The lock at `path`, read whole after a size check; every artifact checked by its kind's reader."""
    require_regular_file(path, "lock")
    if os.stat(path).st_size > limits.max_lock_bytes:
        raise _fail(path, "", f"larger than {limits.max_lock_bytes} bytes (limit max_lock_bytes)")
    with path.open("rb") as stream:
        raw = stream.read(limits.max_lock_bytes + 1)
    if len(raw) > limits.max_lock_bytes:
        raise _fail(path, "", f"larger than {limits.max_lock_bytes} bytes (limit max_lock_bytes)")
    try:
        document = strict_json(raw, str(path), max_depth=limits.max_json_depth)
    except InvalidDocumentError as exc:
        raise LockError(exc.message, hint="give the lock `mirror resolve --json` printed") from exc
    if not isinstance(document, dict) or document.get("apiVersion") != API_VERSION or document.get("kind") != KIND:
        raise _fail(path, "", f"expected a {API_VERSION} {KIND} document (what mirror resolve --json prints)")
    artifacts = document.get("artifacts")
    if not isinstance(artifacts, list):
        raise _fail(path, "artifacts", "expected a list")
    if len(artifacts) > limits.max_lock_artifacts:
        raise _fail(path, "artifacts", f"more than {limits.max_lock_artifacts} (limit max_lock_artifacts)")
    locked = []
    for i, entry in enumerate(artifacts):
        where = f"artifacts[{i}]"
        if not isinstance(entry, dict):
            raise _fail(path, where, "expected a mapping")
        kind = entry.get("kind")
        reader = _READERS.get(kind) if isinstance(kind, str) else None  # a list or mapping cannot be a key
        if reader is None:
            raise _fail(path, f"{where}.kind", f"expected one of {', '.join(sorted(_READERS))}")
        locked.append(reader(entry, path, where))
    return Lock(str(path), tuple(locked))
