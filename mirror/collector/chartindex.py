"""Helm charts: a name and a version constraint resolved to one exact archive, as Helm would choose it.

See docs/collector.md ("Helm charts").
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import BinaryIO
from urllib.parse import urljoin, urlsplit

from mirror.collector.httpfetch import HttpFetcher, is_sha256_hex
from mirror.errors import InvalidDocumentError, RegistryHTTPError, SourceNotFoundError
from mirror.flux.tags import select_flux_tag
from mirror.helm.package import HELM_CONFIG
from mirror.helm.repoindex import IndexEntry, read_index
from mirror.limits import DEFAULT_LIMITS, Limits
from mirror.manifest.model import ChartSource, UrlRewrite
from mirror.oci.document import ManifestDocument, parse_manifest
from mirror.oci.reference import ImageReference, parse_reference
from mirror.registry.pool import ClientPool
from mirror.semver import is_version, select_version
from mirror.urlrewrite import fetch_url


@dataclass(frozen=True)
class ResolvedChart:
    source: ChartSource
    name: str
    version: str
    url: str | None = None  # HTTP: the archive's absolute URL
    index_sha256: tuple[str, ...] = ()  # HTTP: the digests the index states for this version (Helm never checks)
    reference: ImageReference | None = None  # OCI: repository and tag
    document: ManifestDocument | None = None  # OCI: the chart's manifest, exact bytes

    @property
    def is_oci(self) -> bool:
        return self.reference is not None

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.source.repo, self.name, self.version)

    @property
    def display(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def source_ref(self) -> str:
        """The chart's source as the inventory and allowedSources see it."""
        if self.reference is not None:
            return str(self.reference)
        assert self.url is not None
        return self.url


def oci_tag(version: str) -> str:
    return version.replace("+", "_")


class IndexCache:
    """Each repository's index.yaml, fetched once per run into an anonymous temporary file, shared by threads.

    Only the charts asked for are kept, as compact entries (see mirror.helm.repoindex). A chart asked for
    later (a dependency) is read by walking the stored file again, never by fetching it again; `expect` names
    the charts a wave will ask for, so that one walk reads them all.
    """

    def __init__(
        self, fetcher: HttpFetcher, limits: Limits = DEFAULT_LIMITS, *, rewrites: Sequence[UrlRewrite] = ()
    ) -> None:
        self._fetcher = fetcher
        self._rewrites = tuple(rewrites)  # spec.rewrite: the index is fetched there, the repository keeps its URL
        self._limits = limits
        self._lock = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self._files: dict[str, BinaryIO] = {}
        self._charts: dict[str, dict[str, list[IndexEntry] | None]] = {}  # repo → chart → entries (None: not a list)
        self._expected: dict[str, set[str]] = {}

    def expect(self, sources: Iterable[ChartSource]) -> None:
        with self._lock:
            for source in sources:
                if not source.is_oci:
                    self._expected.setdefault(source.repo, set()).add(source.name)

    def versions(self, repo: str, name: str) -> list[IndexEntry] | None:
        """The chart's entries with a string version, in index order; None when the index does not list it."""
        with self._lock:
            lock = self._locks.setdefault(repo, threading.Lock())
        with lock:
            known = self._charts.setdefault(repo, {})
            if name not in known:
                with self._lock:
                    wanted = (self._expected.pop(repo, set()) | {name}) - known.keys()
                handle = self._files.get(repo) or self._fetch(repo)
                handle.seek(0)
                found = read_index(handle, wanted, where=f"{repo}/index.yaml", limits=self._limits)
                known.update({chart: found.get(chart) for chart in wanted})
            return known[name]

    def close(self) -> None:
        for handle in self._files.values():
            handle.close()
        self._files.clear()

    def _fetch(self, repo: str) -> BinaryIO:
        url = fetch_url(f"{repo}/index.yaml", self._rewrites)
        # Open for the run (read again for later charts), closed by close(); anonymous, so a killed run leaves none.
        handle = tempfile.TemporaryFile(prefix="mirror-index-")  # noqa: SIM115
        try:
            self._fetcher.download(
                url,
                handle,
                expected_sha256=(),
                max_bytes=self._limits.max_index_yaml_bytes,
                on_bytes=lambda _: None,
                document=True,  # whole within the document deadline (Limits.document_deadline_s)
            )
        except RegistryHTTPError as exc:
            handle.close()
            if exc.status == 404:
                raise SourceNotFoundError(f"{url}: no chart repository index here (404)") from exc
            raise
        except BaseException:
            handle.close()
            raise
        self._files[repo] = handle
        return handle


