"""Container images: a tag or digest resolved to the exact manifest bytes that will be carried.

With a platform filter, an index is narrowed to the matching entries. The narrowed index is a new document
with a new digest (every child keeps its digest); the upstream digest is kept as `source_digest`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property

from mirror.bundle.inventory import ArtifactRecord
from mirror.errors import RegistryHTTPError, SourceNotFoundError, UsageError
from mirror.manifest.model import ImageSource
from mirror.manifest.tagselect import TagSelector
from mirror.oci.document import ManifestDocument, parse_manifest
from mirror.oci.platform import Platform
from mirror.oci.reference import ImageReference
from mirror.registry.pool import ClientPool

_NOT_FOUND_CODES = {"MANIFEST_UNKNOWN", "NAME_UNKNOWN", "NOT_FOUND"}


@dataclass(frozen=True)
class ResolvedImage:
    source: ImageReference
    document: ManifestDocument = field(repr=False)  # what lands: the upstream document, or the narrowed index
    source_digest: str
    platforms: tuple[str, ...]  # platforms an index carries; empty for a single manifest
    origin: str
    filtered: bool = False
    found_by: tuple[str, ...] = ()
    via: str = "listed"
    upstream: ManifestDocument | None = field(default=None, repr=False)  # the upstream index, when narrowed
    selected_by: tuple[TagSelector, ...] = ()  # the tag selectors that chose this tag

    @property
    def digest(self) -> str:
        return self.document.digest

    @property
    def media_type(self) -> str:
        return self.document.media_type

    @property
    def size(self) -> int:
        return self.document.size

    @cached_property
    def artifact(self) -> ArtifactRecord:
        """The image as the inventory lists it; built once (a collect asks for it at every step)."""
        entry = self.lock_entry()
        # selectedBy is the lock's (resolve --json): the bundle's format stays as it was.
        kept = {
            k: v for k, v in entry.items() if k not in {"kind", "source", "digest", "mediaType", "size", "selectedBy"}
        }
        return ArtifactRecord("image", str(self.source), self.digest, self.media_type, self.size, kept)

    def lock_entry(self) -> dict[str, object]:
        entry: dict[str, object] = {
            "kind": "image",
            "source": str(self.source),
            "digest": self.digest,
            "mediaType": self.media_type,
            "size": self.size,
        }
        if self.platforms:
            entry["platforms"] = list(self.platforms)
        if self.filtered:
            entry["sourceDigest"] = self.source_digest
        if self.found_by:
            entry["foundBy"] = list(self.found_by)
        entry["via"] = self.via
        if self.selected_by:
            entry["selectedBy"] = [selector.to_json() for selector in self.selected_by]
        return entry


def _narrow_index(document: ManifestDocument, wanted: tuple[Platform, ...], where: str) -> ManifestDocument:
    kept = [d for d in document.manifests if d.platform and any(w.matches(d.platform) for w in wanted)]
    if not kept:
        offered = sorted({str(d.platform) for d in document.manifests if d.platform})
        raise UsageError(
            f"{where}: no manifest for {', '.join(map(str, wanted))}",
            hint=f"the image offers {', '.join(offered) or 'no platforms'}",
        )
    if len(kept) == len(document.manifests):
        return document
    body = dict(document.body)
    body["manifests"] = [dict(d.raw) for d in kept]
    raw = json.dumps(body, indent=2).encode() + b"\n"
    return parse_manifest(raw, declared_type=document.media_type, where=f"{where} (narrowed)")


def resolve_image(pool: ClientPool, image: ImageSource) -> ResolvedImage:
    reference = image.reference
    client = pool.for_host(reference.registry)
    try:
        # collect --lock: by the locked digest, landing under the tag as ever.
        wanted = reference.digest or image.locked_digest or reference.tag or "latest"
        fetched = client.get_manifest(reference.repository, wanted)
    except RegistryHTTPError as exc:
        if exc.status == 404 or _NOT_FOUND_CODES & set(exc.codes):
            locked = f" at the locked digest {image.locked_digest}" if image.locked_digest else ""
            answer = f"{exc.status} {', '.join(exc.codes)}".rstrip()
            raise SourceNotFoundError(
                f"{image.origin}: {reference}{locked} was not found upstream ({answer})",
                hint="check the repository path and tag; private images also answer 'not found' without credentials",
            ) from exc
        raise
    where = f"{image.origin}: {reference}"
    document = parse_manifest(fetched.raw, declared_type=fetched.media_type, where=where, digest=fetched.digest)
    if not document.is_index:
        return ResolvedImage(
            reference,
            document,
            document.digest,
            (),
            image.origin,
            found_by=image.found_by,
            via=image.via,
            selected_by=image.selected_by,
        )
    landed = document
    if image.platforms is not None:
        landed = _narrow_index(document, image.platforms, where)
    platforms = tuple(str(d.platform) for d in landed.manifests if d.platform)
    filtered = landed is not document
    return ResolvedImage(
        reference,
        landed,
        document.digest,
        platforms,
        image.origin,
        filtered,
        image.found_by,
        image.via,
        upstream=document if filtered else None,
        selected_by=image.selected_by,
    )
