"""Validated, frozen types for a MirrorSet."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from mirror.egress import HostPattern
from mirror.manifest.tagselect import TagSelector
from mirror.oci.platform import Platform
from mirror.oci.reference import ImageReference
from mirror.registry.endpoint import RegistrySettings
from mirror.supplychain.rules import VerifyRule
from mirror.warncodes import Acknowledgement


@dataclass(frozen=True)
class ImageSource:
    reference: ImageReference
    platforms: tuple[Platform, ...] | None  # None keeps every platform of a multi-arch image
    origin: str  # file and field it came from, for messages
    found_by: tuple[str, ...] = ()  # the charts that use it, and how each was found to
    optional: bool = False  # only inferred (a tag guessed from appVersion): skipped with a warning if absent
    via: str = "listed"  # how it was found: listed, chart (discovery) or flux (a Flux object); kept in the inventory
    # Its own `verify:` rules, which replace spec.verify for it (an empty tuple exempts it); None: spec.verify's.
    verify: tuple[VerifyRule, ...] | None = None
    # `tags:` (mirror.manifest.tagselect): the reference names a repository, and the selector its tags; before
    # resolution each chosen tag becomes a source of its own, which keeps the selectors that chose it.
    tags: TagSelector | None = None
    selected_by: tuple[TagSelector, ...] = ()
    # collect --lock: the digest the lock fixes (the upstream one, before a platform filter narrows an index).
    locked_digest: str | None = None


@dataclass(frozen=True)
class ChartImages:
    """Which images of a chart to carry: discovered ones (minus `exclude` globs) plus `include`."""

    discover: bool = False
    include: tuple[ImageReference, ...] = ()
    exclude: tuple[str, ...] = ()


@dataclass(frozen=True)
class ChartValues:
    """What `helm template` renders a chart with in discovery (spec.charts[].values, valuesFiles, kubeVersion,
    apiVersions); the values also feed the walk of the chart's values. See docs/mirrorset.md."""

    files: tuple[tuple[str, bytes], ...] = ()  # each values file: (the path as given, its bytes), in order
    inline: bytes = b""  # the inline `values:` mapping as YAML, given to helm after the files
    kube_version: str | None = None
    api_versions: tuple[str, ...] = ()

    @property
    def given(self) -> bool:
        return self != ChartValues()


@dataclass(frozen=True)
class ChartSource:
    name: str
    repo: str  # https://host/path (an index.yaml repository) or oci://host/path
    version: str | None  # a Helm version constraint or an exact version; None takes the newest stable
    images: ChartImages
    dependencies: bool  # also collect the charts it depends on from other repositories
    platforms: tuple[Platform, ...] | None  # for the images it uses
    origin: str
    via: str = "listed"  # listed, or flux (a Flux object); dependencies are marked by requiredBy
    # `version` is a Flux OCIRepository's ref.semver: chosen over the tags as Flux reads them (a `v` prefix
    # accepted), not as Helm lists OCI tags.
    flux_semver: bool = False
    values: ChartValues = ChartValues()

    @property
    def is_oci(self) -> bool:
        return self.repo.startswith("oci://")


@dataclass(frozen=True)
class UrlRewrite:
    """`spec.rewrite[]`: a URL starting with `source` is fetched at `target` + the rest of it."""

    source: str  # the `from` prefix
    target: str  # the `to` prefix
    origin: str


@dataclass(frozen=True)
class GitSource:
    name: str  # how flux entries refer to it
    url: str  # https://, http:// or ssh:// without credentials
    ref: Mapping[str, str]  # exactly one of branch, tag, semver, commit, name; empty: the remote's HEAD
    origin: str
    locked_commit: str | None = None  # collect --lock: a branch is carried at this commit, wherever it is now


@dataclass(frozen=True)
class FluxEntry:
    git: str | None  # a git source of the same MirrorSet whose path is read, or None for a local directory
    path: str  # inside the Git source, or (local) the directory, resolved against the manifest file
    origin: str
    directory: Path | None = None  # the local directory, when git is None
    git_repository: tuple[str, str] | None = None  # (namespace, name) of the GitRepository Flux knows it as


@dataclass(frozen=True)
class FileSource:
    """`spec.files[]`: one file carried as an OCI artifact (mirror.collector.files; docs/mirrorset.md)."""

    name: str  # the file name it is written under, and its landing repository files/<name>
    source: str  # its identity in the inventory and the lock: the URL, or the `path:` as written
    url: str | None  # http(s), fetched through the egress rules; None for a local file
    path: Path | None  # a local file, resolved against the MirrorSet file; None for a URL
    sha256: str | None  # lowercase hex; None: trust on first use (a URL) or unchecked (a local file)
    tag: str  # the tag it lands under
    origin: str
    # collect --lock: where the sha256 of a trust-on-first-use entry came from (`LOCK (artifacts[3])`), for messages
    locked_in: str | None = None


@dataclass(frozen=True)
class MirrorSet:
    name: str
    path: str
    platforms: tuple[Platform, ...] | None
    registries: Mapping[str, RegistrySettings] = field(default_factory=dict)
    images: tuple[ImageSource, ...] = ()
    charts: tuple[ChartSource, ...] = ()
    git: tuple[GitSource, ...] = ()
    flux: tuple[FluxEntry, ...] = ()
    # spec.allowedHosts: hosts the collector may contact beyond those named above (see mirror.egress).
    allowed_hosts: tuple[HostPattern, ...] = ()
    # spec.rewrite: Git and HTTP chart repository URLs fetched through other prefixes (mirror.urlrewrite).
    rewrites: tuple[UrlRewrite, ...] = ()
    # spec.verify: upstream signatures required at collect (mirror.supplychain.rules), and spec.trustedRoot.
    verify: tuple[VerifyRule, ...] = ()
    trusted_root: Path | None = None
    # spec.attached: whether collect looks for what upstream attached to the images (signatures, SBOMs...).
    attached: bool = True
    # spec.acknowledge: warnings counted, not repeated (mirror.warncodes).
    acknowledge: tuple[Acknowledgement, ...] = ()
    # spec.files: single files (install scripts, binaries) carried as OCI artifacts.
    files: tuple[FileSource, ...] = ()
