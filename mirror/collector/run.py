"""The connected side: resolve a MirrorSet, download everything once, and write one bundle atomically.

See docs/collector.md ("A collect").
"""

from __future__ import annotations

import contextlib
import datetime as dt
import shutil
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from mirror import __version__
from mirror.bundle.inventory import INVENTORY_PATH, ArtifactRecord, HostRecord, Inventory
from mirror.bundle.layout import LayoutWriter
from mirror.collector.attached import AttachedFinder, FoundAttached, Subject, carried_manifests, find_attached
from mirror.collector.download import GraphDownloader
from mirror.collector.guesses import guess_left_out
from mirror.collector.httpfetch import HttpFetcher
from mirror.collector.images import ResolvedImage, resolve_image
from mirror.collector.incremental import (
    BaseChain,
    Graph,
    MovedTag,
    beside_path,
    leave_to_base,
    load_base,
    to_list,
    write_beside,
)
from mirror.collector.known import KnownManifests
from mirror.collector.landings import check_one_source_per_repository, listed_sources
from mirror.collector.tagselection import expand_tag_selectors
from mirror.collector.unresolved import Unresolved
from mirror.collector.upstream import UpstreamChecked, has_rules, verify_upstream
from mirror.credentials import ChartCredentials, chart_credentials
from mirror.egress import Contact, EgressPolicy, url_host
from mirror.errors import MirrorError, SourceNotFoundError, TransferError, UsageError, needed_for
from mirror.fsutil import require_writable_directory, temporary_name
from mirror.limits import DEFAULT_LIMITS, Limits
from mirror.manifest import MirrorSet, load_mirrorsets
from mirror.manifest.model import ChartSource, GitSource, ImageSource
from mirror.oci.digest import sha256_digest
from mirror.oci.document import ManifestDocument, parse_manifest
from mirror.oci.reference import ImageReference
from mirror.parallel import run_parallel
from mirror.progress import Progress, human_size
from mirror.proxy import ProxySettings
from mirror.registry.endpoint import RegistrySettings, endpoint_for
from mirror.registry.known import ManifestStore
from mirror.registry.pool import ClientPool
from mirror.supplychain.codes import ATTACHED_SUBJECT_FILTERED
from mirror.supplychain.roots import TRUSTED_ROOT_KIND
from mirror.timestamps import format_time
from mirror.urlrewrite import fetch_url
from mirror.warncodes import (
    ATTACHED_TAGS_UNLISTED,
    IMAGE_GUESS_NOT_FOUND,
    IMAGE_GUESS_UNREACHABLE,
    TRANSFER_RETRY,
    UPSTREAM_TAG_MOVED,
)

if TYPE_CHECKING:
    import httpx

    from mirror.bundle.tarball import OnePassTar
    from mirror.collector.cache import BlobCache
    from mirror.collector.charts import CollectedChart
    from mirror.collector.files import CollectedFile
    from mirror.collector.flux import CollectedFlux
    from mirror.collector.git import CollectedGit
    from mirror.collector.pinning import Pins
    from mirror.trust.keys import Signer

# Charts, Flux fleets, git sources, signing and tar writing pull in a tenth of a second or more of imports each
# (YAML, cryptography, Helm's semver); they are imported where used, so a run that needs none skips them.

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
    charts: list[CollectedChart] = field(default_factory=list)
    moved: list[MovedTag] = field(default_factory=list)  # upstream references on another digest than in the base
    base: BaseChain | None = None  # the --since base, for the report's changes
    hosts: list[Contact] = field(default_factory=list)  # every host contacted, as the inventory lists them
    warnings: list[dict[str, str]] = field(default_factory=list)  # {code, message}: what the operator should know
    attached: dict[str, int] = field(default_factory=lambda: {"added": 0, "unchanged": 0})  # attached manifests
    acknowledged: list[dict[str, str]] = field(default_factory=list)  # {code, message, reason}: not shown
    pull_quotas: list[dict[str, object]] = field(default_factory=list)  # per registry host: manifest GETs, HEADs
    manifests_reused: int = 0  # manifests taken from the base bundle or the cache instead of a GET
    resumed: dict[str, int] = field(default_factory=dict)  # blobs a partial tar held: digest → size

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
            "base": self.inventory.base.to_json() if self.inventory.base else None,
            "expected": len(self.inventory.expected),
            "movedTags": [m.to_json() for m in self.moved],
            "hosts": [h.to_json() for h in self.hosts],
            "attached": dict(self.attached),
            "warnings": list(self.warnings),
            "acknowledged": list(self.acknowledged),
            "pullQuota": list(self.pull_quotas),
            "manifestsReused": self.manifests_reused,
        }


def _registry_settings(sets: Sequence[MirrorSet]) -> dict[str, RegistrySettings]:
    merged: dict[str, RegistrySettings] = {}
    for mirrorset in sets:
        merged.update(mirrorset.registries)
    return merged