def _select_http(source: ChartSource, indexes: IndexCache) -> ResolvedChart:
    where = f"{source.origin}: chart {source.name} from {source.repo}"
    versions = indexes.versions(source.repo, source.name)
    if not versions:
        raise SourceNotFoundError(f"{where}: the repository has no chart of that name")
    by_version: dict[str, list[IndexEntry]] = {}
    for entry in versions:
        by_version.setdefault(entry.version, []).append(entry)
    chosen = select_version(list(by_version), source.version or "*")
    if chosen is None:
        raise SourceNotFoundError(
            f"{where}: no version satisfies {source.version or '*'!r}",
            hint=f"newest listed: {', '.join(list(by_version)[:5])}",
        )
    entries = by_version[chosen]
    urls = entries[0].urls
    if not urls or not isinstance(urls[0], str):
        raise InvalidDocumentError(f"{where} {chosen}: the index entry has no urls")
    url = urljoin(source.repo + "/", urls[0])
    if urlsplit(url).scheme not in ("http", "https"):
        raise InvalidDocumentError(f"{where} {chosen}: archive URL {url!r} is not http(s)")
    # Real indexes list some versions twice with different digests (a re-release under the same URL);
    # the archive must match one of them.
    digests = tuple(dict.fromkeys(e.digest for e in entries if e.digest is not None))
    for digest in digests:
        if not is_sha256_hex(digest):
            raise InvalidDocumentError(f"{where} {chosen}: index digest {digest!r} is not sha256 hex")
    return ResolvedChart(source, source.name, chosen, url=url, index_sha256=digests)  # type: ignore[arg-type]


def _select_oci(source: ChartSource, pool: ClientPool) -> ResolvedChart:
    repository = parse_reference(f"{source.repo.removeprefix('oci://')}/{source.name}")
    where = f"{source.origin}: chart {repository.name}"
    client = pool.for_host(repository.registry)
    if source.flux_semver and source.version:
        try:
            choice = select_flux_tag(client.iter_tags(repository.repository), source.version)
        except RegistryHTTPError as exc:
            if exc.status == 404:
                raise SourceNotFoundError(f"{where}: not found upstream") from exc
            raise
        if choice.tag is None:
            raise SourceNotFoundError(
                f"{where}: no tag satisfies {source.version!r}; {choice.describe_seen()}",
                hint="tags are read as Flux reads them: MAJOR.MINOR.PATCH with an optional v prefix",
            )
        chosen, tag = choice.tag, choice.tag
    elif source.version and is_version(source.version):
        # As Helm does: a version (not a range) is the tag itself, with no listing.
        chosen, tag = source.version, oci_tag(source.version)
    else:
        # Tags stream page by page into the selection; `+` (never in a tag) comes back from `_` one to one.
        versions = (tag.replace("_", "+") for tag in client.iter_tags(repository.repository))
        try:
            found = select_version(versions, source.version or "*", strict=True)
        except RegistryHTTPError as exc:
            if exc.status == 404:
                raise SourceNotFoundError(f"{where}: not found upstream") from exc
            raise
        if found is None:
            raise SourceNotFoundError(f"{where}: no tag satisfies {source.version or '*'!r}")
        chosen, tag = found, oci_tag(found)
    reference = ImageReference(repository.registry, repository.repository, tag)
    try:
        fetched = client.get_manifest(reference.repository, tag)
    except RegistryHTTPError as exc:
        if exc.status == 404:
            raise SourceNotFoundError(f"{where}:{tag} not found upstream") from exc
        raise
    document = parse_manifest(fetched.raw, declared_type=fetched.media_type, where=where, digest=fetched.digest)
    if document.is_index or document.config is None or document.config.media_type != HELM_CONFIG:
        raise InvalidDocumentError(f"{where}:{tag} is not a Helm chart (config {HELM_CONFIG} expected)")
    return ResolvedChart(source, source.name, chosen, reference=reference, document=document)


def resolve_chart(source: ChartSource, indexes: IndexCache, pool: ClientPool) -> ResolvedChart:
    return _select_oci(source, pool) if source.is_oci else _select_http(source, indexes)
