"""Collecting the charts of MirrorSets: resolve, download, follow dependencies, and find the images they use.

See docs/collector.md ("Helm charts").
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass, field

from mirror.bundle.layout import LayoutWriter
from mirror.collector.chartindex import IndexCache, ResolvedChart, resolve_chart
from mirror.collector.download import GraphDownloader
from mirror.collector.httpfetch import HttpFetcher
from mirror.collector.unresolved import Unresolved
from mirror.egress import EgressPolicy, url_host
from mirror.errors import InvalidDocumentError, UsageError, needed_for
from mirror.helm.archive import Chart, read_chart
from mirror.helm.binary import find_helm
from mirror.helm.discover import discover_images
from mirror.helm.package import HELM_CHART_LAYER, chart_config, chart_manifest
from mirror.limits import Limits
from mirror.manifest.model import ChartSource, ImageSource, MirrorSet, UrlRewrite
from mirror.oci.document import ManifestDocument, parse_manifest
from mirror.oci.reference import parse_reference
from mirror.parallel import run_parallel
from mirror.progress import Progress
from mirror.registry.pool import ClientPool
from mirror.semver import Constraint, InvalidVersion, Version
from mirror.urlrewrite import fetch_url
from mirror.warncodes import CHART_DEPENDENCY, CHART_IMAGES, CHART_INDEX_NO_DIGEST
from mirror.yamlio import YamlBudget


@dataclass
class CollectedChart:
    resolved: ResolvedChart
    chart: Chart
    document: ManifestDocument  # the OCI manifest the bundle holds for it
    required_by: str | None  # "name@version" of the chart that depends on it, or None when listed
    archive_sha256: str  # the chart archive, as carried (the layer of its OCI manifest)
    images: list[ImageSource] = field(default_factory=list)

    def artifact_extra(self) -> dict[str, object]:
        extra: dict[str, object] = {
            "chart": self.resolved.name,
            "version": self.resolved.version,
            "repo": self.resolved.source.repo,
            "via": "dependency" if self.required_by else self.resolved.source.via,
        }
        if self.archive_sha256:
            extra["archiveSha256"] = self.archive_sha256
        if self.required_by:
            extra["requiredBy"] = self.required_by
        return extra


class ChartCollector:
    def __init__(
        self,
        pool: ClientPool,
        fetcher: HttpFetcher,
        writer: LayoutWriter,
        graphs: GraphDownloader,
        limits: Limits,
        progress: Progress,
        helm: str | None = None,
        egress: EgressPolicy | None = None,
        rewrites: Sequence[UrlRewrite] = (),
    ) -> None:
        self.egress = egress
        self.pool = pool
        self.fetcher = fetcher
        self.rewrites = tuple(rewrites)  # spec.rewrite: where HTTP repositories' URLs are fetched
        self.indexes = IndexCache(fetcher, limits, rewrites=self.rewrites)
        self.writer = writer
        self.graphs = graphs
        self.limits = limits
        self.progress = progress
        self.helm = helm if helm is not None else find_helm()

    def collect(
        self, sources: list[ChartSource], jobs: int, unresolved: Unresolved | None = None
    ) -> list[CollectedChart]:
        """Every listed chart and every chart they depend on, breadth-first, each exact version once.

        A chart the upstream does not have raises SourceNotFoundError, or goes to `unresolved` when given (the
        others are still collected)."""
        if self.helm is None and any(s.images.discover for s in sources):
            self.progress.warn(
                "no helm (on PATH or in MIRROR_HELM): chart image discovery reads annotations and values only, so "
                "images that only the templates name are not found, and kubeVersion and apiVersions are not used",
                CHART_IMAGES,
            )
        try:
            return self._collect(sources, jobs, unresolved)
        finally:
            self.indexes.close()

    def _collect(self, sources: list[ChartSource], jobs: int, unresolved: Unresolved | None) -> list[CollectedChart]:
        collected: dict[tuple[str, str, str], CollectedChart] = {}
        # Each item: the chart asked for, and the chain of charts that led to it ("name@version", root first).
        wave: list[tuple[ChartSource, tuple[str, ...]]] = [(s, ()) for s in sources]
        asked: set[tuple[str, str, str | None]] = set()
        while wave:
            wave = [(s, chain) for s, chain in wave if (s.repo, s.name, s.version) not in asked]
            asked.update((s.repo, s.name, s.version) for s, _ in wave)
            if self.egress is not None:  # every host of the wave that discovery reached, all refusals at once
                self.egress.require_discovered(
                    (
                        url_host(s.repo if s.is_oci else fetch_url(s.repo + "/", self.rewrites)),
                        f"chart {chain[-1]} dependency {s.name}" if chain else s.origin,
                    )
                    for s, chain in wave
                    if chain or s.via != "listed"
                )
            self.indexes.expect(s for s, _ in wave)

            def resolve(item: tuple[ChartSource, tuple[str, ...]]) -> tuple[ResolvedChart, tuple[str, ...]]:
                source, chain = item
                with needed_for(f"chart {source.name} from {source.repo}", _needed_by(source, chain)):
                    return resolve_chart(source, self.indexes, self.pool), chain

            attempt = resolve if unresolved is None else unresolved.attempt(resolve)
            resolved = [r for r in run_parallel(wave, attempt, jobs) if r is not None]
            fresh = {r.key: (r, chain) for r, chain in resolved if r.key not in collected}
            if len(collected) + len(fresh) > self.limits.max_charts:
                raise UsageError(
                    f"more than {self.limits.max_charts} charts to collect, counting dependencies; refused "
                    f"(limit max_charts), e.g. {', '.join(r.display for r, _ in list(fresh.values())[:3])}"
                )
            charts = run_parallel(list(fresh.values()), lambda item: self._collect_one(*item), jobs)
            wave = []
            for chart in charts:
                collected[chart.resolved.key] = chart
                self.progress.log(f"chart {chart.resolved.display} from {chart.resolved.source.repo}")
                if chart.resolved.source.dependencies:
                    chain = (*fresh[chart.resolved.key][1], chart.resolved.display)
                    dependencies = self._dependencies(chart)
                    if dependencies and len(chain) > self.limits.max_chart_dependency_depth:
                        raise UsageError(
                            f"chart dependencies nested deeper than {self.limits.max_chart_dependency_depth} "
                            f"(limit max_chart_dependency_depth): {' → '.join(chain)} → {dependencies[0].name}"
                        )
                    wave.extend((dependency, chain) for dependency in dependencies)
        return list(collected.values())

    def _read(self, archive_digest: str, resolved: ResolvedChart) -> Chart:
        with open(self.writer.blob_location(archive_digest), "rb") as handle:
            return read_chart(
                handle,
                where=f"chart {resolved.display}",
                limits=self.limits,
                yaml_budget=YamlBudget.from_limits(self.limits),
            )

    def _collect_one(self, resolved: ResolvedChart, chain: tuple[str, ...]) -> CollectedChart:
        with needed_for(f"chart {resolved.display} from {resolved.source.repo}", _needed_by(resolved.source, chain)):
            return self._collect_resolved(resolved, chain)

    def _collect_resolved(self, resolved: ResolvedChart, chain: tuple[str, ...]) -> CollectedChart:
        required_by = chain[-1] if chain else None
        if resolved.is_oci:
            document, archive_digest = self._copy_oci(resolved)
            chart = self._read(archive_digest, resolved)
        else:
            document, archive_digest, chart = self._download_http(resolved)
        where = f"chart {resolved.display}"
        if (chart.name, chart.version) != (resolved.name, resolved.version):
            raise InvalidDocumentError(f"{where}: the archive holds {chart.name} {chart.version}")
        collected = CollectedChart(resolved, chart, document, required_by, archive_digest.removeprefix("sha256:"))
        collected.images = self._images(collected, archive_digest)
        return collected

    def _download_http(self, resolved: ResolvedChart) -> tuple[ManifestDocument, str, Chart]:
        assert resolved.url is not None
        # The archive URL the index lists keeps its identity; a spec.rewrite rule may say where it is fetched.
        fetch = fetch_url(resolved.url, self.rewrites)
        repository = fetch_url(resolved.source.repo + "/", self.rewrites)
        if self.egress is not None:  # the index names where its archives are, as a redirect would
            self.egress.check_followed(repository, fetch, "chart archive")
        with self.writer.scratch_file() as (path, handle):
            sha, size = self.fetcher.download(
                fetch,
                handle,
                expected_sha256=resolved.index_sha256,
                max_bytes=self.limits.max_chart_bytes,
                on_bytes=lambda _: None,
                credentials_origin=repository,  # credentials go with an archive on the index's own origin only
            )
            handle.close()
            if not resolved.index_sha256:
                self.progress.warn(
                    f"{resolved.url}: the index gives no digest; the archive is taken as served", CHART_INDEX_NO_DIGEST
                )
            self.writer.adopt(path, f"sha256:{sha}", size)
        chart = self._read(f"sha256:{sha}", resolved)
        config = chart_config(chart.metadata)
        manifest = chart_manifest(config, f"sha256:{sha}", size, resolved.name, resolved.version)
        document = parse_manifest(manifest, declared_type=None, where=f"chart {resolved.display}")
        self.writer.put_bytes(document.config.digest, config)  # type: ignore[union-attr]
        self.writer.put_bytes(document.digest, manifest)
        return document, f"sha256:{sha}", chart

    def _copy_oci(self, resolved: ResolvedChart) -> tuple[ManifestDocument, str]:
        assert resolved.reference is not None and resolved.document is not None
        document = resolved.document
        self.graphs.walk(resolved.reference, document)
        layers = [layer for layer in document.layers if layer.media_type == HELM_CHART_LAYER]
        if len(layers) != 1:
            raise InvalidDocumentError(f"{resolved.reference}: a Helm chart has exactly one chart content layer")
        for blob in document.blobs:
            self.graphs.fetch(blob.digest, self.progress)
        return document, layers[0].digest

    def _dependencies(self, collected: CollectedChart) -> list[ChartSource]:
        notes: list[str] = []
        result = dependency_sources(collected.chart, collected.resolved.source, collected.resolved.display, notes)
        for note in notes:
            self.progress.warn(note, CHART_DEPENDENCY)
        return result

    def _images(self, collected: CollectedChart, archive_digest: str) -> list[ImageSource]:
        spec = collected.resolved.source.images
        origin = f"chart {collected.resolved.display}"
        found: list[ImageSource] = []
        if spec.discover:
            archive: bytes | None = None
            if self.helm:
                archive = self.writer.blob_location(archive_digest).read_bytes()
            notes: list[str] = []
            discovered = discover_images(
                collected.chart,
                helm=self.helm,
                archive=archive,
                warnings=notes,
                limits=self.limits,
                values=collected.resolved.source.values,
            )
            for image in discovered:
                if any(fnmatch.fnmatchcase(image.reference, pattern) for pattern in spec.exclude):
                    continue
                reference = parse_reference(image.reference)
                found.append(
                    ImageSource(
                        reference,
                        collected.resolved.source.platforms,
                        f"{origin}: {image.how}",
                        optional=image.guessed,
                    )
                )
            followed = collected.resolved.source.dependencies
            for note in notes:
                # Dependencies from repositories are collected as charts of their own, images included.
                if followed and "is not vendored" in note and (" from http" in note or " from oci://" in note):
                    continue
                self.progress.warn(f"{origin}: {note}", CHART_IMAGES)
        for reference in spec.include:
            found.append(ImageSource(reference, collected.resolved.source.platforms, f"{origin}: listed"))
        return found


def _needed_by(source: ChartSource, chain: tuple[str, ...]) -> str:
    """What asked for a chart, for messages: the MirrorSet field or Flux object, or the chart depending on it."""
    return f"a dependency of chart {chain[-1]}" if chain else source.origin


def chart_sources(sets: list[MirrorSet]) -> list[ChartSource]:
    """Every chart entry of the MirrorSets, in order, the same entry once."""
    seen: dict[tuple[str, str, str | None], ChartSource] = {}
    for mirrorset in sets:
        for chart in mirrorset.charts:
            seen.setdefault((chart.repo, chart.name, chart.version), chart)
    return list(seen.values())


def _locked_versions(chart: Chart) -> list[tuple[str, str, str]]:
    """(name, repository, version) of each entry of the chart's Chart.lock (requirements.lock), in order."""
    entries = chart.lock.get("dependencies") if chart.lock else None
    result = []
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict) and all(isinstance(entry.get(k), str) for k in ("name", "repository", "version")):
            result.append((entry["name"], entry["repository"].rstrip("/"), entry["version"]))
    return result


