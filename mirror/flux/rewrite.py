"""The Flux objects of a fleet rewritten for the high side.

`rewrite_objects` turns every collected Flux object into the current API version (source.toolkit.fluxcd.io/v1,
helm.toolkit.fluxcd.io/v2, kustomize.toolkit.fluxcd.io/v1), converting the fields those versions dropped, and
points the sources at the internal endpoints:

- GitRepository `url` → the internal Git URL (mirror/landing.py: `BASE/<path>.git`);
- HelmRepository → `type: oci`; a default (index.yaml) repository's `url` becomes `oci://REGISTRY/PREFIX/charts`,
  where the importer lands HTTP charts as `charts/NAME:VERSION`; an OCI one keeps its path under the prefix;
- OCIRepository `url` → `oci://REGISTRY/PREFIX/<path>`, its path kept as images and OCI charts land.

Names, namespaces, versions, refs, digests, intervals and everything else stay as they were. A cloud `provider`
(aws, azure, gcp, github) cannot authenticate to the internal endpoints, so it is removed with a warning; with a
plain-HTTP registry, OCI sources get `insecure: true`, and with a TLS one an upstream's `insecure` is dropped.
`render_objects` renders them in memory as `<namespace>/<kind>/<name>.yaml`, with a kustomization.yaml listing
them all (`kubectl apply -k DIR`), so the importer checks every name before its first write;
mirror/importer/flux_out.py writes them under a directory, never through a link. Pure: nothing here reads or
writes a file.

Workload image names stay as they are: nodes pull them through the registry mirror configurations
(mirror/nodeconfig/) the importer writes beside them.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

import yaml

from mirror.errors import Problem, ReferenceError_, UsageError, VerificationError
from mirror.flux.objects import FluxObject
from mirror.landing import LANDING_NAME_INVALID, git_target_url
from mirror.nodeconfig.hosts import registry_host_problem
from mirror.oci.reference import check_repository_path, is_repository_path, parse_reference
from mirror.terminal import escape

SOURCE_V1 = "source.toolkit.fluxcd.io/v1"
HELM_V2 = "helm.toolkit.fluxcd.io/v2"
KUSTOMIZE_V1 = "kustomize.toolkit.fluxcd.io/v1"
CURRENT_API_VERSIONS: dict[tuple[str, str], str] = {
    ("source.toolkit.fluxcd.io", "GitRepository"): SOURCE_V1,
    ("source.toolkit.fluxcd.io", "HelmRepository"): SOURCE_V1,
    ("source.toolkit.fluxcd.io", "HelmChart"): SOURCE_V1,
    ("source.toolkit.fluxcd.io", "OCIRepository"): SOURCE_V1,
    ("source.toolkit.fluxcd.io", "Bucket"): SOURCE_V1,
    ("helm.toolkit.fluxcd.io", "HelmRelease"): HELM_V2,
    ("kustomize.toolkit.fluxcd.io", "Kustomization"): KUSTOMIZE_V1,
}
CHARTS_PATH = "charts"  # where the importer lands charts from HTTP repositories
_DNS_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")
_KIND = re.compile(r"[A-Za-z][A-Za-z0-9]{0,62}")
_SERVER_FIELDS = ("resourceVersion", "uid", "creationTimestamp", "generation", "managedFields", "selfLink")
_LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


class UrlMapper(Protocol):
    """Where each kind of source lives on the high side."""

    def git_url(self, url: str) -> str: ...

    def oci_url(self, url: str) -> str: ...

    def chart_repository_url(self, url: str, *, oci: bool) -> str: ...


def parse_registry(text: str) -> tuple[str, str, str]:
    """`host[:port][/prefix]` or `http(s)://host[:port][/prefix]` → (scheme, host[:port], prefix)."""
    if "://" in text:
        parts = urlsplit(text)
        if parts.scheme not in ("http", "https") or parts.username or parts.password or parts.query:
            raise UsageError(f"registry {text!r}: expected https://HOST[:PORT][/PREFIX] without credentials")
        scheme, host, prefix = parts.scheme, parts.netloc, parts.path.strip("/")
    else:
        scheme = "https"
        host, _, prefix = text.strip("/").partition("/")
    if not host or registry_host_problem(host) is not None:
        raise UsageError(f"registry {text!r}: {host!r} is not a registry host[:port]")
    if prefix:
        check_repository_path(prefix, f"registry {text}")
    return scheme, host, prefix


@dataclass(frozen=True)
class InternalEndpoints:
    """The high side's registry (`host[:port][/prefix]`, or an http(s) URL) and Git base URL."""

    registry: str
    git_base: str | None = None

    @property
    def parts(self) -> tuple[str, str, str]:
        return parse_registry(self.registry)

    @property
    def plain_http(self) -> bool:
        return self.parts[0] == "http"

    def _landing(self, repository: str) -> str:
        """`oci://HOST/PREFIX/REPOSITORY`, the repository held to the grammar the importer's landing names are."""
        _, host, prefix = self.parts
        full = f"{prefix}/{repository}" if prefix else repository
        if not is_repository_path(full):
            raise _unlandable(f"repository {full!r} is not a valid repository path")
        return f"oci://{host}/{full}"

    def git_url(self, url: str) -> str:
        """Where mirror/landing.py lands the source (the same normalisation and check: VerificationError, exit 3,
        for a URL whose path would leave the Git base)."""
        if not self.git_base:
            raise UsageError(f"GitRepository {url}: no internal Git URL given", hint="pass --git https://HOST/PREFIX")
        return git_target_url(self.git_base.rstrip("/"), url)

    def oci_url(self, url: str) -> str:
        """An OCIRepository `oci://host/path` (a whole repository) → where its artifacts land."""
        return self._landing(_oci_repository(url, whole=True))

    def chart_repository_url(self, url: str, *, oci: bool) -> str:
        """A HelmRepository: HTTP ones all land under charts/; OCI ones keep their path (the chart is appended)."""
        return self._landing(_oci_repository(url, whole=False) if oci else CHARTS_PATH)


