"""Collecting Flux fleets: the objects under a path, every source they use, and the objects themselves.

See docs/collector.md and docs/flux.md.
"""

from __future__ import annotations

import hashlib
import tempfile
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from mirror.bundle.layout import LayoutWriter
from mirror.collector.git import CollectedGit, GitCollector
from mirror.collector.unresolved import Unresolved
from mirror.egress import EgressPolicy, url_host
from mirror.errors import RegistryHTTPError, SourceNotFoundError, needed_for
from mirror.flux.artifact import fetch_artifact
from mirror.flux.blob import objects_blob
from mirror.flux.giturls import SshUrlMap
from mirror.flux.kustomize import read_tree
from mirror.flux.objects import FluxObject
from mirror.flux.patterns import compile_upstream
from mirror.flux.plan import FluxPlan, OciArtifact, SourceKey
from mirror.flux.tags import select_flux_tag
from mirror.flux.walk import FluxWalker
from mirror.git.runner import Transport, run_git
from mirror.limits import DEFAULT_LIMITS, Limits
from mirror.manifest.model import FluxEntry, GitSource, ImageSource, UrlRewrite
from mirror.oci.reference import ImageReference
from mirror.progress import Progress
from mirror.registry.pool import ClientPool
from mirror.urlrewrite import fetch_url
from mirror.warncodes import FLUX_FLEET, FLUX_GIT_CHART
from mirror.yamlio import YamlBudgetError


@dataclass(frozen=True)
class CollectedFlux:
    entry: FluxEntry
    source: str  # where the root path was read: "<git url>:<path>" or the directory
    plan: FluxPlan
    blob: bytes

    @property
    def digest(self) -> str:
        return "sha256:" + hashlib.sha256(self.blob).hexdigest()

    def artifact_extra(self) -> dict[str, object]:
        return {"path": self.entry.path, "git": self.entry.git, "objects": len(self.plan.objects)}


class FluxCollector:
    def __init__(
        self,
        writer: LayoutWriter,
        git: GitCollector,
        manifest_git: dict[str, CollectedGit],
        scratch: Path,
        *,
        variables: dict[str, str],
        progress: Progress,
        egress: EgressPolicy | None = None,
        rewrites: Sequence[UrlRewrite] = (),
        pool: ClientPool | None = None,
        limits: Limits = DEFAULT_LIMITS,
    ) -> None:
        self._egress = egress
        self._rewrites = tuple(rewrites)
        self._pool = pool  # OCIRepository artifacts that Kustomizations build from are read through it
        self._limits = limits
        self._artifacts: dict[str, Path] = {}
        self.writer = writer
        self._git_collector = git
        self._by_name = manifest_git
        self._scratch = scratch
        self._variables = variables
        self._progress = progress
        self._lock = threading.Lock()
        self._git: dict[tuple[str, tuple[tuple[str, str], ...]], CollectedGit] = {
            (g.source.url, tuple(sorted(g.source.ref.items()))): g for g in manifest_git.values()
        }
        self._checkouts: dict[str, Path] = {}

    @property
    def git(self) -> list[CollectedGit]:
        return list(self._git.values())

    def git_source(self, source: GitSource) -> CollectedGit:
        key = (source.url, tuple(sorted(source.ref.items())))
        with self._lock:
            known = self._git.get(key)
        if known is None:
            if self._egress is not None:  # a GitRepository of the fleet: reached through discovery
                fetch = fetch_url(source.url, self._rewrites)
                self._egress.require_discovered([(url_host(fetch), f"Git source {source.origin}")])
            known = self._git_collector.collect(source, whole=True)  # Flux reads a checkout of it
            with self._lock:
                known = self._git.setdefault(key, known)
        return known

    def _checkout(self, collected: CollectedGit) -> Path:
        """A work tree of the carried commit, cloned from the carried bundle itself."""
        with self._lock:
            if collected.digest in self._checkouts:
                return self._checkouts[collected.digest]
        target = self._scratch / collected.digest.removeprefix("sha256:")
        bundle = self.writer.blob_location(collected.digest)
        local = Transport(allow_file=True)
        run_git(["clone", "--quiet", "--no-checkout", str(bundle), str(target)], transport=local, network=False)
        run_git(
            ["checkout", "--quiet", "--detach", collected.resolved.commit], cwd=target, transport=local, network=False
        )
        with self._lock:
            self._checkouts[collected.digest] = target
        return target

    def _artifact_tree(self, artifact: OciArtifact, notes: list[str]) -> Path:
        """The unpacked content of an OCIRepository's artifact (mirror.flux.artifact), once per reference."""
        assert self._pool is not None
        if self._egress is not None:  # an OCIRepository of the fleet: reached through discovery
            self._egress.require_discovered([(artifact.reference.registry, f"OCI artifact {artifact.origin}")])
        reference = _oci_source((self._pool, artifact)).reference  # a semver resolved as Flux resolves it
        key = f"{reference}\n{artifact.layer_media_type}"
        with self._lock:
            known = self._artifacts.get(key)
        if known is not None:
            return known
        parent = self._scratch / "artifacts"
        parent.mkdir(exist_ok=True)
        directory = Path(tempfile.mkdtemp(dir=parent)) / "content"  # fresh: a failed read leaves nothing in the way
        notes += fetch_artifact(self._pool, artifact, reference, directory, self._limits)
        with self._lock:
            self._artifacts[key] = directory
        return directory

    def collect(self, entry: FluxEntry, platforms: tuple | None, unresolved: Unresolved | None = None) -> CollectedFlux:
        """The fleet of `entry`; a GitRepository missing upstream goes to `unresolved` when given (else raises)."""
        try:
            return self._collect(entry, platforms, unresolved)
        except YamlBudgetError as exc:  # files are named inside their source: say which fleet read them
            raise YamlBudgetError(f"{entry.origin}: {exc.message}", hint=exc.hint) from None

    def _collect(self, entry: FluxEntry, platforms: tuple | None, unresolved: Unresolved | None) -> CollectedFlux:
        notes: list[str] = []
        if entry.git is not None:
            collected = self._by_name[entry.git]
            root = self._checkout(collected)
            source = f"{collected.source.url}:{entry.path}"
            objects = read_tree(root, entry.path, warnings=notes, limits=self._limits)
        else:
            assert entry.directory is not None
            source = str(entry.directory)
            objects = read_tree(entry.directory, ".", warnings=notes, limits=self._limits)
        walker: FluxWalker

        def read(key: SourceKey, path: str) -> list[FluxObject] | None:
            designated = walker.source(key)
            if isinstance(designated, OciArtifact) and self._pool is not None:
                tree = self._artifact_tree(designated, notes)
                try:
                    return read_tree(tree, path, warnings=notes, limits=self._limits)
                except YamlBudgetError as exc:
                    raise YamlBudgetError(f"{designated.url}: {exc.message}", hint=exc.hint) from None
            if not isinstance(designated, GitSource):
                return None  # Kustomizations from buckets are not followed
            try:
                return read_tree(self._checkout(self.git_source(designated)), path, warnings=notes, limits=self._limits)
            except YamlBudgetError as exc:
                raise YamlBudgetError(f"{designated.url}: {exc.message}", hint=exc.hint) from None

        external: dict[SourceKey, GitSource] = {}
        root_key = None
        if entry.git is not None and entry.git_repository is not None:
            # The bootstrap's own repository: its GitRepository often lives only in the cluster (gotk-sync).
            root_key = SourceKey("GitRepository", *entry.git_repository)
            external[root_key] = self._by_name[entry.git].source
        listed = [g.source.url for g in self._by_name.values()]
        walker = FluxWalker(
            read,
            variables=self._variables,
            platforms=platforms,
            external=external,
            ssh_urls=SshUrlMap(listed, self._rewrites),
        )
        plan = walker.walk(objects, source=root_key, path=entry.path, strict=True)
        for note in [*notes, *plan.warnings]:
            self._progress.warn(f"{entry.origin}: {note}", FLUX_FLEET)
        if self._egress is not None:
            known = {g.source.url for g in self.git}
            self._egress.require_discovered(
                (url_host(fetch_url(g.url, self._rewrites)), f"Git source {g.origin}")
                for g in plan.git
                if g.url not in known
            )
        collect_git = self.git_source if unresolved is None else unresolved.attempt(self.git_source)
        for git in plan.git:
            collect_git(git)
        for chart in plan.git_charts:
            self._progress.warn(
                f"{chart.origin}: a chart from a Git repository travels in that repository only", FLUX_GIT_CHART
            )
        blob = objects_blob(plan.objects, max_bytes=self._limits.max_flux_objects_bytes, where=entry.origin)
        return CollectedFlux(entry, source, plan, blob)