def egress_policy(sets: Sequence[MirrorSet], *, allow_discovered: bool = False) -> EgressPolicy:
    """The hosts the MirrorSets name (registries, their endpoints, chart repositories, Git sources) and allow."""
    settings = _registry_settings(sets)
    named: list[str] = []

    def registry(host: str) -> None:
        named.append(host)
        with contextlib.suppress(UsageError):  # refused where the client is made, with the field named
            named.append(endpoint_for(host, settings.get(host)).netloc)  # docker.io's API host, or a proxy

    for mirrorset in sets:
        for host in mirrorset.registries:
            registry(host)
        for image in mirrorset.images:
            registry(image.reference.registry)
        for chart in mirrorset.charts:
            if chart.is_oci:
                registry(url_host(chart.repo))
            else:
                named.append(url_host(chart.repo))
        named += [url_host(g.url) for g in mirrorset.git]
        named += [url_host(f.url) for f in mirrorset.files if f.url is not None]
        named += [url_host(rule.target) for rule in mirrorset.rewrites]  # where rewritten URLs are fetched
    allowed = [pattern for mirrorset in sets for pattern in mirrorset.allowed_hosts]
    return EgressPolicy(named, allowed, allow_discovered=allow_discovered)


def _discovered_images(sources: Sequence[ImageSource]) -> list[tuple[str, str]]:
    """(registry, what led there) for every image a chart or a fleet named; listed images are named hosts."""
    found = []
    for image in sources:
        if image.via == "listed":
            continue
        how = "; ".join(image.found_by) if image.found_by else image.origin
        found.append((image.reference.registry, f"image {image.reference} ({how})"))
    return found


def _needed_by(image: ImageSource | ResolvedImage) -> str:
    """What asked for an image, for messages: the MirrorSet field, or the charts and Flux objects using it."""
    return "; ".join(image.found_by) or image.origin


def _image_sources(
    sets: Sequence[MirrorSet], charts: list[CollectedChart], flux: list[ImageSource]
) -> list[ImageSource]:
    """Listed images first, then Flux's, then those the charts use; each reference once, with every chart using it."""
    merged: dict[str, ImageSource] = {}
    for mirrorset in sets:
        for image in mirrorset.images:
            first = merged.setdefault(str(image.reference), image)
            if first is not image and image.selected_by:  # listed and chosen, or chosen by several selectors
                more = tuple(s for s in image.selected_by if s not in first.selected_by)
                merged[str(image.reference)] = replace(first, selected_by=first.selected_by + more)
    for image in flux:
        merged.setdefault(str(image.reference), replace(image, via="flux"))
    for chart in charts:
        for image in chart.images:
            key = str(image.reference)
            known = merged.get(key)
            if known is None:
                merged[key] = replace(image, found_by=(image.origin,), via="chart")
            else:
                # Listed, or found with evidence elsewhere: only a guess everywhere stays optional.
                optional = known.optional and image.optional
                merged[key] = replace(known, found_by=(*known.found_by, image.origin), optional=optional)
    return list(merged.values())


@dataclass
class _Gathered:
    charts: list[CollectedChart]
    images: list[ResolvedImage]
    git: list[CollectedGit]
    flux: list[CollectedFlux]
    attached: list[FoundAttached] = field(default_factory=list)
    files: list[CollectedFile] = field(default_factory=list)
    sets: Sequence[MirrorSet] = ()  # the MirrorSets with their tag selectors expanded


def _gather(
    sets: Sequence[MirrorSet],
    pool: ClientPool,
    fetcher: HttpFetcher,
    writer: LayoutWriter,
    graphs: GraphDownloader,
    *,
    jobs: int,
    limits: Limits,
    progress: Progress,
    flux_vars: dict[str, str],
    egress: EgressPolicy,
    chain: BaseChain | None = None,
    max_bundle_size: int | None = None,
    pins: Pins | None = None,
) -> _Gathered:
    """Git sources and Flux fleets, charts (downloaded, for their dependencies and images), then every image.

    A reference the upstream does not have does not stop the run: every one is gathered, and the run ends with
    all of them listed together (mirror.collector.unresolved)."""
    unresolved = Unresolved()
    # Each tag a selector chooses becomes an ordinary listed image, in every step below (verify rules included).
    sets = expand_tag_selectors(sets, pool, limits=limits, jobs=jobs, unresolved=unresolved)
    git: list[CollectedGit] = []
    fleets: list[CollectedFlux] = []
    flux_charts: list[ChartSource] = []
    flux_images: list[ImageSource] = []
    if any(s.git or s.flux for s in sets):
        git, fleets, flux_charts, flux_images = _gather_git_and_flux(
            sets,
            pool,
            fetcher,
            writer,
            jobs=jobs,
            limits=limits,
            progress=progress,
            flux_vars=flux_vars,
            chain=chain,
            egress=egress,
            unresolved=unresolved,
            max_bundle_size=max_bundle_size,
        )
    if pins is not None:
        pins.check_git(git)
    charts: list[CollectedChart] = []
    if flux_charts or any(s.charts for s in sets):
        from mirror.collector.charts import ChartCollector, chart_sources

        rewrites = [rule for mirrorset in sets for rule in mirrorset.rewrites]
        charts = ChartCollector(
            pool, fetcher, writer, graphs, limits, progress, egress=egress, rewrites=rewrites
        ).collect([*chart_sources(list(sets)), *(replace(c, via="flux") for c in flux_charts)], jobs, unresolved)
    if pins is not None:
        pins.check_charts(charts)
    sources = _image_sources(sets, charts, flux_images)
    if pins is not None:
        sources = pins.pin_found_images(sources)
    egress.require_discovered(_discovered_images(sources))
    files: list[CollectedFile] = []
    if any(s.files for s in sets):
        from mirror.collector.files import FileCollector, file_sources

        rewrites = [rule for mirrorset in sets for rule in mirrorset.rewrites]
        have = chain.have if chain is not None else None
        files = FileCollector(fetcher, writer, limits, progress, rewrites, have).collect(
            file_sources(sets), jobs, unresolved
        )

    needed_hosts = {image.reference.registry for image in sources if not image.optional}

    def resolve_one(image: ImageSource) -> ResolvedImage | None:
        try:
            with needed_for(f"image {image.reference}", _needed_by(image)):
                try:
                    return resolve_image(pool, image)
                except TransferError as exc:
                    # Caught within needed_for: the warning quotes the failure as the host gave it.
                    left_out = guess_left_out(image, exc, needed_hosts)
                    if left_out is None:
                        raise
                    progress.warn(left_out, IMAGE_GUESS_UNREACHABLE)
                    return None
        except SourceNotFoundError as exc:
            if not image.optional:
                unresolved.add(exc.message, image.origin)
                return None
            progress.warn(
                f"{image.reference}: not found upstream; {image.origin} only guessed its tag, so it is left out",
                IMAGE_GUESS_NOT_FOUND,
            )
            return None

    images = [i for i in run_parallel(sources, resolve_one, jobs) if i is not None]
    unresolved.check()
    if pins is not None:
        pins.check_images(images)
    progress.log(f"resolved {len(git)} git source(s), {len(charts)} chart(s) and {len(images)} image(s)")
    return _Gathered(charts, images, git, fleets, files=files, sets=sets)


