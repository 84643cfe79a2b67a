"""Facts a reviewer wants beyond the inventory, read from the bundle's small blobs only.

See docs/review.md.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from typing import Any

from mirror.bundle.inventory import ArtifactRecord, blob_path
from mirror.bundle.reader import BundleReader, opened, read_small
from mirror.errors import BundleFormatError, MirrorError
from mirror.helm.archive import read_chart
from mirror.helm.package import HELM_CHART_LAYER
from mirror.limits import DEFAULT_LIMITS
from mirror.oci.digest import sha256_digest
from mirror.oci.document import ManifestDocument, parse_manifest, strict_json
from mirror.review.fluxobjects import ObjectName, object_names, read_objects

_LIMITS = DEFAULT_LIMITS
# A chart is read for its facts under the review's smaller caps.
_CHART_LIMITS = replace(
    _LIMITS,
    max_chart_bytes=_LIMITS.review_max_chart_bytes,
    max_chart_content_bytes=_LIMITS.review_max_chart_content_bytes,
)


@dataclass(frozen=True)
class PlatformFacts:
    manifest: str  # digest of the platform's image manifest
    os: str
    architecture: str
    variant: str
    labels: dict[str, str]
    layers: int
    size: int  # manifest + config + layers, as the descriptors state them


@dataclass(frozen=True)
class ChartFacts:
    name: str
    version: str
    app_version: str
    description: str
    dependencies: tuple[str, ...]  # "name version (repository)"


@dataclass
class ArtifactFacts:
    platforms: list[PlatformFacts] = field(default_factory=list)
    chart: ChartFacts | None = None
    content_size: int | None = None  # every blob the artifact needs, as stated by its documents
    notes: list[str] = field(default_factory=list)
    objects: list[ObjectName] = field(default_factory=list)  # a Flux fleet's, the first review_max_flux_objects
    more_objects: int = 0  # a Flux fleet's objects beyond those listed


def _text(value: Any) -> str:
    return value[: _LIMITS.review_max_text_chars] if isinstance(value, str) else ""


def _document(reader: BundleReader, digest: str, declared: str | None) -> ManifestDocument:
    raw = read_small(reader, blob_path(digest), _LIMITS.review_max_document_bytes)
    return parse_manifest(raw, declared_type=declared, where=f"{reader.location}: {digest}", digest=digest)


def _platform(reader: BundleReader, document: ManifestDocument) -> PlatformFacts:
    config: dict[str, Any] = {}
    if document.config is not None:
        raw = read_small(reader, blob_path(document.config.digest), _LIMITS.review_max_document_bytes)
        if sha256_digest(raw) != document.config.digest:  # the facts shown must be the bytes that were signed
            raise BundleFormatError(f"{reader.location}: {blob_path(document.config.digest)} does not match its digest")
        body = strict_json(raw, "config")
        config = body if isinstance(body, dict) else {}
    inner = config.get("config") if isinstance(config.get("config"), dict) else {}
    labels_raw = inner.get("Labels") if isinstance(inner, dict) else None
    labels = {}
    if isinstance(labels_raw, dict):
        for key, value in list(labels_raw.items())[: _LIMITS.review_max_labels]:
            labels[_text(key)] = _text(value)
    size = document.size + sum(d.size for d in document.blobs)
    return PlatformFacts(
        document.digest,
        _text(config.get("os")),
        _text(config.get("architecture")),
        _text(config.get("variant")),
        labels,
        len(document.layers),
        size,
    )


def image_facts(reader: BundleReader, artifact: ArtifactRecord) -> ArtifactFacts:
    facts = ArtifactFacts()
    try:
        top = _document(reader, artifact.digest, artifact.media_type)
        if not top.is_index:
            facts.platforms.append(_platform(reader, top))
            facts.content_size = facts.platforms[0].size
            return facts
        total = top.size
        for child in top.manifests[: _LIMITS.review_max_platforms]:
            if not child.is_manifest:
                total += child.size  # an attached artifact; its blobs are not followed here
                continue
            document = _document(reader, child.digest, child.media_type)
            if document.is_index:
                facts.notes.append(f"{child.digest}: a nested index; not read")
                continue
            facts.platforms.append(_platform(reader, document))
            total += facts.platforms[-1].size
        if len(top.manifests) > _LIMITS.review_max_platforms:
            facts.notes.append(f"{len(top.manifests)} manifests; the first {_LIMITS.review_max_platforms} are shown")
        facts.content_size = total
    except MirrorError as exc:
        facts.notes.append(f"image config not read: {exc.message}")
    return facts


def chart_facts(reader: BundleReader, artifact: ArtifactRecord) -> ArtifactFacts:
    facts = ArtifactFacts()
    try:
        manifest = _document(reader, artifact.digest, artifact.media_type)
        layers = [d for d in manifest.layers if d.media_type == HELM_CHART_LAYER]
        if len(layers) != 1:
            facts.notes.append("no single Helm chart layer; Chart.yaml not read")
            return facts
        facts.content_size = manifest.size + sum(d.size for d in manifest.blobs)
        path = blob_path(layers[0].digest)
        size = reader.files().get(path)
        if size is None:
            facts.notes.append("the chart archive is not in this bundle (carried by its base)")
            return facts
        if size > _LIMITS.review_max_chart_bytes:
            facts.notes.append(f"the chart archive is {size} bytes; Chart.yaml not read")
            return facts
        with opened(reader, path) as handle:
            hasher = hashlib.sha256()
            while chunk := handle.read(1 << 20):
                hasher.update(chunk)
        if "sha256:" + hasher.hexdigest() != layers[0].digest:
            facts.notes.append("the chart archive does not match its digest; Chart.yaml not read")
            return facts
        with opened(reader, path) as handle:
            chart = read_chart(handle, where=f"{reader.location}: {path}", limits=_CHART_LIMITS)
        facts.chart = ChartFacts(
            _text(chart.name),
            _text(chart.version),
            _text(chart.app_version),
            _text(chart.metadata.get("description")),
            tuple(
                _text(f"{d.name} {d.version or '(any)'}" + (f" ({d.repository})" if d.repository else ""))
                for d in chart.dependencies
            ),
        )
    except MirrorError as exc:
        facts.notes.append(f"Chart.yaml not read: {exc.message}")
    return facts


def flux_facts(reader: BundleReader, artifact: ArtifactRecord) -> ArtifactFacts:
    facts = ArtifactFacts(content_size=artifact.size)
    try:
        names = object_names(read_objects(reader, artifact))
    except MirrorError as exc:
        facts.notes.append(f"Flux objects not read: {exc.message}")
        return facts
    cap = _LIMITS.review_max_flux_objects
    facts.objects, facts.more_objects = names[:cap], max(0, len(names) - cap)
    return facts


def artifact_facts(reader: BundleReader | None, artifact: ArtifactRecord) -> ArtifactFacts:
    if reader is None:
        return ArtifactFacts()
    if artifact.kind == "image":
        return image_facts(reader, artifact)
    if artifact.kind == "chart":
        return chart_facts(reader, artifact)
    if artifact.kind == "flux":
        return flux_facts(reader, artifact)
    return ArtifactFacts(content_size=content_size(reader, artifact) or artifact.size)


def content_size(reader: BundleReader | None, artifact: ArtifactRecord) -> int | None:
    """Every byte the artifact needs, as its documents state them; None when they cannot be read here."""
    if artifact.kind in ("git", "flux"):
        return artifact.size  # one blob, the record's own
    if artifact.kind == "file" and type(artifact.extra.get("fileSize")) is int:
        return artifact.size + 2 + int(artifact.extra["fileSize"])  # its manifest, the empty config, the file
    if reader is None:
        return None
    if artifact.kind == "image":
        return image_facts(reader, artifact).content_size
    if artifact.kind == "chart":
        try:
            manifest = _document(reader, artifact.digest, artifact.media_type)
        except MirrorError:
            return None
        return manifest.size + sum(d.size for d in manifest.blobs)
    return None
