"""Resolving the objects of a Flux fleet into what must be carried: git sources, charts, OCI artifacts and
workload images (FleetResolution, the resolving half of flux.walk.FluxWalker):

- GitRepository → GitSource, named `<namespace>.<name>` (unique: namespaces cannot hold a dot), with the one
  ref Flux uses by its precedence commit > name > semver > tag > branch (commit keeps its branch: Flux checks
  the commit out of that branch). An empty ref is `{"branch": "master"}`: that is the branch source-controller
  checks out (its documented default), so the high side gets exactly what Flux asks for, and a remote without
  master fails at collect time rather than on the high side. `include[]` must name GitRepositories collected.
- OCIRepository → OciArtifact: digest > semver (+ semverFilter) > tag (default `latest`), as Flux ranks them.
  A digest is kept (with the tag when both are written: the tag is the name it lands under). A semver is
  not resolved here: `semver` holds the constraint for the caller to resolve over the upstream tags.
- HelmRelease `spec.chart.spec` and HelmChart → ChartSource through their HelmRepository (`default`: the
  https:// index repository; `type: oci`: oci://host/path). A missing version is None (the newest stable).
  A chart from a GitRepository is a GitChart (a path in a carried repository). `spec.chartRef` to an
  OCIRepository marks that artifact as a chart and makes a ChartSource of it when its ref is a version tag or
  a semver range (Helm's own selection, so `chart_for` finds its images); to a HelmChart, that HelmChart's spec.
  The images a HelmRelease names in `spec.values` (and in valuesFrom ConfigMaps that were collected) are added
  to the chart's `images.include`; the chart's own images are left to discovery.
- Workloads (Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob, Pod) → ImageSource; Flux's own
  controllers are Deployments like any other, so a gotk-components.yaml in the tree brings their images.

Everything that cannot be resolved is collected as a problem naming the file and object.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import urlsplit

import yaml

from mirror.errors import ReferenceError_, UsageError
from mirror.flux.kustomize import normalise_path
from mirror.flux.objects import FluxObject, parse_yaml_documents, workload_images
from mirror.flux.patterns import compile_upstream
from mirror.flux.plan import (
    DEFAULT_NAMESPACE,
    EXTENSIONS_GROUP,
    FLUX_DEFAULT_BRANCH,
    GIT_REF_FIELDS,
    HELM_CHART_LAYER,
    HELM_GROUP,
    KUSTOMIZE_GROUP,
    OPERATOR_GROUP,
    SOURCE_GROUP,
    FluxPlan,
    GitChart,
    OciArtifact,
    SourceKey,
)
from mirror.flux.substitute import (
    _IMAGE_VALUE_KEYS,
    _substitute_tree,
    substitution_disabled,
)
from mirror.helm.discover import _Found, _ValuesWalker
from mirror.limits import Limits
from mirror.manifest.model import ChartImages, ChartSource, GitSource, ImageSource
from mirror.oci.platform import Platform
from mirror.oci.reference import ImageReference, parse_reference
from mirror.semver import Constraint, is_version
from mirror.urlpath import source_path_problem

_GIT_NAME_MAX = 63


_BOOTSTRAP_ROOT = "flux-system"  # the name `flux bootstrap` gives the root GitRepository


@dataclass(frozen=True)
class _ChartSpec:
    """A chart a spec names (HelmRelease spec.chart.spec, HelmChart spec), its sourceRef resolved to a key."""

    obj: FluxObject  # the object whose spec it is
    user: FluxObject  # the object the chart is for: obj, or the HelmRelease whose chartRef names a HelmChart
    label: str  # where the spec is in obj
    source: SourceKey
    name: str
    version: str | None
    include: tuple[ImageReference, ...]  # images the user's values name


@dataclass
class _Held:
    """A registered object, and how it was built: the variables substituted in it (None: no substitution)."""

    obj: FluxObject
    variables: dict[str, str] | None
    from_root: bool


_ChartRefHandler = Callable[["FleetResolution", FluxObject, SourceKey, tuple[ImageReference, ...]], ChartSource | None]


class FleetResolution:
    """The objects a FluxWalker collected, resolved into its FluxPlan (see module doc)."""

    _plan: FluxPlan
    _held: dict[tuple[str, str, str, str], _Held]
    _external: dict[SourceKey, GitSource | OciArtifact]
    _platforms: tuple[Platform, ...] | None
    _limits: Limits
    # ssh:// GitRepository URL → the http(s) URL it is read as (mirror.flux.giturls); None keeps ssh URLs.
    _ssh_urls: Callable[[str], str | None] | None

    def _objects(self, group: str, kind: str) -> list[_Held]:
        return [held for held in self._held.values() if (held.obj.group, held.obj.kind) == (group, kind)]

    def _resolve(self) -> None:
        """Sources first (charts and references look them up), then charts, images and sources left out."""
        self._add_external_sources()
        self._chart_refs = frozenset(self._oci_chart_refs())
        for kind, add_source in self._SOURCE_HANDLERS.items():
            for held in self._objects(*kind):
                add_source(self, held)
        for held in self._held.values():
            if held.obj.group == OPERATOR_GROUP:
                self._plan.warnings.append(
                    f"{held.obj.where}: flux-operator objects are not resolved; the sources they create are not "
                    "collected"
                )
        for held in self._objects(SOURCE_GROUP, "GitRepository"):
            self._check_includes(held.obj)
        self._resolve_charts()
        self._resolve_workload_images()
        self._report_uncollected_sources()

    def _add_external_sources(self) -> None:
        plan = self._plan
        for key, external in sorted(self._external.items()):
            if isinstance(external, GitSource):
                plan.git.append(external)
                plan.git_by_key[key] = external
            else:
                plan.oci.append(external)
                plan.oci_by_key[key] = external

    # One handler per source kind: it adds what that source is to the plan, or a problem.

    def _add_git_repository(self, held: _Held) -> None:
        git = self._git_source(held.obj, self._plan.problems)
        if git is not None:
            self._plan.git.append(git)
            self._plan.git_by_key[_key_of(held.obj)] = git

    def _add_oci_repository(self, held: _Held) -> None:
        key = _key_of(held.obj)
        artifact = self._oci_artifact(held.obj, self._plan.problems, is_chart=key in self._chart_refs)
        if artifact is not None:
            self._plan.oci.append(artifact)
            self._plan.oci_by_key[key] = artifact

    def _add_helm_repository(self, held: _Held) -> None:
        repo = self._helm_repository(held.obj, self._plan.problems)
        if repo is not None:
            self._plan.helm_repositories[_key_of(held.obj)] = repo

    def _refuse_bucket(self, held: _Held) -> None:
        self._plan.problems.append(f"{held.obj.where}: Bucket sources are not carried by mirror")

    # In this order (problems are listed in it); a kind not in the table is not a source mirror resolves.
    _SOURCE_HANDLERS: ClassVar[dict[tuple[str, str], Callable[[FleetResolution, _Held], None]]] = {
        (SOURCE_GROUP, "GitRepository"): _add_git_repository,
        (SOURCE_GROUP, "OCIRepository"): _add_oci_repository,
        (SOURCE_GROUP, "HelmRepository"): _add_helm_repository,
        (SOURCE_GROUP, "Bucket"): _refuse_bucket,
    }
    _chart_refs: frozenset[SourceKey] = frozenset()  # OCIRepositories a HelmRelease's chartRef names

    # One handler per kind that names a chart: the chart, or None (a problem, or a chart carried in Git).

    def _helm_chart(self, held: _Held) -> ChartSource | None:
        return self._chart_from_spec(held.obj, held.obj.spec, "spec", (), allow_ref_namespace=False)

    _CHART_HANDLERS: ClassVar[dict[tuple[str, str], Callable[[FleetResolution, _Held], ChartSource | None]]] = {
        (HELM_GROUP, "HelmRelease"): lambda walker, held: walker._release_chart(held),
        (SOURCE_GROUP, "HelmChart"): _helm_chart,
    }

    def _resolve_charts(self) -> None:
        """Every chart once (the images each user's values name merged), and which chart each user has."""
        charts: dict[tuple[str, str, str | None], ChartSource] = {}
        users: list[tuple[SourceKey, tuple[str, str, str | None]]] = []
        for held in self._held.values():
            chart_of = self._CHART_HANDLERS.get((held.obj.group, held.obj.kind))
            if chart_of is None:
                continue
            chart = chart_of(self, held)
            if chart is not None:
                identity = (chart.repo, chart.name, chart.version)
                charts[identity] = _merge_chart(charts.get(identity), chart)
                users.append((_key_of(held.obj), identity))
        self._plan.charts = list(charts.values())
        self._plan.chart_for = {key: charts[identity] for key, identity in users}

    def _resolve_workload_images(self) -> None:
        seen = {str(image.reference) for image in self._plan.images}
        for held in self._held.values():
            for label, value in workload_images(held.obj):
                image = self._image(held.obj, label, value)
                if image is not None and str(image.reference) not in seen:
                    seen.add(str(image.reference))
                    self._add_image(image)

    # One handler per kind that reads a Git or OCI source: (that source, the field naming it) for each.

    def _kustomization_sources(self, held: _Held) -> list[tuple[SourceKey, str]]:
        ref = held.obj.spec.get("sourceRef")
        if isinstance(ref, dict) and ref.get("kind") in ("GitRepository", "OCIRepository"):
            key = SourceKey(str(ref["kind"]), str(ref.get("namespace") or _ns(held.obj)), str(ref.get("name")))
            return [(key, f"{held.obj.where}: spec.sourceRef")]
        return []

    def _generator_sources(self, held: _Held) -> list[tuple[SourceKey, str]]:
        found = []
        for i, source in enumerate(held.obj.spec.get("sources") or []):
            if isinstance(source, dict) and source.get("kind") in ("GitRepository", "OCIRepository"):
                namespace = str(source.get("namespace") or _ns(held.obj))
                key = SourceKey(str(source["kind"]), namespace, str(source.get("name")))
                found.append((key, f"{held.obj.where}: spec.sources[{i}]"))
        return found

    _SOURCE_USER_HANDLERS: ClassVar[
        dict[tuple[str, str], Callable[[FleetResolution, _Held], list[tuple[SourceKey, str]]]]
    ] = {
        (KUSTOMIZE_GROUP, "Kustomization"): _kustomization_sources,
        (EXTENSIONS_GROUP, "ArtifactGenerator"): _generator_sources,
    }

    def _report_uncollected_sources(self) -> None:
        """A source read by a Kustomization or ArtifactGenerator that is not among the objects: one problem each."""
        missing: dict[SourceKey, list[str]] = {}
        for kind, sources_of in self._SOURCE_USER_HANDLERS.items():
            for held in self._objects(*kind):
                for key, place in sources_of(self, held):
                    missing.setdefault(key, []).append(place)
        for key, places in missing.items():
            if key not in self._plan.git_by_key and key not in self._plan.oci_by_key:
                more = f" and {len(places) - 1} more" if len(places) > 1 else ""
                # On real fleets: the root GitRepository that `flux bootstrap` writes in the cluster only (its
                # gotk-sync.yaml a placeholder in Git), which the MirrorSet can name.
                hint = (
                    " (a root that only the cluster defines, as `flux bootstrap` does, is named with "
                    f"spec.flux[].gitRepository: {key.namespace}/{key.name})"
                    if (key.kind, key.name) == ("GitRepository", _BOOTSTRAP_ROOT)
                    else ""
                )
                self._plan.problems.append(
                    f"{places[0]}{more}: {key} is not among the objects collected, so it is not carried{hint}"
                )

    def _oci_chart_refs(self) -> set[SourceKey]:
        refs = set()
        for held in self._objects(HELM_GROUP, "HelmRelease"):
            ref = held.obj.spec.get("chartRef")
            if isinstance(ref, dict) and ref.get("kind") == "OCIRepository" and ref.get("name"):
                refs.add(SourceKey("OCIRepository", str(ref.get("namespace") or _ns(held.obj)), str(ref["name"])))
        return refs

    def _git_source(self, obj: FluxObject, problems: list[str], *, quiet: bool = False) -> GitSource | None:
        spec = obj.spec
        url = spec.get("url")
        problem = _git_url_problem(url)
        if problem:
            problems.append(f"{obj.where}: spec.url: {problem}")
            return None
        ref_spec = spec.get("ref")
        if ref_spec is not None and not isinstance(ref_spec, dict):
            problems.append(f"{obj.where}: spec.ref: expected a map")
            return None
        fields: dict[str, str] = {}
        for key, value in (ref_spec or {}).items():
            if key not in GIT_REF_FIELDS or value in (None, ""):
                continue
            if isinstance(value, float):
                problems.append(f"{obj.where}: spec.ref.{key}: {value!r} was read as a number; quote it")
                return None
            fields[key] = _scalar_text(value)
        chosen = next((k for k in GIT_REF_FIELDS if k in fields), None)
        if chosen is None:
            ref = {"branch": FLUX_DEFAULT_BRANCH}
        elif chosen == "commit" and "branch" in fields:
            ref = {"commit": fields["commit"], "branch": fields["branch"]}
        else:
            ref = {chosen: fields[chosen]}
        if "semver" in ref:
            try:
                Constraint.parse(ref["semver"])
            except UsageError as exc:
                problems.append(f"{obj.where}: spec.ref.semver: {exc.message}")
                return None
        if spec.get("recurseSubmodules") and not quiet:
            self._plan.warnings.append(f"{obj.where}: recurseSubmodules: the submodules' repositories are not carried")
        url = str(url).rstrip("/")
        if self._ssh_urls is not None and urlsplit(url).scheme == "ssh":
            mapped = self._ssh_urls(url)
            if mapped is None:
                problems.append(
                    f"{obj.where}: spec.url: {url} is an ssh:// URL, and Git is fetched over HTTP(S) only: list the "
                    "repository's https:// URL in spec.git (same host and path), or add a spec.rewrite rule "
                    "from its ssh:// prefix to an http(s):// one"
                )
                return None
            if (problem := _git_url_problem(mapped)) is not None:
                problems.append(f"{obj.where}: spec.url: {url} is read as {mapped}, and {problem}")
                return None
            url = mapped.rstrip("/")
        return GitSource(_git_name(obj), url, ref, obj.where)

    def _check_includes(self, obj: FluxObject) -> None:
        for i, include in enumerate(obj.spec.get("include") or []):
            repository = include.get("repository") if isinstance(include, dict) else None
            name = repository.get("name") if isinstance(repository, dict) else None
            if not name:
                self._plan.problems.append(f"{obj.where}: spec.include[{i}]: expected {{repository: {{name}}}}")
                continue
            key = SourceKey("GitRepository", _ns(obj), str(name))
            if key not in self._plan.git_by_key:
                self._plan.problems.append(f"{obj.where}: spec.include[{i}]: {key} is not among the objects collected")

    def _oci_artifact(
        self, obj: FluxObject, problems: list[str], *, is_chart: bool, quiet: bool = False
    ) -> OciArtifact | None:
        spec = obj.spec
        url = spec.get("url")
        if not isinstance(url, str) or not url.startswith("oci://"):
            problems.append(f"{obj.where}: spec.url: expected oci://host/path, got {url!r}")
            return None
        ref = spec.get("ref")
        if not isinstance(ref, dict):
            ref = {}
        values: dict[str, str | None] = {}
        for key in ("digest", "semver", "tag", "semverFilter"):
            value = ref.get(key)
            if isinstance(value, float):
                problems.append(f"{obj.where}: spec.ref.{key}: {value!r} was read as a number; quote it")
                return None
            values[key] = _scalar_text(value) if value not in (None, "") else None
        digest, semver, tag = values["digest"], values["semver"], values["tag"]
        try:
            base = parse_reference(url.removeprefix("oci://").rstrip("/"))
        except ReferenceError_ as exc:
            problems.append(f"{obj.where}: spec.url: {exc.message}")
            return None
        if base.tag != "latest" or base.digest:
            problems.append(f"{obj.where}: spec.url: {url} carries a tag or digest; give it in spec.ref")
            return None
        if semver and values["semverFilter"]:
            try:
                compile_upstream(values["semverFilter"], f"{obj.where}: spec.ref.semverFilter")
            except UsageError as exc:
                problems.append(exc.message)
                return None
        if digest:
            text = f"{base.name}" + (f":{tag}" if tag else "") + f"@{digest}"
            semver = None
        elif semver:
            text = None
            try:
                Constraint.parse(semver)
            except UsageError as exc:
                problems.append(f"{obj.where}: spec.ref.semver: {exc.message}")
                return None
        else:
            text = f"{base.name}:{tag or 'latest'}"
        try:
            reference = parse_reference(text) if text else ImageReference(base.registry, base.repository)
        except ReferenceError_ as exc:
            problems.append(f"{obj.where}: spec.ref: {exc.message}")
            return None
        selector = spec.get("layerSelector")
        if not isinstance(selector, dict):
            selector = {}
        media_type = selector.get("mediaType") if isinstance(selector.get("mediaType"), str) else None
        verify = spec.get("verify")
        # The artifact's signatures are carried with it (mirror.collector.attached), so a key-based verify works
        # against the internal registry; a keyless one makes the controller reach Sigstore's TUF and Rekor.
        if isinstance(verify, dict) and not verify.get("secretRef") and not quiet:
            self._plan.warnings.append(
                f"{obj.where}: spec.verify ({verify.get('provider', 'cosign')}, keyless): its signatures are carried "
                "to the internal registry, but the controller verifies keyless signatures against Sigstore online "
                "(TUF, Rekor); in an air gap give it a key (secretRef), or verify at collect (MirrorSet spec.verify)"
            )
        return OciArtifact(
            key=_key_of(obj),
            url=url,
            reference=reference,
            semver=semver,
            semver_filter=values["semverFilter"] if semver else None,
            layer_media_type=media_type,
            is_chart=is_chart or media_type == HELM_CHART_LAYER,
            origin=obj.where,
        )

    def _helm_repository(self, obj: FluxObject, problems: list[str]) -> str | None:
        url = obj.spec.get("url")
        kind = obj.spec.get("type") or "default"
        if not isinstance(url, str) or not url:
            problems.append(f"{obj.where}: spec.url: missing")
            return None
        if kind == "oci":
            if not url.startswith("oci://") or not urlsplit(url).hostname:
                problems.append(f"{obj.where}: spec.url: a type oci repository needs oci://host/path, got {url!r}")
                return None
            return url.rstrip("/")
        if kind != "default":
            problems.append(f"{obj.where}: spec.type: {kind!r} is neither default nor oci")
            return None
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            problems.append(f"{obj.where}: spec.url: expected an http(s):// chart repository, got {url!r}")
            return None
        if parts.username or parts.password:
            problems.append(f"{obj.where}: spec.url: carries credentials; use spec.secretRef")
            return None
        return url.rstrip("/")

    def _release_chart(self, held: _Held) -> ChartSource | None:
        obj = held.obj
        spec = obj.spec
        chart, chart_ref = spec.get("chart"), spec.get("chartRef")
        if bool(chart) == bool(chart_ref):
            which = "both" if chart else "neither"
            self._plan.problems.append(
                f"{obj.where}: has {which} of spec.chart and spec.chartRef"
                + ("" if chart else " (a kustomize patch read as an object?)")
            )
            return None
        include = self._values_images(held)
        if chart:
            chart_spec = chart.get("spec") if isinstance(chart, dict) else None
            if not isinstance(chart_spec, dict):
                self._plan.problems.append(f"{obj.where}: spec.chart.spec: missing")
                return None
            return self._chart_from_spec(obj, chart_spec, "spec.chart.spec", include, allow_ref_namespace=True)
        if not isinstance(chart_ref, dict) or not chart_ref.get("kind") or not chart_ref.get("name"):
            self._plan.problems.append(f"{obj.where}: spec.chartRef: expected {{kind, name}}")
            return None
        key = SourceKey(str(chart_ref["kind"]), str(chart_ref.get("namespace") or _ns(obj)), str(chart_ref["name"]))
        chart_from_ref = self._CHART_REF_HANDLERS.get(key.kind)
        if chart_from_ref is None:
            self._plan.problems.append(f"{obj.where}: spec.chartRef: {key.kind} charts are not supported")
            return None
        return chart_from_ref(self, obj, key, include)

    # One handler per kind a HelmRelease's spec.chartRef may name.

    def _chart_of_oci_repository(
        self, obj: FluxObject, key: SourceKey, include: tuple[ImageReference, ...]
    ) -> ChartSource | None:
        artifact = self._plan.oci_by_key.get(key)
        if artifact is None:
            self._plan.problems.append(f"{obj.where}: spec.chartRef: {key} is not among the objects collected")
            return None
        return self._oci_chart(obj, artifact, include)

    def _chart_of_helm_chart(
        self, obj: FluxObject, key: SourceKey, include: tuple[ImageReference, ...]
    ) -> ChartSource | None:
        helm_chart = self._held.get((SOURCE_GROUP, "HelmChart", key.namespace, key.name))
        if helm_chart is None:
            self._plan.problems.append(f"{obj.where}: spec.chartRef: {key} is not among the objects collected")
            return None
        return self._chart_from_spec(
            helm_chart.obj, helm_chart.obj.spec, "spec", include, allow_ref_namespace=False, user=obj
        )

    _CHART_REF_HANDLERS: ClassVar[dict[str, _ChartRefHandler]] = {
        "OCIRepository": _chart_of_oci_repository,
        "HelmChart": _chart_of_helm_chart,
    }

    def _chart_from_spec(
        self,
        obj: FluxObject,
        spec: Mapping[str, Any],
        label: str,
        include: tuple[ImageReference, ...],
        *,
        allow_ref_namespace: bool,
        user: FluxObject | None = None,
    ) -> ChartSource | None:
        user = user or obj
        name = spec.get("chart")
        if not isinstance(name, str) or not name:
            self._plan.problems.append(f"{obj.where}: {label}.chart: missing")
            return None
        ok, version = self._chart_version(obj, spec.get("version"), f"{label}.version")
        if not ok:
            return None
        ref = spec.get("sourceRef")
        if not isinstance(ref, dict) or not ref.get("kind") or not ref.get("name"):
            self._plan.problems.append(f"{obj.where}: {label}.sourceRef: expected {{kind, name}}")
            return None
        namespace = str(ref.get("namespace") or _ns(obj)) if allow_ref_namespace else _ns(obj)
        key = SourceKey(str(ref["kind"]), namespace, str(ref["name"]))
        chart_in = self._CHART_SOURCE_HANDLERS.get(key.kind)
        if chart_in is None:
            self._plan.problems.append(f"{obj.where}: {label}.sourceRef: {key.kind} sources are not supported")
            return None
        return chart_in(self, _ChartSpec(obj, user, label, key, name, version, include))

    # One handler per kind a chart spec's sourceRef may name: the chart, or None (a problem, or carried in Git).

    def _chart_in_helm_repository(self, chart: _ChartSpec) -> ChartSource | None:
        repo = self._plan.helm_repositories.get(chart.source)
        if repo is None:
            self._plan.problems.append(
                f"{chart.obj.where}: {chart.label}.sourceRef: {chart.source} is not among the objects collected"
            )
            return None
        return ChartSource(
            name=chart.name,
            repo=repo,
            version=chart.version,
            images=ChartImages(discover=True, include=chart.include),
            dependencies=True,
            platforms=self._platforms,
            origin=chart.user.where,
        )

    def _chart_in_git_repository(self, chart: _ChartSpec) -> ChartSource | None:
        if chart.source not in self._plan.git_by_key:
            self._plan.problems.append(
                f"{chart.obj.where}: {chart.label}.sourceRef: {chart.source} is not among the objects collected"
            )
            return None
        self._plan.git_charts.append(
            GitChart(chart.source, normalise_path(chart.name), chart.version, chart.user.where)
        )
        self._plan.warnings.append(
            f"{chart.user.where}: chart {chart.name} is read from {chart.source}: it travels with that repository; "
            "only the images its values name are collected"
        )
        self._add_value_images(chart.user, chart.include)
        return None

    _CHART_SOURCE_HANDLERS: ClassVar[dict[str, Callable[[FleetResolution, _ChartSpec], ChartSource | None]]] = {
        "HelmRepository": _chart_in_helm_repository,
        "GitRepository": _chart_in_git_repository,
    }

    def _add_value_images(self, obj: FluxObject, include: tuple[ImageReference, ...]) -> None:
        known = {str(image.reference) for image in self._plan.images}
        for reference in include:
            if str(reference) not in known:
                known.add(str(reference))
                self._add_image(ImageSource(reference, self._platforms, f"{obj.where}: spec.values"))

    def _add_image(self, image: ImageSource) -> None:
        if len(self._plan.images) >= self._limits.max_images_per_fleet:
            raise UsageError(
                f"{image.origin}: the fleet names more than {self._limits.max_images_per_fleet} images; refused "
                "(limit max_images_per_fleet)"
            )
        self._plan.images.append(image)

    def _chart_version(self, obj: FluxObject, value: Any, label: str) -> tuple[bool, str | None]:
        if value is None or value == "":
            return True, None
        if isinstance(value, float):
            self._plan.problems.append(f"{obj.where}: {label}: {value!r} was read as a number; quote the version")
            return False, None
        text = _scalar_text(value)
        if "${" in text:
            return False, None  # named already, by the substitution or as a literal variable
        try:
            Constraint.parse(text)
        except UsageError:
            if not is_version(text):
                self._plan.problems.append(f"{obj.where}: {label}: {text!r} is neither a version nor a constraint")
                return False, None
        return True, text

    def _oci_chart(
        self, obj: FluxObject, artifact: OciArtifact, include: tuple[ImageReference, ...]
    ) -> ChartSource | None:
        parent, _, name = artifact.reference.repository.rpartition("/")
        version: str | None
        if artifact.semver:
            version = artifact.semver
            if artifact.semver_filter:
                self._plan.warnings.append(
                    f"{artifact.origin}: semverFilter {artifact.semver_filter!r} is not applied when the chart's "
                    "version is chosen for image discovery"
                )
        elif artifact.reference.tag and artifact.reference.tag != "latest" and is_version(artifact.reference.tag):
            version = artifact.reference.tag
        else:
            version = None
        if not parent or version is None:
            pin = artifact.reference.digest or artifact.reference.tag
            self._plan.warnings.append(
                f"{obj.where}: chart {artifact.url} ({pin}) is not a Helm version to discover images from; it is "
                "carried as an OCI artifact, and only the images its values name are collected"
            )
            self._add_value_images(obj, include)
            return None
        return ChartSource(
            name=name,
            repo=f"oci://{artifact.reference.registry}/{parent}",
            version=version,
            images=ChartImages(discover=True, include=include),
            dependencies=True,
            platforms=self._platforms,
            origin=obj.where,
            flux_semver=bool(artifact.semver),
        )

    def _values_images(self, held: _Held) -> tuple[ImageReference, ...]:
        """Images named in a HelmRelease's values (and in valuesFrom ConfigMaps that were collected)."""
        obj = held.obj
        sources: list[tuple[str, Any]] = []
        if isinstance(obj.spec.get("values"), dict):
            sources.append(("spec.values", obj.spec["values"]))
        for i, ref in enumerate(obj.spec.get("valuesFrom") or []):
            label = f"spec.valuesFrom[{i}]"
            values = self._values_from(obj, ref, label)
            if values is not None:
                sources.append((label, values))
        found = _Found(obj.where, self._limits.max_images_per_chart, self._limits)
        notes: list[str] = []
        for label, values in sources:
            if held.variables is not None and not substitution_disabled(obj):
                values = _substitute_tree(values, held.variables.get)
            self._unresolved_image_values(obj, values, label)
            _ValuesWalker(_NoChart(), values, f"{obj.where}: {label}", "", found, notes).walk()  # type: ignore[arg-type]
        self._plan.warnings.extend(notes)
        return tuple(parse_reference(image.reference) for image in found.result() if not image.guessed)

    def _values_from(self, obj: FluxObject, ref: Any, label: str) -> dict[str, Any] | None:
        if not isinstance(ref, dict):
            return None
        target_path = ref.get("targetPath")
        if target_path:
            # One value set at a path: only worth a word when it may be part of an image.
            last = re.split(r"[.\[\]]", str(target_path).rstrip("]"))[-1]
            if last in _IMAGE_VALUE_KEYS:
                self._plan.warnings.append(
                    f"{obj.where}: {label}: {target_path} comes from {ref.get('kind')} {ref.get('name')}; that image "
                    "part is not known here"
                )
            return None
        if ref.get("kind") != "ConfigMap":
            self._plan.warnings.append(f"{obj.where}: {label}: values from a {ref.get('kind')} are not read for images")
            return None
        key = ref.get("valuesKey") or "values.yaml"
        held = self._held.get(("", "ConfigMap", _ns(obj), str(ref.get("name"))))
        data = held.obj.body.get("data") if held else None
        text = data.get(key) if isinstance(data, dict) else None
        if not isinstance(text, str):
            self._plan.warnings.append(
                f"{obj.where}: {label}: ConfigMap {ref.get('name')} (key {key}) is not among the objects read (made by "
                "a configMapGenerator?); the images its values name are not collected"
            )
            return None
        try:
            docs = parse_yaml_documents(text, f"{obj.where}: {label}: ConfigMap {ref.get('name')} key {key}")
        except yaml.YAMLError:
            self._plan.warnings.append(f"{obj.where}: {label}: ConfigMap {ref.get('name')} key {key} is not YAML")
            return None
        return docs[0] if docs and isinstance(docs[0], dict) else None

    def _unresolved_image_values(self, obj: FluxObject, node: Any, label: str, depth: int = 0) -> None:
        if depth > 64:
            return
        if isinstance(node, dict):
            for key, value in node.items():
                child = f"{label}.{key}"
                if key in _IMAGE_VALUE_KEYS and isinstance(value, str) and "${" in value:
                    self._plan.problems.append(f"{obj.where}: {child}: image value {value!r} holds an unset variable")
                else:
                    self._unresolved_image_values(obj, value, child, depth + 1)
        elif isinstance(node, list):
            for i, value in enumerate(node):
                self._unresolved_image_values(obj, value, f"{label}[{i}]", depth + 1)

    def _image(self, obj: FluxObject, label: str, value: Any) -> ImageSource | None:
        if not isinstance(value, str) or not value:
            self._plan.problems.append(f"{obj.where}: {label}: expected an image reference, got {value!r}")
            return None
        if "${" in value:
            return None  # named by the substitution, or by _report_literals
        try:
            reference = parse_reference(value)
        except ReferenceError_ as exc:
            self._plan.problems.append(f"{obj.where}: {label}: {exc.message}")
            return None
        return ImageSource(reference, self._platforms, f"{obj.where}: {label}")


# --- Helpers --------------------------------------------------------------------------------------------------


class _NoChart:
    """What discover's values walker needs of a chart, for a HelmRelease's values: no appVersion to guess from."""

    app_version = None


def _ns(obj: FluxObject) -> str:
    return obj.namespace or DEFAULT_NAMESPACE


def _key_of(obj: FluxObject) -> SourceKey:
    return SourceKey(obj.kind, _ns(obj), obj.name)


def _scalar_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _git_name(obj: FluxObject) -> str:
    """`namespace.name`, unique (a namespace has no dot); past 63 characters, shortened with a hash."""
    name = f"{_ns(obj)}.{obj.name}".lower()
    if len(name) <= _GIT_NAME_MAX:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: _GIT_NAME_MAX - 9].rstrip('.-_')}-{digest}"


def _git_url_problem(url: Any) -> str | None:
    if not isinstance(url, str) or not url:
        return "missing"
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
    except ValueError:
        return f"{url!r} is not a URL"
    if parts.scheme not in ("https", "http", "ssh") or not hostname:
        return f"{url!r} must be an https://, http:// or ssh:// repository URL"
    if parts.password or (parts.username and parts.scheme != "ssh"):
        return "the URL carries credentials; Flux takes them from spec.secretRef"
    if parts.query or parts.fragment:
        return f"{url!r} has a query or fragment"
    path = parts.path.strip("/")
    if not path or any(part in ("", ".", "..") for part in path.split("/")):
        return f"{url!r} has no repository path"
    if (path_problem := source_path_problem(url)) is not None:
        return f"{url!r}: {path_problem}"
    return None


def _merge_chart(known: ChartSource | None, new: ChartSource) -> ChartSource:
    if known is None:
        return new
    include = tuple(sorted(set(known.images.include) | set(new.images.include)))
    return ChartSource(
        name=known.name,
        repo=known.repo,
        version=known.version,
        images=ChartImages(discover=True, include=include, exclude=known.images.exclude),
        dependencies=known.dependencies,
        platforms=known.platforms,
        origin=known.origin,
    )
