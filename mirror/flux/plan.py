"""The records a Flux fleet resolves into (FluxPlan and what it holds), and the Flux API vocabulary.

mirror/flux/walk.py builds them; the collector reads them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from mirror.errors import UsageError
from mirror.flux.objects import (
    FluxObject,
)
from mirror.manifest.model import ChartSource, GitSource, ImageSource
from mirror.oci.reference import ImageReference

SOURCE_GROUP = "source.toolkit.fluxcd.io"
HELM_GROUP = "helm.toolkit.fluxcd.io"
KUSTOMIZE_GROUP = "kustomize.toolkit.fluxcd.io"
EXTENSIONS_GROUP = "source.extensions.fluxcd.io"
OPERATOR_GROUP = "fluxcd.controlplane.io"
HELM_CHART_LAYER = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
DEFAULT_NAMESPACE = "default"  # where an object without a namespace is applied, as kubectl and Flux do
FLUX_DEFAULT_BRANCH = "master"
GIT_REF_FIELDS = ("commit", "name", "semver", "tag", "branch")  # Flux's precedence


# --- Records --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class SourceKey:
    """A Flux source as references name it: kind, namespace and name."""

    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"


@dataclass(frozen=True)
class OciArtifact:
    """An OCIRepository's artifact. `reference` is registry and repository as parse_reference normalises them,
    with the tag and/or digest Flux would use; when `semver` is set, the caller picks the newest upstream tag the
    constraint allows (and that `semver_filter`, a regular expression over tags, keeps), so `reference` has
    neither tag nor digest."""

    key: SourceKey
    url: str  # oci://host/path as written
    reference: ImageReference
    semver: str | None
    semver_filter: str | None
    layer_media_type: str | None
    is_chart: bool
    origin: str

    @property
    def pinned(self) -> bool:
        return self.semver is None


@dataclass(frozen=True)
class GitChart:
    """A chart kept in a carried Git repository: its images are found only if the caller reads it there."""

    source: SourceKey
    path: str
    version: str | None
    origin: str


@dataclass(frozen=True)
class FollowedKustomization:
    """One Kustomization's (source, path), and what became of it: `read`, `seen` (that build was read
    already: a cycle or a duplicate), `unavailable` (the callback had nothing), `failed` or `unsupported`."""

    key: SourceKey
    source: SourceKey | None
    path: str
    variables: Mapping[str, str] | None  # None: no substitution for that build
    status: str
    origin: str


class FluxResolutionError(UsageError):
    """Flux objects that reference something that cannot be resolved; `problems` lists each one."""

    problems: list[str]

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__(
            f"{len(problems)} Flux problem(s)",
            hint="define the missing objects, pass --flux-var KEY=VALUE for unset variables, or remove the reference",
        )
        self.problems = list(problems)  # the command line prints each on its own line, escaped

    def __str__(self) -> str:
        return self.message + ":\n" + "\n".join(f"  - {p}" for p in self.problems)


@dataclass
class FluxPlan:
    objects: list[FluxObject] = field(default_factory=list)  # every object collected, patched and substituted
    git: list[GitSource] = field(default_factory=list)
    charts: list[ChartSource] = field(default_factory=list)
    oci: list[OciArtifact] = field(default_factory=list)
    images: list[ImageSource] = field(default_factory=list)
    git_charts: list[GitChart] = field(default_factory=list)
    kustomizations: list[FollowedKustomization] = field(default_factory=list)
    git_by_key: dict[SourceKey, GitSource] = field(default_factory=dict)
    oci_by_key: dict[SourceKey, OciArtifact] = field(default_factory=dict)
    helm_repositories: dict[SourceKey, str] = field(default_factory=dict)  # key → https://… or oci://…
    chart_for: dict[SourceKey, ChartSource] = field(default_factory=dict)  # HelmRelease/HelmChart → chart
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def check(self) -> None:
        """Raise FluxResolutionError when anything could not be resolved."""
        if self.problems:
            raise FluxResolutionError(self.problems)

    def image_registries(self) -> list[str]:
        """The registries workload images come from, for mirror_configs."""
        return sorted({image.reference.registry for image in self.images})


ReadTree = Callable[[SourceKey, str], Sequence[FluxObject] | None]