def _gather_git_and_flux(
    sets: Sequence[MirrorSet],
    pool: ClientPool,
    fetcher: HttpFetcher,
    writer: LayoutWriter,
    *,
    jobs: int,
    limits: Limits,
    progress: Progress,
    flux_vars: dict[str, str],
    chain: BaseChain | None,
    egress: EgressPolicy,
    unresolved: Unresolved,
    max_bundle_size: int | None = None,
) -> tuple[list[CollectedGit], list[CollectedFlux], list[ChartSource], list[ImageSource]]:
    """Git sources and Flux fleets: what they carry, and the charts and images the fleets use."""
    from mirror.collector.flux import FluxCollector, oci_sources
    from mirror.collector.git import GitCollector
    from mirror.credentials import git_credential_set
    from mirror.flux.plan import FluxResolutionError
    from mirror.git.runner import Transport

    rewrites = [rule for mirrorset in sets for rule in mirrorset.rewrites]
    git_collector = GitCollector(
        writer,
        git_credential_set(named=[fetch_url(g.url, rewrites) for s in sets for g in s.git]),
        Transport(ca_file=fetcher.ca_file, proxy=fetcher.proxy).with_limits(limits).within_bundle_size(max_bundle_size),
        progress,
        egress,
        chain,
        rewrites,
    )
    # Flux reads its objects from a checkout of the carried git bundle, which must therefore be whole.
    flux_git = {entry.git for mirrorset in sets for entry in mirrorset.flux if entry.git}
    listed = [g for s in sets for g in s.git]

    def collect_listed(source: GitSource) -> CollectedGit:
        return git_collector.collect(source, whole=source.name in flux_git)

    attempt = unresolved.attempt(collect_listed)
    manifest_git = [g for g in run_parallel(listed, attempt, jobs) if g is not None]
    by_name = {g.source.name: g for g in manifest_git}
    fleets: list[CollectedFlux] = []
    flux_charts: list[ChartSource] = []
    flux_images: list[ImageSource] = []
    with tempfile.TemporaryDirectory(prefix="mirror-flux-") as scratch:
        flux = FluxCollector(
            writer,
            git_collector,
            by_name,
            Path(scratch),
            variables=flux_vars,
            progress=progress,
            egress=egress,
            rewrites=rewrites,
            pool=pool,
            limits=limits,
        )
        for mirrorset in sets:
            for entry in mirrorset.flux:
                if entry.git is not None and entry.git not in by_name:
                    continue  # its Git source is unresolved, and listed already
                try:
                    fleet = flux.collect(entry, mirrorset.platforms, unresolved)
                except FluxResolutionError as exc:
                    unresolved.extend(exc.problems)
                    continue
                fleets.append(fleet)
                flux_charts += fleet.plan.charts
                egress.require_discovered((a.reference.registry, f"OCI artifact {a.origin}") for a in fleet.plan.oci)
                flux_images += [*fleet.plan.images, *oci_sources(pool, fleet.plan.oci, unresolved)]
                progress.log(f"flux {fleet.source}: {len(fleet.plan.objects)} object(s)")
        git = flux.git
    for fleet in fleets:
        writer.put_bytes(fleet.digest, fleet.blob)
    return git, fleets, flux_charts, flux_images


