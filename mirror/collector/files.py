"""Collecting `spec.files`: each file downloaded (or read) once, hashed on the way, checked against its pinned
sha256, and stored as an OCI artifact (mirror.oci.fileartifact). See docs/collector.md ("Files").
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from mirror.bundle.inventory import ArtifactRecord
from mirror.bundle.layout import LayoutWriter
from mirror.collector.httpfetch import HttpFetcher
from mirror.collector.unresolved import Unresolved
from mirror.errors import DigestMismatchError, RegistryHTTPError, UsageError, needed_for
from mirror.limits import Limits
from mirror.manifest.model import FileSource, MirrorSet, UrlRewrite
from mirror.oci.document import ManifestDocument, parse_manifest
from mirror.oci.fileartifact import EMPTY_CONFIG, file_manifest
from mirror.parallel import run_parallel
from mirror.progress import Progress
from mirror.urlrewrite import fetch_url

FILE_KIND = "file"


@dataclass(frozen=True)
class CollectedFile:
    source: FileSource
    sha256: str  # hex of the file's bytes, as carried
    size: int
    document: ManifestDocument  # the OCI artifact the bundle holds for it

    def record(self) -> ArtifactRecord:
        extra = {"name": self.source.name, "tag": self.source.tag, "fileSha256": self.sha256, "fileSize": self.size}
        document = self.document
        return ArtifactRecord(FILE_KIND, self.source.source, document.digest, document.media_type, document.size, extra)

    def lock_entry(self) -> dict[str, object]:
        """In the lock, a file is pinned by its own digest (what `sha256:` pins, or trust-on-first-use saw)."""
        return {
            "kind": FILE_KIND,
            "source": self.source.source,
            "digest": f"sha256:{self.sha256}",
            "name": self.source.name,
            "size": self.size,
            "tag": self.source.tag,
            "manifestDigest": self.document.digest,
        }


def file_sources(sets: Sequence[MirrorSet]) -> list[FileSource]:
    """Every file entry of the MirrorSets, each name once (the loader refused two files under one name)."""
    seen: dict[str, FileSource] = {}
    for mirrorset in sets:
        for entry in mirrorset.files:
            seen.setdefault(entry.name.lower(), entry)
    return list(seen.values())


class FileCollector:
    def __init__(
        self,
        fetcher: HttpFetcher,
        writer: LayoutWriter,
        limits: Limits,
        progress: Progress,
        rewrites: Sequence[UrlRewrite] = (),
        have: Mapping[str, int] | None = None,
    ) -> None:
        self.fetcher = fetcher
        self.writer = writer
        self.limits = limits
        self.progress = progress
        self.rewrites = tuple(rewrites)
        self.have = have or {}  # an incremental collect's base chain: blobs it carries (digest → size)

    def collect(self, sources: Sequence[FileSource], jobs: int, unresolved: Unresolved) -> list[CollectedFile]:
        if len(sources) > self.limits.max_files:
            raise UsageError(f"{len(sources)} files to collect, more than the limit of {self.limits.max_files}")

        def one(source: FileSource) -> CollectedFile | None:
            with needed_for(f"file {source.name} from {source.source}", source.origin):
                try:
                    return self._collect_one(source)
                except RegistryHTTPError as exc:
                    if exc.status != 404:
                        raise
                    unresolved.add(f"file {source.source}: not found (404)", source.origin)
                    return None

        return [f for f in run_parallel(list(sources), one, jobs) if f is not None]

    def _collect_one(self, source: FileSource) -> CollectedFile:
        pinned = source.sha256
        if pinned is not None and f"sha256:{pinned}" in self.have:
            # The base carries these very bytes: nothing to download, and the layout leaves them to the base.
            sha, size = pinned, self.have[f"sha256:{pinned}"]
        elif source.url is not None:
            sha, size = self._download(source)
        else:
            sha, size = self._read_local(source)
        if pinned is not None and sha != pinned and source.url is None:
            pinned_by = f"the lock ({source.locked_in}) pins" if source.locked_in else f"{source.origin} pins"
            raise UsageError(
                f"file {source.source}: sha256 {sha}, but {pinned_by} {pinned}",
                hint="the local file changed: check it, then run `mirror resolve --json` again and collect with "
                "the new lock"
                if source.locked_in
                else "the local file changed: check it, then update sha256",
            )
        if pinned is not None and sha != pinned and source.locked_in is not None:
            raise DigestMismatchError(
                f"file {source.source}: upstream served other bytes than the lock ({source.locked_in}) pins for "
                f"{source.origin} (sha256: trust-on-first-use): expected sha256 {pinned}, got {sha} ({size} bytes)",
                hint="the lock holds the digest resolve saw: check the new file against the publisher's checksum; "
                "if it changed on purpose, run `mirror resolve --json` again, review the new lock and collect with it "
                "(or update that entry of the lock); otherwise do not carry it",
            )
        if pinned is not None and sha != pinned:
            raise DigestMismatchError(
                f"file {source.source}: upstream served other bytes than {source.origin} pins: expected sha256 "
                f"{pinned}, got {sha} ({size} bytes)",
                hint="if the publisher changed the file on purpose, check the new one and update sha256; "
                "otherwise do not carry it",
            )
        manifest = file_manifest(source.name, sha, size)
        document = parse_manifest(manifest, declared_type=None, where=f"file {source.name}")
        self.writer.put_bytes(document.config.digest, EMPTY_CONFIG)  # type: ignore[union-attr]
        self.writer.put_bytes(document.digest, manifest)
        how = "pinned" if pinned is not None else "trusted on first use" if source.url else "unpinned local file"
        self.progress.log(f"file {source.name} from {source.source}: sha256 {sha}, {size} bytes ({how})")
        return CollectedFile(source, sha, size, document)

    def _download(self, source: FileSource) -> tuple[str, int]:
        assert source.url is not None
        with self.writer.scratch_file() as (path, handle):
            sha, size = self.fetcher.download(
                fetch_url(source.url, self.rewrites),
                handle,
                expected_sha256=(),  # compared below, for a message naming the MirrorSet's pin
                max_bytes=self.limits.max_file_bytes,
                on_bytes=lambda _: None,
            )
            handle.close()
            if source.sha256 is None or sha == source.sha256:
                self.writer.adopt(path, f"sha256:{sha}", size)
        return sha, size

    def _read_local(self, source: FileSource) -> tuple[str, int]:
        assert source.path is not None
        digest, size = hashlib.sha256(), 0
        with self.writer.scratch_file() as (path, handle), source.path.open("rb") as local:
            while chunk := local.read(self.limits.copy_chunk_bytes):
                size += len(chunk)
                if size > self.limits.max_file_bytes:
                    raise UsageError(
                        f"file {source.source}: larger than the limit of {self.limits.max_file_bytes} bytes "
                        "(limit max_file_bytes)"
                    )
                digest.update(chunk)
                handle.write(chunk)
            handle.close()
            sha = digest.hexdigest()
            if source.sha256 is None or sha == source.sha256:
                self.writer.adopt(path, f"sha256:{sha}", size)
        return sha, size