def _oci_repository(url: str, *, whole: bool) -> str:
    """The repository path an `oci://host/path` lands under, as parse_reference normalises it (Docker Hub:
    `registry-1.docker.io` is docker.io, and a one-component repository is library/NAME)."""
    text = url.removeprefix("oci://").rstrip("/")
    try:
        if whole:
            return parse_reference(text).repository
        return parse_reference(f"{text}/chart").repository.rsplit("/", 1)[0]
    except ReferenceError_ as exc:
        raise _unlandable(f"{url}: {exc.message}") from exc


def _unlandable(message: str) -> VerificationError:
    """A source URL of a carried (signed) Flux object that has no valid place on the internal registry."""
    shown = escape(message)
    return VerificationError(shown, problems=[Problem(LANDING_NAME_INVALID, shown)], hint="nothing was written")


@dataclass(frozen=True)
class RewrittenObject:
    path: str  # relative: <namespace>/<kind>/<name>.yaml
    body: dict[str, Any]
    source: FluxObject


def rewrite_objects(
    objects: Sequence[FluxObject], urls: UrlMapper, *, warnings: list[str] | None = None
) -> list[RewrittenObject]:
    """Every Flux object of `objects` (others are left out), at its current API version, pointed at `urls`."""
    notes = warnings if warnings is not None else []
    plain_http = bool(getattr(urls, "plain_http", False))
    result: list[RewrittenObject] = []
    paths: dict[str, FluxObject] = {}
    for obj in objects:
        if not obj.is_flux:
            continue
        body = _clean(copy.deepcopy(obj.body))
        current = CURRENT_API_VERSIONS.get((obj.group, obj.kind))
        if current is None:
            notes.append(f"{obj.where}: {obj.api_version} {obj.kind} is written as it is")
        else:
            body["apiVersion"] = current
            _convert(obj, body, notes)
            _point(obj, body, urls, plain_http, notes)
        path = object_path(obj)
        if path in paths:
            raise UsageError(f"{obj.where} and {paths[path].where} would both be written to {path}")
        paths[path] = obj
        result.append(RewrittenObject(path, body, obj))
    return result


def object_path(obj: FluxObject) -> str:
    namespace = obj.namespace or "default"
    for what, value, pattern in (("namespace", namespace, _DNS_NAME), ("name", obj.name, _DNS_NAME)):
        if not pattern.fullmatch(value):
            raise UsageError(f"{obj.where}: {what} {value!r} is not a Kubernetes name")
    if not _KIND.fullmatch(obj.kind):
        raise UsageError(f"{obj.where}: kind {obj.kind!r} is not a Kubernetes kind")
    return f"{namespace}/{obj.kind.lower()}/{obj.name}.yaml"


def _clean(body: dict[str, Any]) -> dict[str, Any]:
    body.pop("status", None)
    metadata = body.get("metadata")
    if isinstance(metadata, dict):
        for key in _SERVER_FIELDS:
            metadata.pop(key, None)
        annotations = metadata.get("annotations")
        if isinstance(annotations, dict):
            annotations.pop(_LAST_APPLIED, None)
            if not annotations:
                metadata.pop("annotations")
    return body


def _spec(body: dict[str, Any]) -> dict[str, Any]:
    spec = body.get("spec")
    if not isinstance(spec, dict):
        spec = body["spec"] = {}
    return spec


def _dump_patch(value: Any) -> str:
    return yaml.dump(value, Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True, width=4096)