def resolve(
    manifest_paths: Sequence[str | Path],
    *,
    jobs: int = 4,
    ca_file: str | None = None,
    limits: Limits = DEFAULT_LIMITS,
    progress: Progress | None = None,
    flux_vars: dict[str, str] | None = None,
    allow_discovered_hosts: bool = False,
    transport: httpx.BaseTransport | None = None,
    proxy: ProxySettings | None = None,
) -> list[dict[str, object]]:
    """Resolve every chart and image to exact digests and return the lock; touches no bundle.

    Charts are downloaded to a temporary directory to read their dependencies and images, then discarded.
    """
    progress = progress or Progress(quiet=True)
    sets = load_mirrorsets(manifest_paths)
    egress = egress_policy(sets, allow_discovered=allow_discovered_hosts)
    network = _Network(ca_file, limits, jobs, progress, egress, transport, proxy)
    with network.clients(sets) as (pool, fetcher), tempfile.TemporaryDirectory(prefix="mirror-resolve-") as scratch:
        writer = LayoutWriter(Path(scratch) / "layout")
        gathered = _gather(
            sets,
            pool,
            fetcher,
            writer,
            GraphDownloader(pool, writer, limits),
            jobs=jobs,
            limits=limits,
            progress=progress,
            flux_vars=flux_vars or {},
            egress=egress,
        )
    return [
        *(_flux_artifact(f).to_json() for f in gathered.flux),
        *(_git_artifact(g).to_json() for g in gathered.git),
        *(_chart_artifact(c).to_json() for c in gathered.charts),
        *(i.lock_entry() for i in gathered.images),
        *(f.lock_entry() for f in gathered.files),
    ]


def _index_entry(source: str, digest: str, media_type: str, size: int) -> dict[str, object]:
    return {"mediaType": media_type, "digest": digest, "size": size, "annotations": {REF_NAME: source}}


def _image_artifact(image: ResolvedImage) -> ArtifactRecord:
    return image.artifact


def _layout_document(writer: LayoutWriter) -> Callable[[str], ManifestDocument | None]:
    """A manifest the collect already wrote to the layout (checked on its way in), parsed again; None if absent."""

    def read(digest: str) -> ManifestDocument | None:
        if not writer.has(digest):
            return None
        raw = writer.read_bytes(digest)  # a manifest: capped at 4 MiB when it was fetched
        return parse_manifest(raw, declared_type=None, where=digest, digest=digest)

    return read


def _held_document(
    writer: LayoutWriter, known: KnownManifests | None, limits: Limits
) -> Callable[[str], ManifestDocument | None]:
    """A manifest from the layout, else held locally (the base bundle, the cache) and hashed again; else None."""
    in_layout = _layout_document(writer)

    def read(digest: str) -> ManifestDocument | None:
        document = in_layout(digest)
        if document is not None or known is None:
            return document
        raw = known.peek(digest, limits.max_manifest_bytes)
        if raw is None or sha256_digest(raw) != digest:
            return None
        try:
            return parse_manifest(raw, declared_type=None, where=digest, digest=digest)
        except MirrorError:
            return None

    return read


def _flux_artifact(fleet: CollectedFlux) -> ArtifactRecord:
    from mirror.flux.blob import FLUX_OBJECTS_MEDIA_TYPE

    return ArtifactRecord(
        "flux", fleet.source, fleet.digest, FLUX_OBJECTS_MEDIA_TYPE, len(fleet.blob), fleet.artifact_extra()
    )


def _git_artifact(git: CollectedGit) -> ArtifactRecord:
    from mirror.collector.git import GIT_BUNDLE_MEDIA_TYPE

    return ArtifactRecord("git", git.source.url, git.digest, GIT_BUNDLE_MEDIA_TYPE, git.size, git.artifact_extra())


def _chart_artifact(chart: CollectedChart) -> ArtifactRecord:
    document = chart.document
    return ArtifactRecord(
        "chart", chart.resolved.source_ref, document.digest, document.media_type, document.size, chart.artifact_extra()
    )


def _check_out(out: Path) -> None:
    if out.exists() or out.is_symlink():
        raise UsageError(f"{out}: already exists", hint="choose a new output path or remove the old bundle")
    if not out.parent.is_dir():
        raise UsageError(f"{out.parent}: output directory does not exist")
    require_writable_directory(out.parent, "bundle")


def _check_sizes(
    gathered: _Gathered,
    download: GraphDownloader,
    have: Mapping[str, object],
    digests: list[str],
    out: Path,
    max_bundle_size: int | None,
    on_disk: int = 0,
) -> None:
    """Refuse, before any blob is downloaded, a bundle larger than --max-bundle-size or than the free space
    (counting the room a partial tar being resumed already takes, `on_disk` bytes, as free).

    The figures are the sizes the upstream manifests declare (each already capped by max_blob_bytes).
    """
    if max_bundle_size is not None:
        declared = sum(size for digest, (size, _) in download.blobs.items() if digest not in have)
        declared += sum(g.size for g in gathered.git if g.carried)
        declared += sum(f.size for f in gathered.files if f"sha256:{f.sha256}" not in have)  # downloaded already
        if declared > max_bundle_size:
            raise UsageError(
                f"the bundle would hold {declared} bytes ({human_size(declared)}) as declared upstream, more than "
                f"--max-bundle-size {max_bundle_size} bytes ({human_size(max_bundle_size)}); nothing was downloaded",
                hint="raise --max-bundle-size, or collect fewer images or platforms",
            )
    needed = sum(download.blobs[digest][0] for digest in digests)
    free = shutil.disk_usage(out.parent).free
    if needed > free + on_disk:
        partial = f" (and {on_disk} bytes in the partial tar)" if on_disk else ""
        raise UsageError(
            f"{out.parent}: {needed} bytes ({human_size(needed)}) to download, but only {free} bytes "
            f"({human_size(free)}) are free on its file system{partial}; nothing was downloaded",
            hint="free some space or choose another output directory",
        )


