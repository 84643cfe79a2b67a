"""The connected side: resolve a MirrorSet, download everything once, and write one bundle atomically.

A bundle is built in a staging directory beside OUT and renamed into place at the end, so a failed or
interrupted collect leaves nothing at OUT. For a `.tar`, blobs move from the staging directory into the tar
one by one, so the disk never holds two copies.
"""

from __future__ import annotations

import datetime as dt
import shutil
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mirror import __version__
from mirror.bundle.inventory import INVENTORY_PATH, ArtifactRecord, Inventory
from mirror.bundle.layout import LayoutWriter
from mirror.bundle.signatures import add_envelope
from mirror.bundle.tarball import write_tar
from mirror.errors import InvalidDocumentError, UsageError
from mirror.limits import DEFAULT_LIMITS, Limits
from mirror.manifest import MirrorSet, load_mirrorsets
from mirror.oci.document import ManifestDocument, parse_manifest
from mirror.oci.reference import ImageReference
from mirror.parallel import run_parallel
from mirror.progress import Progress, human_size
from mirror.registry.endpoint import RegistrySettings
from mirror.registry.pool import ClientPool
from mirror.resolvers.images import ResolvedImage, resolve_image
from mirror.trust.keys import Signer
from mirror.trust.sign import sign_collection
from mirror.trust.statement import format_time

REF_NAME = "org.opencontainers.image.ref.name"


@dataclass(frozen=True)
class CollectorSigning:
    """How collect signs: the collector's key, its name in the predicate, the sequence and the validity."""

    signer: Signer
    collector: str
    sequence: int
    valid_for: dt.timedelta


@dataclass(frozen=True)
class CollectResult:
    out: Path
    inventory: Inventory
    images: list[ResolvedImage]
    downloaded_bytes: int
    signing: CollectorSigning | None = None

    def summary(self) -> dict[str, object]:
        signed = None
        if self.signing:
            signed = {"keyId": self.signing.signer.public.key_id, "sequence": self.signing.sequence}
        return {
            "bundle": str(self.out),
            "bundleId": self.inventory.bundle_id,
            "created": self.inventory.created,
            "signedBy": signed,
            "artifacts": [a.to_json() for a in self.inventory.artifacts],
            "files": len(self.inventory.files),
            "bytes": self.inventory.total_size,
            "downloadedBytes": self.downloaded_bytes,
        }


def _registry_settings(sets: Sequence[MirrorSet]) -> dict[str, RegistrySettings]:
    merged: dict[str, RegistrySettings] = {}
    for mirrorset in sets:
        merged.update(mirrorset.registries)
    return merged


def _resolve_sets(sets: Sequence[MirrorSet], pool: ClientPool, jobs: int) -> list[ResolvedImage]:
    sources = {str(i.reference): i for s in sets for i in s.images}
    return run_parallel(sources.values(), lambda image: resolve_image(pool, image), jobs)


