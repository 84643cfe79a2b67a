"""Downloading OCI graphs into a bundle: manifests walked and stored first, then each distinct blob once."""

from __future__ import annotations

import threading

from mirror.bundle.layout import LayoutWriter
from mirror.collector.cache import BlobCache
from mirror.errors import InvalidDocumentError, UsageError
from mirror.limits import Limits
from mirror.oci.document import ManifestDocument, parse_manifest
from mirror.oci.reference import ImageReference
from mirror.progress import Progress
from mirror.registry.pool import ClientPool


class _NotCached(Exception):
    """The cache had no sound entry for a blob after all: it is downloaded instead."""


class GraphDownloader:
    """The manifests and blobs an image graph needs, gathered before any blob is fetched."""

    def __init__(self, pool: ClientPool, writer: LayoutWriter, limits: Limits, cache: BlobCache | None = None) -> None:
        self.pool = pool
        self.writer = writer
        self.limits = limits
        self.cache = cache
        self.fetched: dict[str, int] = {}  # digest → size, for the blobs that came over the network
        self.resumed: dict[str, int] = {}  # digest → size, for the blobs a partial tar held (a .tar OUT)
        self.lock = threading.Lock()
        self.blobs: dict[str, tuple[int, ImageReference]] = {}  # digest → (size, a repository holding it)
        # Child manifests already walked (digest → size): an index may list one child thousands of times, and
        # images share children; each is fetched once.
        self.walked: dict[str, int] = {}

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
            with self.lock:
                first = child.digest not in self.walked
                seen = self.walked.setdefault(child.digest, child.size)
            if seen != child.size:
                raise InvalidDocumentError(
                    f"{where}: manifest {child.digest} is described as {child.size} and as {seen} bytes"
                )
            if not first:
                continue
            fetched = client.get_manifest(source.repository, child.digest, child.size)
            parsed = parse_manifest(
                fetched.raw, declared_type=child.media_type, where=f"{where} {child.digest}", digest=child.digest
            )
            self.walk(source, parsed, depth + 1)
        for blob in document.blobs:
            if blob.size > self.limits.max_blob_bytes:
                raise UsageError(
                    f"{where}: blob {blob.digest} is declared as {blob.size} bytes, more than the limit of "
                    f"{self.limits.max_blob_bytes} (max_blob_bytes); refused before any download"
                )
            with self.lock:
                known = self.blobs.setdefault(blob.digest, (blob.size, source))
            if known[0] != blob.size:
                raise InvalidDocumentError(
                    f"{where}: blob {blob.digest} is described as {blob.size} and as {known[0]} bytes"
                )
        self.writer.put_bytes(document.digest, document.raw)

    def fetch(self, digest: str, progress: Progress) -> int:
        size, source = self.blobs[digest]
        if self.writer.has(digest):
            return 0
        if self.writer.in_tar(digest):
            return self._into_tar(digest, size, source, progress)
        if self.cache is not None and self._from_cache(digest, size, reuse=True):
            progress.advance(size)
            return 0
        client = self.pool.for_host(source.registry)
        if self.cache is None:
            with self.writer.blob_file(digest, size) as handle:
                client.download_blob(source.repository, digest, size, handle, progress.advance)
        else:
            # Into the cache first, so that a run killed after this blob does not fetch it again.
            with self.cache.storing(digest, size) as handle:
                client.download_blob(source.repository, digest, size, handle, progress.advance)
            if not self._from_cache(digest, size, reuse=False):
                raise RuntimeError(f"cache entry {digest} vanished while being placed")
        with self.lock:
            self.fetched[digest] = size
        return size

    def _into_tar(self, digest: str, size: int, source: ImageReference, progress: Progress) -> int:
        """A blob reserved in a .tar OUT: kept if the partial tar a killed collect left holds it, else copied from
        the cache, else downloaded straight into its place. Never into the cache: the partial tar is this
        collect's resume state, so each byte is written once (docs/collector.md, "Resuming a .tar collect")."""
        if self.writer.resumed(digest, size):
            with self.lock:
                self.resumed[digest] = size
            progress.advance(size)
            return 0
        if self.cache is not None and self._cached_into_tar(digest, size):
            progress.advance(size)
            return 0
        client = self.pool.for_host(source.registry)
        with self.writer.blob_file(digest, size) as handle:
            client.download_blob(source.repository, digest, size, handle, progress.advance)
        with self.lock:
            self.fetched[digest] = size
        return size

    def _cached_into_tar(self, digest: str, size: int) -> bool:
        assert self.cache is not None
        try:
            with self.writer.blob_file(digest, size) as place:
                if not self.cache.copy_into(digest, size, place):
                    raise _NotCached  # the place is not filled; the download rewrites it from the start
        except _NotCached:
            return False
        return True

    def _from_cache(self, digest: str, size: int, *, reuse: bool) -> bool:
        assert self.cache is not None
        with self.writer.scratch_path() as scratch:
            placed = (
                self.cache.reuse(digest, size, scratch)
                if reuse  # an entry from an earlier run: hashed again before it is trusted
                else self.cache.place(digest, size, scratch, rehash=False)
            )
            if placed:
                self.writer.adopt(scratch, digest, size)
            return placed