def collect(
    manifest_paths: Sequence[str | Path],
    out: Path,
    *,
    jobs: int = 4,
    ca_file: str | None = None,
    progress: Progress | None = None,
    limits: Limits = DEFAULT_LIMITS,
    signing: CollectorSigning | None = None,
    flux_vars: dict[str, str] | None = None,
    since: Path | None = None,
    cache: BlobCache | None = None,
    split_size: int | None = None,
    max_bundle_size: int | None = None,
    allow_discovered_hosts: bool = False,
    on_hosts: Callable[[list[Contact]], None] | None = None,
    transport: httpx.BaseTransport | None = None,
    proxy: ProxySettings | None = None,
    lock: Path | None = None,
) -> CollectResult:
    """Plan (the output, the MirrorSets, the base), resolve, download, write and sign one bundle.

    on_hosts: given the hosts contacted when the network work ends, also when it fails (for --report).
    transport: stands in for the network of every registry and chart repository client (tests: the simulator).
    lock: a lock resolve --json printed; everything is collected exactly as it says (mirror.collector.pinning).
    """
    progress = progress or Progress(quiet=True)
    out = out.absolute()  # tools run elsewhere (git) are handed paths inside the staging directory
    _check_output(out, split_size)
    sets = load_mirrorsets(manifest_paths)
    pins = None
    if lock is not None:  # imported only here: a collect without --lock needs neither
        from mirror.collector.lockfile import read_lock
        from mirror.collector.pinning import apply_lock

        sets, pins = apply_lock(sets, read_lock(lock, limits), limits)
    progress.acknowledge(a for mirrorset in sets for a in mirrorset.acknowledge)
    check_one_source_per_repository(*listed_sources(sets), stage="nothing was contacted")
    chain = load_base(since, limits) if since is not None else None
    staging = _Staging.beside(out)
    egress = egress_policy(sets, allow_discovered=allow_discovered_hosts)
    known = KnownManifests(cache, since, limits, chain.reader if chain is not None else None)
    network = _Network(ca_file, limits, jobs, progress, egress, transport, proxy, known)
    with (
        contextlib.closing(known),
        network.clients(sets) as (pool, fetcher),
        _telling_hosts(egress, on_hosts),
        staging.discarded_on_failure(),
        staging.one_pass_tar(split_size, resume=cache is not None) as tar,
    ):
        writer = LayoutWriter(staging.directory, tar)
        download = GraphDownloader(pool, writer, limits, cache)
        progress.mark("resolve")
        gathered = _gather(
            sets,
            pool,
            fetcher,
            writer,
            download,
            jobs=jobs,
            limits=limits,
            progress=progress,
            flux_vars=flux_vars or {},
            egress=egress,
            chain=chain,
            max_bundle_size=max_bundle_size,
            pins=pins,
        )
        check_one_source_per_repository(*_resolved_sources(gathered), stage="no blob was downloaded")
        checked: list[UpstreamChecked] = []  # by _download, between the signatures' download and the layers'
        _download(
            gathered,
            download,
            writer,
            chain,
            out,
            max_bundle_size,
            pool=pool,
            limits=limits,
            jobs=jobs,
            progress=progress,
            check_signatures=lambda: checked.append(_check_upstream(gathered.sets, gathered, writer, limits, progress)),
            discover_attached=all(s.attached for s in sets),  # the MirrorSets of one collect agree on it
            signatures_first=has_rules(sets),
            known=known,
        )
        [upstream] = checked
        progress.mark("write")
        artifacts = upstream.artifacts
        incremental, moved = _leave_to_base(chain, gathered, download, writer, artifacts, progress, upstream.read)
        names = tuple(dict.fromkeys(s.name for s in sets))
        pull_quotas = pool.pull_quotas()
        inventory, volumes = _write_bundle(staging, writer, artifacts, egress, incremental, signing, split_size, names)
    write_beside(beside_path(out), inventory.to_bytes())  # as written inside, volumes listed
    written = volumes[0] if volumes else out  # a split bundle is opened by its head volume
    progress.log(
        f"wrote {written}: {len(gathered.charts)} chart(s), {len(gathered.images)} image(s), "
        f"{len(inventory.files)} files, {human_size(inventory.total_size)}"
    )
    progress.tell_acknowledged()
    downloaded = sum(download.fetched.values())
    unchanged = sum(1 for a in gathered.attached if chain is not None and chain.unchanged(a.record()))
    return CollectResult(
        written,
        inventory,
        gathered.images,
        downloaded,
        signing,
        gathered.charts,
        moved,
        chain,
        egress.contacts,
        list(progress.coded),
        {"added": len(gathered.attached) - unchanged, "unchanged": unchanged},
        list(progress.acknowledged),
        pull_quotas,
        known.reused,
        dict(download.resumed),
    )