def resolve(
    manifest_paths: Sequence[str | Path],
    *,
    jobs: int = 4,
    ca_file: str | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> list[ResolvedImage]:
    """Resolve every image of the manifests to exact digests; touches no bundle."""
    sets = load_mirrorsets(manifest_paths)
    with ClientPool(_registry_settings(sets), ca_file=ca_file, limits=limits, max_connections=jobs * 2) as pool:
        return _resolve_sets(sets, pool, jobs)


class _Download:
    """The manifests and blobs an image graph needs, gathered before any blob is fetched."""

    def __init__(self, pool: ClientPool, writer: LayoutWriter, limits: Limits) -> None:
        self.pool = pool
        self.writer = writer
        self.limits = limits
        self.lock = threading.Lock()
        self.blobs: dict[str, tuple[int, ImageReference]] = {}  # digest → (size, a repository holding it)

    def walk(self, source: ImageReference, document: ManifestDocument, depth: int = 0) -> None:
        where = str(source)
        if depth > self.limits.max_graph_depth:
            raise InvalidDocumentError(f"{where}: indexes nested deeper than {self.limits.max_graph_depth}")
        client = self.pool.for_host(source.registry)
        for child in document.manifests:
            if not child.is_manifest:
                raise InvalidDocumentError(
                    f"{where}: index entry {child.digest} has unsupported media type {child.media_type}"
                )
            fetched = client.get_manifest(source.repository, child.digest, child.size)
            parsed = parse_manifest(
                fetched.raw, declared_type=child.media_type, where=f"{where} {child.digest}", digest=child.digest
            )
            self.walk(source, parsed, depth + 1)
        for blob in document.blobs:
            with self.lock:
                known = self.blobs.setdefault(blob.digest, (blob.size, source))
            if known[0] != blob.size:
                raise InvalidDocumentError(
                    f"{where}: blob {blob.digest} is described as {blob.size} and as {known[0]} bytes"
                )
        self.writer.put_bytes(document.digest, document.raw)

    def fetch(self, digest: str, progress: Progress) -> int:
        size, source = self.blobs[digest]
        client = self.pool.for_host(source.registry)
        with self.writer.blob_file(digest, size) as handle:
            client.download_blob(source.repository, digest, size, handle, progress.advance)
        return size


def _index_entry(image: ResolvedImage) -> dict[str, object]:
    return {
        "mediaType": image.media_type,
        "digest": image.digest,
        "size": image.size,
        "annotations": {REF_NAME: str(image.source)},
    }


def _artifact(image: ResolvedImage) -> ArtifactRecord:
    entry = image.lock_entry()
    extra = {k: v for k, v in entry.items() if k not in {"kind", "source", "digest", "mediaType", "size"}}
    return ArtifactRecord("image", str(image.source), image.digest, image.media_type, image.size, extra)


def _check_out(out: Path) -> None:
    if out.exists() or out.is_symlink():
        raise UsageError(f"{out}: already exists", hint="choose a new output path or remove the old bundle")
    if not out.parent.is_dir():
        raise UsageError(f"{out.parent}: output directory does not exist")


def collect(
    manifest_paths: Sequence[str | Path],
    out: Path,
    *,
    jobs: int = 4,
    ca_file: str | None = None,
    progress: Progress | None = None,
    limits: Limits = DEFAULT_LIMITS,
    signing: CollectorSigning | None = None,
) -> CollectResult:
    progress = progress or Progress(quiet=True)
    _check_out(out)
    sets = load_mirrorsets(manifest_paths)
    token = uuid.uuid4().hex[:12]
    staging = out.parent / f".{out.name}.{token}.partial"
    staging_tar = out.parent / f".{out.name}.{token}.partial.tar"
    settings = _registry_settings(sets)
    with ClientPool(settings, ca_file=ca_file, limits=limits, max_connections=jobs * 2, log=progress.warn) as pool:
        images = _resolve_sets(sets, pool, jobs)
        progress.log(f"resolved {len(images)} image(s)")
        try:
            writer = LayoutWriter(staging)
            download = _Download(pool, writer, limits)
            run_parallel(images, lambda image: download.walk(image.source, image.document), jobs)
            digests = sorted(download.blobs)
            progress.start("download", sum(download.blobs[d][0] for d in digests))
            run_parallel(digests, lambda d: download.fetch(d, progress), jobs)
            progress.finish()
            created = dt.datetime.now(dt.UTC).replace(microsecond=0)
            inventory = writer.finish(
                [_index_entry(i) for i in images],
                {
                    "bundle_id": str(uuid.uuid4()),
                    "created": format_time(created),
                    "tool": f"mirror {__version__}",
                    "artifacts": tuple(_artifact(i) for i in images),
                },
            )
            signatures = [_sign(staging, inventory, created, signing)] if signing else []
            if out.suffix == ".tar":
                write_tar(staging, inventory, staging_tar, signatures)
                staging_tar.rename(out)
                shutil.rmtree(staging)
            else:
                staging.rename(out)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            staging_tar.unlink(missing_ok=True)
            raise
    downloaded = sum(size for size, _ in download.blobs.values())
    progress.log(
        f"wrote {out}: {len(images)} image(s), {len(inventory.files)} files, {human_size(inventory.total_size)}"
    )
    return CollectResult(out, inventory, images, downloaded, signing)


def _sign(staging: Path, inventory: Inventory, created: dt.datetime, signing: CollectorSigning) -> str:
    envelope = sign_collection(
        signing.signer,
        (staging / INVENTORY_PATH).read_bytes(),
        bundle_id=inventory.bundle_id,
        collector=signing.collector,
        sequence=signing.sequence,
        created=created,
        valid_for=signing.valid_for,
    )
    return add_envelope(staging, envelope)
