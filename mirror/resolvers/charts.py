"""Helm charts: a name and a version constraint resolved to one exact archive, as Helm would choose it.

HTTP repositories are read through their index.yaml (fetched once per run, parsed with the C loader, its
structure checked as it is used). OCI repositories are read through their tag list; Helm writes `+` in a
version as `_` in a tag. The newest version satisfying the constraint wins; an exact version string wins first.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import yaml

from mirror.errors import InvalidDocumentError, RegistryHTTPError, SourceNotFoundError
from mirror.helm.package import HELM_CONFIG
from mirror.helm.semver import is_version, select_version
from mirror.httpfetch import HttpFetcher, is_sha256_hex
from mirror.limits import DEFAULT_LIMITS, Limits
from mirror.manifest.model import ChartSource
from mirror.oci.document import ManifestDocument, parse_manifest
from mirror.oci.reference import ImageReference, parse_reference
from mirror.registry.pool import ClientPool

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


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
    """Each repository's index.yaml, fetched and parsed once per run, shared by worker threads."""

    def __init__(self, fetcher: HttpFetcher, limits: Limits = DEFAULT_LIMITS) -> None:
        self._fetcher = fetcher
        self._limits = limits
        self._lock = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self._entries: dict[str, dict[str, Any]] = {}

    def entries(self, repo: str) -> dict[str, Any]:
        with self._lock:
            lock = self._locks.setdefault(repo, threading.Lock())
        with lock:
            if repo not in self._entries:
                self._entries[repo] = self._load(repo)
            return self._entries[repo]

    def _load(self, repo: str) -> dict[str, Any]:
        url = f"{repo}/index.yaml"
        try:
            raw = self._fetcher.get_bytes(url, self._limits.max_index_yaml_bytes)
        except RegistryHTTPError as exc:
            if exc.status == 404:
                raise SourceNotFoundError(f"{url}: no chart repository index here (404)") from exc
            raise
        try:
            body = yaml.load(raw, Loader=_Loader)
        except yaml.YAMLError as exc:
            raise InvalidDocumentError(f"{url}: not valid YAML: {' '.join(str(exc).split())}") from exc
        if not isinstance(body, dict) or not isinstance(body.get("entries"), dict):
            raise InvalidDocumentError(f"{url}: not a Helm repository index (no entries)")
        return body["entries"]


def _select_http(source: ChartSource, indexes: IndexCache) -> ResolvedChart:
    where = f"{source.origin}: chart {source.name} from {source.repo}"
    versions = indexes.entries(source.repo).get(source.name)
    if not isinstance(versions, list) or not versions:
        raise SourceNotFoundError(f"{where}: the repository has no chart of that name")
    by_version: dict[str, list[dict[str, Any]]] = {}
    for entry in versions:
        # Unquoted versions that YAML read as numbers are skipped: their text (1.10 read as 1.1) is lost.
        if isinstance(entry, dict) and isinstance(entry.get("version"), str):
            by_version.setdefault(entry["version"], []).append(entry)
    chosen = select_version(list(by_version), source.version or "*")
    if chosen is None:
        raise SourceNotFoundError(
            f"{where}: no version satisfies {source.version or '*'!r}",
            hint=f"newest listed: {', '.join(list(by_version)[:5])}",
        )
    entries = by_version[chosen]
    urls = entries[0].get("urls")
    if not isinstance(urls, list) or not urls or not isinstance(urls[0], str):
        raise InvalidDocumentError(f"{where} {chosen}: the index entry has no urls")
    url = urljoin(source.repo + "/", urls[0])
    if urlsplit(url).scheme not in ("http", "https"):
        raise InvalidDocumentError(f"{where} {chosen}: archive URL {url!r} is not http(s)")
    # Real indexes list some versions twice with different digests (a re-release under the same URL);
    # the archive must match one of them.
    digests = tuple(dict.fromkeys(e["digest"] for e in entries if e.get("digest") is not None))
    for digest in digests:
        if not is_sha256_hex(digest):
            raise InvalidDocumentError(f"{where} {chosen}: index digest {digest!r} is not sha256 hex")
    return ResolvedChart(source, source.name, chosen, url=url, index_sha256=digests)


def _select_oci(source: ChartSource, pool: ClientPool) -> ResolvedChart:
    repository = parse_reference(f"{source.repo.removeprefix('oci://')}/{source.name}")
    where = f"{source.origin}: chart {repository.name}"
    client = pool.for_host(repository.registry)
    if source.version and is_version(source.version):
        # As Helm does: a version (not a range) is the tag itself, with no listing.
        chosen, tag = source.version, oci_tag(source.version)
    else:
        try:
            tags = client.list_tags(repository.repository)
        except RegistryHTTPError as exc:
            if exc.status == 404:
                raise SourceNotFoundError(f"{where}: not found upstream") from exc
            raise
        versions = {t.replace("_", "+"): t for t in tags}
        found = select_version(list(versions), source.version or "*", strict=True)
        if found is None:
            raise SourceNotFoundError(f"{where}: no tag satisfies {source.version or '*'!r}")
        chosen, tag = found, versions[found]
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