def _resolved_sources(gathered: _Gathered) -> tuple[list[tuple[ArtifactRecord, str]], list[tuple[str, str]]]:
    """Every image and chart resolved, and every Git source, with where each came from, for the landing rule."""
    artifacts = [(_image_artifact(i), "; ".join(i.found_by) or i.origin) for i in gathered.images]
    artifacts += [(_chart_artifact(c), c.resolved.source.origin) for c in gathered.charts]
    artifacts += [(f.record(), f.source.origin) for f in gathered.files]
    return artifacts, [(g.source.url, g.source.origin) for g in gathered.git]


def _check_output(out: Path, split_size: int | None) -> None:
    _check_out(out)
    if split_size is not None:
        from mirror.bundle.splitting import check_split_out

        check_split_out(out)


@dataclass(frozen=True)
class _Staging:
    """Where a bundle is built beside OUT (a directory, and the tar it may become) before it is renamed into place."""

    out: Path
    directory: Path
    tar: Path

    @classmethod
    def beside(cls, out: Path) -> _Staging:
        return cls(out, temporary_name(out), out.with_name(f".{out.name}.partial"))

    @contextlib.contextmanager
    def one_pass_tar(self, split_size: int | None, *, resume: bool) -> Iterator[OnePassTar | None]:
        """For a .tar OUT (not split): the tar, open from the start so downloads can write into it, at its fixed
        partial name and locked (one collect per OUT). On failure it is kept for the next collect to resume from
        if `resume` (the cache is on) and it holds anything; else removed (docs/collector.md)."""
        if self.out.suffix != ".tar" or split_size is not None:
            yield None
            return
        from mirror.bundle.tarball import OnePassTar

        with OnePassTar.partial(self.tar, resume=resume) as tar:
            try:
                _check_out(self.out)  # a collect that ended a moment ago renamed its partial tar to OUT
                yield tar
            except BaseException:
                if not tar.finished and (not resume or tar.holds_nothing):
                    self.tar.unlink(missing_ok=True)  # still locked: nobody else's file
                raise

    @contextlib.contextmanager
    def discarded_on_failure(self) -> Iterator[None]:
        try:
            yield
        except BaseException:
            _discard_staging(self.directory)
            raise


@dataclass(frozen=True)
class _Network:
    """How collect and resolve reach the network: the registry client pool and the chart repository fetcher."""

    ca_file: str | None
    limits: Limits
    jobs: int
    progress: Progress
    egress: EgressPolicy
    transport: httpx.BaseTransport | None = None  # None: the real network, through mirror.netguard
    proxy: ProxySettings | None = None
    manifests: ManifestStore | None = None  # collect's manifests held locally (no GET for them)

    @contextlib.contextmanager
    def clients(self, sets: Sequence[MirrorSet]) -> Iterator[tuple[ClientPool, HttpFetcher]]:
        def log(message: str) -> None:  # the clients' retries
            self.progress.warn(message, TRANSFER_RETRY)

        with (
            ClientPool(
                _registry_settings(sets),
                ca_file=self.ca_file,
                limits=self.limits,
                max_connections=self.jobs * 2,
                log=log,
                egress=self.egress,
                transport=self.transport,
                proxy=self.proxy,
                manifests=self.manifests,
            ) as pool,
            HttpFetcher(
                ca_file=self.ca_file,
                limits=self.limits,
                log=log,
                egress=self.egress,
                transport=self.transport,
                credentials=_chart_credentials(sets),
                proxy=self.proxy,
            ) as fetcher,
        ):
            yield pool, fetcher


def _chart_credentials(sets: Sequence[MirrorSet]) -> ChartCredentials:
    """Bound to the origins the MirrorSets' HTTP chart repositories are fetched from (after spec.rewrite)."""
    rewrites = [rule for mirrorset in sets for rule in mirrorset.rewrites]
    return chart_credentials(named=[fetch_url(c.repo + "/", rewrites) for s in sets for c in s.charts if not c.is_oci])