def oci_sources(
    pool: ClientPool, artifacts: Sequence[OciArtifact], unresolved: Unresolved | None = None
) -> list[ImageSource]:
    """OCIRepository artifacts as images to copy: a semver ref is resolved over the upstream tags here.

    An artifact the upstream does not have raises SourceNotFoundError, or goes to `unresolved` when given."""
    if unresolved is not None:
        found = [unresolved.attempt(_oci_source)((pool, artifact)) for artifact in artifacts]
        return [source for source in found if source is not None]
    return [_oci_source((pool, artifact)) for artifact in artifacts]


def _oci_source(item: tuple[ClientPool, OciArtifact]) -> ImageSource:
    with needed_for(f"OCI artifact {item[1].reference}", item[1].origin):
        return _resolve_oci_source(item)


def _resolve_oci_source(item: tuple[ClientPool, OciArtifact]) -> ImageSource:
    pool, artifact = item
    reference = artifact.reference
    if artifact.semver is not None:
        # Streamed page by page into the selection: only the best tag so far is kept.
        tags: Iterable[str] = pool.for_host(reference.registry).iter_tags(reference.repository)
        if artifact.semver_filter:
            pattern = compile_upstream(artifact.semver_filter, f"{artifact.origin}: spec.ref.semverFilter")
            tags = (t for t in tags if pattern.search(t))
        try:
            choice = select_flux_tag(tags, artifact.semver)
        except RegistryHTTPError as exc:
            if exc.status != 404:
                raise
            raise SourceNotFoundError(f"{artifact.origin}: {reference.name} not found upstream") from exc
        if choice.tag is None:
            raise SourceNotFoundError(
                f"{artifact.origin}: no tag of {reference.name} satisfies {artifact.semver!r}; "
                + choice.describe_seen(),
                hint="tags are read as Flux reads them: MAJOR.MINOR.PATCH with an optional v prefix",
            )
        reference = ImageReference(reference.registry, reference.repository, choice.tag)
    return ImageSource(reference, None, artifact.origin)