def _patches_from_old(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """`patchesStrategicMerge` and `patchesJson6902` (removed in the current versions) as `patches` entries."""
    converted = []
    for item in spec.pop("patchesStrategicMerge", None) or []:
        converted.append({"patch": item if isinstance(item, str) else _dump_patch(item)})
    for item in spec.pop("patchesJson6902", None) or []:
        if not isinstance(item, dict):
            continue
        patch = item.get("patch")
        entry: dict[str, Any] = {"patch": patch if isinstance(patch, str) else _dump_patch(patch)}
        if item.get("target"):
            entry["target"] = item["target"]
        converted.append(entry)
    return converted


def _values_files(spec: dict[str, Any]) -> None:
    """`valuesFile` (removed) is merged before `valuesFiles`: it becomes their first entry."""
    values_file = spec.pop("valuesFile", None)
    if values_file:
        files = spec.get("valuesFiles") or []
        spec["valuesFiles"] = [values_file, *[f for f in files if f != values_file]]


def _convert(obj: FluxObject, body: dict[str, Any], notes: list[str]) -> None:
    """The fields the older API versions had and the current ones dropped."""
    spec = _spec(body)
    if obj.kind in ("GitRepository", "HelmChart"):
        if spec.pop("gitImplementation", None) is not None:
            notes.append(f"{obj.where}: spec.gitImplementation is gone in {SOURCE_V1}; removed")
        if spec.pop("accessFrom", None) is not None:
            notes.append(f"{obj.where}: spec.accessFrom is gone in {SOURCE_V1}; removed")
    if obj.kind == "HelmChart":
        _values_files(spec)
    elif obj.kind == "HelmRelease":
        chart = spec.get("chart")
        if isinstance(chart, dict) and isinstance(chart.get("spec"), dict):
            _values_files(chart["spec"])
        for renderer in spec.get("postRenderers") or []:
            kustomize = renderer.get("kustomize") if isinstance(renderer, dict) else None
            if isinstance(kustomize, dict):
                converted = _patches_from_old(kustomize)
                if converted:
                    kustomize["patches"] = [*(kustomize.get("patches") or []), *converted]
    elif obj.kind == "Kustomization":
        if spec.pop("validation", None) is not None:
            notes.append(f"{obj.where}: spec.validation is gone in {KUSTOMIZE_V1}; removed")
        converted = _patches_from_old(spec)
        if converted:
            spec["patches"] = [*converted, *(spec.get("patches") or [])]


def _point(obj: FluxObject, body: dict[str, Any], urls: UrlMapper, plain_http: bool, notes: list[str]) -> None:
    spec = _spec(body)
    url = spec.get("url")
    if obj.kind == "GitRepository":
        if not isinstance(url, str):
            raise UsageError(f"{obj.where}: spec.url is missing")
        spec["url"] = urls.git_url(url)
        if urlsplit(url).scheme == "ssh" and urlsplit(spec["url"]).scheme != "ssh" and spec.get("secretRef"):
            notes.append(
                f"{obj.where}: spec.secretRef held SSH credentials for {url}; the internal URL {spec['url']} needs "
                "a secret with username and password (or bearerToken)"
            )
        _drop_provider(obj, spec, notes, keep=("generic",))
    elif obj.kind == "HelmRepository":
        if not isinstance(url, str):
            raise UsageError(f"{obj.where}: spec.url is missing")
        oci = spec.get("type") == "oci"
        spec["url"] = urls.chart_repository_url(url, oci=oci)
        if not oci:
            spec["type"] = "oci"
            spec.pop("passCredentials", None)  # an index.yaml setting: nothing to pass credentials to
        _drop_provider(obj, spec, notes, keep=("generic",))
        _set_insecure(spec, plain_http)
    elif obj.kind == "OCIRepository":
        if not isinstance(url, str):
            raise UsageError(f"{obj.where}: spec.url is missing")
        spec["url"] = urls.oci_url(url)
        _drop_provider(obj, spec, notes, keep=("generic",))
        _set_insecure(spec, plain_http)
    elif obj.kind == "Bucket":
        notes.append(f"{obj.where}: Bucket sources are not carried; written with their upstream endpoint")


def _set_insecure(spec: dict[str, Any], plain_http: bool) -> None:
    # Flux's `insecure` means plain HTTP: it says how the internal registry is reached, whatever upstream needed.
    if plain_http:
        spec["insecure"] = True
    else:
        spec.pop("insecure", None)


def _drop_provider(obj: FluxObject, spec: dict[str, Any], notes: list[str], *, keep: tuple[str, ...]) -> None:
    provider = spec.get("provider")
    if provider is not None and provider not in keep:
        spec.pop("provider")
        spec.pop("serviceAccountName", None)
        notes.append(
            f"{obj.where}: spec.provider {provider!r} cannot authenticate to the internal endpoint; removed (use "
            "spec.secretRef)"
        )


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    if "\n" in data:
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", data)


_Dumper.add_representer(str, _represent_str)


def dump_object(body: Mapping[str, Any]) -> str:
    """One object as YAML: keys in their order, multi-line strings as blocks, no anchors."""
    return yaml.dump(
        dict(body), Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True, width=4096
    )


def render_objects(rewritten: Sequence[RewrittenObject]) -> dict[str, str]:
    """Each object's file (`<namespace>/<kind>/<name>.yaml`) and a kustomization.yaml listing them, in memory."""
    files = {item.path: dump_object(item.body) for item in rewritten}
    index = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": sorted(item.path for item in rewritten),
    }
    files["kustomization.yaml"] = dump_object(index)
    return files