def _download(
    gathered: _Gathered,
    download: GraphDownloader,
    writer: LayoutWriter,
    chain: BaseChain | None,
    out: Path,
    max_bundle_size: int | None,
    *,
    pool: ClientPool,
    limits: Limits,
    jobs: int,
    progress: Progress,
    check_signatures: Callable[[], None],
    discover_attached: bool = True,
    signatures_first: bool = True,
    known: KnownManifests | None = None,
) -> None:
    """Every image graph walked, then what is attached to them (unless spec.attached is false), their signatures
    downloaded and checked (where verify rules apply), the sizes checked, then every blob the bundle and its base
    lack downloaded."""

    def walk(image: ResolvedImage) -> None:
        with needed_for(f"image {image.source}", _needed_by(image)):
            download.walk(image.source, image.document)

    run_parallel(gathered.images, walk, jobs)
    if discover_attached:
        _carry_attached(gathered, pool, download, writer, limits=limits, jobs=jobs, progress=progress)
    else:
        progress.log(
            "spec.attached is false: what upstream attached to the images (signatures, SBOMs) is not looked for"
        )
    # Signature layers first, even those the base carried: the upstream signature check reads them from this
    # collect's layout before any other layer is downloaded, and an incremental bundle keeps them. Only those it
    # can read (a larger one verifies nothing), and only once the sizes are checked: they count like any blob.
    # Without verify rules nothing reads them: they come with the other blobs, saving a round of requests.
    signatures: list[str] = []
    if signatures_first:
        from mirror.supplychain.evidence import signature_layers  # only verify rules read signatures here

        signatures = sorted(
            {
                layer.digest
                for a in gathered.attached
                for layer in signature_layers(a.document)
                if layer.size <= limits.max_sigstore_bundle_bytes
            }
        )
    if chain is not None:
        chain.add_unchanged_graphs(_graphs(gathered), _held_document(writer, known, limits))
    have = chain.have if chain else {}
    digests = sorted(d for d in download.blobs if not writer.has(d) and d not in have)
    on_disk = writer.tar.allocated if writer.tar is not None else 0  # a partial tar's room, written over in place
    _check_sizes(gathered, download, have, sorted({*digests, *signatures}), out, max_bundle_size, on_disk)
    needed_by = {str(image.source): _needed_by(image) for image in gathered.images}

    def fetch(digest: str) -> None:
        source = download.blobs[digest][1]  # the first image found to use it
        with needed_for(f"blob {digest} of image {source}", needed_by.get(str(source), "")):
            download.fetch(digest, progress)

    run_parallel(signatures, fetch, jobs)
    check_signatures()
    digests = [d for d in digests if not writer.has(d)]
    writer.reserve({d: download.blobs[d][0] for d in digests})  # a .tar OUT: written straight into it
    progress.start("download", sum(download.blobs[d][0] for d in digests))
    run_parallel(digests, fetch, jobs)
    progress.finish()
    if download.resumed:
        kept = sum(download.resumed.values())
        progress.log(f"resumed {len(download.resumed)} blob(s), {human_size(kept)}, from the partial tar")


def _check_upstream(
    sets: Sequence[MirrorSet], gathered: _Gathered, writer: LayoutWriter, limits: Limits, progress: Progress
) -> UpstreamChecked:
    """The MirrorSets' verify rules over the images (exit 3 if one fails), before any layer is downloaded."""
    upstream = verify_upstream(sets, _artifacts(gathered), writer, limits)
    count = sum(1 for image in upstream.images if image.rules)
    if count:
        progress.log(f"verified the upstream signatures of {count} image(s)")
    return upstream


def _carry_attached(
    gathered: _Gathered,
    pool: ClientPool,
    download: GraphDownloader,
    writer: LayoutWriter,
    *,
    limits: Limits,
    jobs: int,
    progress: Progress,
) -> None:
    """What is attached to every image and OCI chart manifest carried, found and walked into the layout.

    A narrowed index exists nowhere upstream: what is attached to the upstream index is looked for instead, and
    carried with a warning (it will point at an index the target does not have), together with that index's
    exact bytes, so that the narrowing can be checked against the index the signatures cover.
    """
    read = _layout_document(writer)
    subjects = []
    for image in gathered.images:
        repository = ImageReference(image.source.registry, image.source.repository)
        for digest in [image.source_digest, *carried_manifests(image.document, read, max_depth=limits.max_graph_depth)]:
            subjects.append(Subject(repository, digest, str(image.source)))
    for chart in gathered.charts:
        if chart.resolved.reference is not None:
            reference = chart.resolved.reference
            repository = ImageReference(reference.registry, reference.repository)
            subjects.append(Subject(repository, chart.document.digest, chart.resolved.source_ref))
    finder = AttachedFinder(pool, limits, lambda message: progress.warn(message, ATTACHED_TAGS_UNLISTED))
    found = find_attached(finder, subjects, limits, jobs)

    def walk(attached: FoundAttached) -> None:
        with needed_for(f"manifest {attached.document.digest} attached to image {attached.image}"):
            download.walk(attached.repository, attached.document)

    run_parallel(found, walk, jobs)
    gathered.attached = found
    subjects_found = Counter((a.repository.name, a.subject) for a in found)  # not a scan of `found` per image
    for image in gathered.images:
        if image.upstream is None:
            continue
        count = subjects_found[(image.source.name, image.source_digest)]
        if count:
            message = (
                f"{image.source}: {count} attached manifest(s) (signatures, attestations, SBOMs) point at the "
                f"upstream index {image.source_digest}, which the platform filter narrowed to {image.digest}; "
                "they are carried, with the upstream index's bytes, but the target will not have that index"
            )
            progress.warn(message, ATTACHED_SUBJECT_FILTERED)
            writer.put_bytes(image.source_digest, image.upstream.raw)