def _lock_fits(constraint: str, locked: str) -> bool:
    """Whether the locked version satisfies the Chart.yaml constraint (an empty one allows any version)."""
    try:
        version = Version.parse(locked)
        return not constraint or locked == constraint or Constraint.parse(constraint).allows(version)
    except (InvalidVersion, UsageError):
        return False


def dependency_sources(chart: Chart, parent: ChartSource, display: str, notes: list[str]) -> list[ChartSource]:
    """The charts `chart` depends on from http(s) and OCI repositories, each as a chart source of its own.

    As `helm dependency build` does, a dependency the chart's Chart.lock (or requirements.lock) lists, by name
    and repository, is taken at the locked version, not the newest one its constraint allows; a lock entry that
    no longer satisfies the constraint (a lock out of sync, which Helm refuses to build) is reported and the
    constraint is used. Aliased and vendored dependencies are left out (a note for the alias).
    """
    locked = _locked_versions(chart)
    result = []
    for dependency in chart.dependencies:
        repository = (dependency.repository or "").rstrip("/")
        if repository.startswith(("https://", "http://", "oci://")):
            version = dependency.version or None
            entry = next((e for e in locked if e[:2] == (dependency.name, repository)), None)
            if entry is not None:
                locked.remove(entry)
                if _lock_fits(dependency.version, entry[2]):
                    version = entry[2]
                else:
                    notes.append(
                        f"chart {display}: Chart.lock pins dependency {dependency.name} at {entry[2]}, out of sync "
                        f"with its constraint {dependency.version!r}; the constraint is used"
                    )
            result.append(
                ChartSource(
                    name=dependency.name,
                    repo=repository,
                    version=version,
                    images=parent.images,
                    dependencies=True,
                    platforms=parent.platforms,
                    origin=f"dependency of {display}",
                )
            )
        elif repository.startswith(("@", "alias:")):
            notes.append(
                f"chart {display}: dependency {dependency.name} names repository {repository}, "
                "an alias of a local Helm configuration; list that chart in the manifest to carry it"
            )
        # file:// and empty repositories are vendored in the archive's charts/ directory.
    return result