def _artifacts(gathered: _Gathered) -> list[ArtifactRecord]:
    return [
        *(_flux_artifact(f) for f in gathered.flux),
        *(_git_artifact(g) for g in gathered.git),
        *(_chart_artifact(c) for c in gathered.charts),
        *(_image_artifact(i) for i in gathered.images),
        *(f.record() for f in gathered.files),
        *(a.record() for a in gathered.attached),
    ]


def _graphs(gathered: _Gathered) -> list[Graph]:
    """Every artifact that lands as a manifest, with that manifest: images, files, charts, attached manifests."""
    graphs = [(_image_artifact(i), i.document) for i in gathered.images]
    graphs += [(f.record(), f.document) for f in gathered.files]
    graphs += [(_chart_artifact(c), c.document) for c in gathered.charts]
    graphs += [(a.record(), a.document) for a in gathered.attached]
    return graphs


def _leave_to_base(
    chain: BaseChain | None,
    gathered: _Gathered,
    download: GraphDownloader,
    writer: LayoutWriter,
    artifacts: list[ArtifactRecord],
    progress: Progress,
    signatures_read: set[str],
) -> tuple[dict[str, object], list[MovedTag]]:
    """--since: what the base already carries leaves the layout; the inventory's base and expected, moved tags.

    What the upstream signature check read (signatures, trusted roots) stays: the import checks them again."""
    if chain is None:
        return {}, []
    needed = {d: size for d, (size, _) in download.blobs.items()}
    needed.update({g.digest: g.size for g in gathered.git if not g.carried})
    needed.update({f"sha256:{f.sha256}": f.size for f in gathered.files})  # left out of the layout if the base has it
    graphs = _graphs(gathered)
    read = _layout_document(writer)
    keep = [
        *(f.digest for f in gathered.flux),
        *chain.changed_manifests(graphs, read),
        *signatures_read,
    ]
    in_graphs = {*download.blobs, *download.walked, *(b.digest for _, d in graphs for b in d.blobs)}
    in_graphs.update(d.digest for _, d in graphs)
    expected = to_list(leave_to_base(chain, writer, needed, keep=keep), artifacts, graphs, read, writer.has, in_graphs)
    moved = chain.moved(artifacts)
    for change in moved:
        progress.warn(change.warning(), UPSTREAM_TAG_MOVED)
    return {"base": chain.record, "expected": expected}, moved


def _write_bundle(
    staging: _Staging,
    writer: LayoutWriter,
    artifacts: list[ArtifactRecord],
    egress: EgressPolicy,
    incremental: dict[str, object],
    signing: CollectorSigning | None,
    split_size: int | None,
    mirror_sets: tuple[str, ...],
) -> tuple[Inventory, list[Path]]:
    """The inventory written and signed, then the layout renamed to OUT, written as a tar, or split in volumes."""
    created = dt.datetime.now(dt.UTC).replace(microsecond=0)
    inventory = writer.finish(
        # Git bundles are blobs of the layout, listed in the inventory; index.json is for OCI content.
        [
            _index_entry(a.source, a.digest, a.media_type, a.size)
            for a in artifacts
            if a.kind not in ("git", "flux", TRUSTED_ROOT_KIND)
            and writer.has(a.digest)  # the base chain has the others
        ],
        {
            "bundle_id": str(uuid.uuid4()),
            "created": format_time(created),
            "tool": f"mirror {__version__}",
            "artifacts": tuple(artifacts),
            "hosts": tuple(HostRecord(c.host, c.how, c.plain_http) for c in egress.contacts),
            "mirror_sets": mirror_sets,  # what the officer's report is titled by
            **incremental,
        },
    )
    out = staging.out
    if split_size is not None:  # signed inside, once the inventory lists the volumes
        from mirror.bundle.splitting import write_split

        sign = (lambda i: [_sign(staging.directory, i, created, signing)]) if signing else (lambda i: [])
        inventory, volumes = write_split(staging.directory, inventory, out, split_size, sign)
        shutil.rmtree(staging.directory)
        return inventory, volumes
    signatures = [_sign(staging.directory, inventory, created, signing)] if signing else []
    if writer.tar is not None:
        from mirror.bundle.tarball import append_staged

        append_staged(writer.tar, staging.directory, inventory, signatures)
        writer.tar.finish(out)
        shutil.rmtree(staging.directory)
    else:
        staging.directory.rename(out)
    return inventory, []


@contextlib.contextmanager
def _telling_hosts(egress: EgressPolicy, on_hosts: Callable[[list[Contact]], None] | None) -> Iterator[None]:
    try:
        yield
    finally:
        if on_hosts is not None:
            on_hosts(egress.contacts)


def _discard_staging(staging: Path) -> None:
    """Remove the staging area of a failed or interrupted collect.

    After an interrupt, a worker thread may still be unwinding (its transfer cut, its temporary file being
    removed) while the tree is deleted; a removal that raced with it is tried again for a moment.
    """
    for _ in range(10):
        shutil.rmtree(staging, ignore_errors=True)
        if not staging.exists():
            return
        time.sleep(0.2)


def _sign(staging: Path, inventory: Inventory, created: dt.datetime, signing: CollectorSigning) -> str:
    from mirror.bundle.signatures import add_envelope
    from mirror.trust.sign import sign_collection

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
