"""Reading the Kubernetes objects of a Flux path into FluxObject records.

`read_yaml_files(directory)` reads every document of every .yaml/.yml file under a directory, as is; the
kustomize build of a path (`read_tree`) is mirror/flux/kustomize.py, which reads its files through here.

Only the objects that matter to mirror are kept: Flux kinds (API groups under fluxcd.io, and flux-operator's
fluxcd.controlplane.io), workloads (their images), and ConfigMaps and Secrets (postBuild.substituteFrom).
Documents without apiVersion and kind (values files, Chart.yaml, CI workflows) are skipped quietly; a file
that is not YAML (Go templates) is skipped with a warning naming it, as is a file with a duplicate key
(kustomize refuses those). An anchor defined twice is read as Go's yaml reads it (the later one wins), not
skipped. A file whose aliases would expand it past the YAML budget of `Limits` (an alias bomb), or into an
infinite tree, is refused: YamlBudgetError, exit 2, naming it.

YAML is read as kustomize does (YAML 1.2): only true/false are booleans, and dates stay strings.
Problems never raise here except a path outside the root and YAML past its budget: they are appended to the
`warnings` list.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from mirror.kube import CONTAINER_LISTS, WORKLOAD_POD_SPECS
from mirror.yamlio import read_yaml

YAML_SUFFIXES = (".yaml", ".yml")

_WORKLOAD_GROUPS = {
    "": {"Pod", "ReplicationController"},
    "apps": {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"},
}
_WORKLOAD_GROUPS["batch"] = {"Job", "CronJob"}
_KEPT_CORE = {"ConfigMap", "Secret"}
# Kinds a patch target may name that mirror keeps (a patch of anything else selecting nothing is no news).
KEPT_KINDS = (
    set(WORKLOAD_POD_SPECS)
    | _KEPT_CORE
    | {"GitRepository", "OCIRepository", "HelmRepository", "HelmChart", "Bucket", "HelmRelease", "Kustomization"}
)


# --- YAML as kustomize reads it -------------------------------------------------------------------------------

_Base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_Base):  # type: ignore[misc, valid-type]
    """YAML 1.2 scalars (true/false only, no timestamps) and no duplicate keys, as kyaml reads manifests."""


_Loader.yaml_implicit_resolvers = {
    first: [
        (tag, regexp)
        for tag, regexp in resolvers
        if tag not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:timestamp")
    ]
    for first, resolvers in _Base.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def _bool(loader: _Loader, node: yaml.ScalarNode) -> bool:
    return loader.construct_scalar(node).lower() == "true"


def _mapping(loader: _Loader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    # Keys written twice in the mapping itself are refused; keys that override a `<<:` merge are not duplicates.
    seen: set[Any] = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    loader.flatten_mapping(node)
    return loader.construct_mapping(node, deep=deep)


_Loader.add_constructor("tag:yaml.org,2002:bool", _bool)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)
_Loader.add_constructor("tag:yaml.org,2002:timestamp", _Loader.construct_yaml_str)


class _RedefinableAnchors(yaml.composer.Composer):
    """An anchor defined again replaces the first for the aliases after it, as Go's yaml (kubectl, kustomize,
    Flux) reads it; PyYAML refuses such a document ("found duplicate anchor"). Real fleets have them
    (billimek/k8s-gitops' plex.yaml). Anchors stay per document: Composer.compose_document resets them."""

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        event = self.peek_event()  # type: ignore[attr-defined]  # the parser's, mixed in beside this class
        if not isinstance(event, yaml.AliasEvent) and event.anchor is not None:
            self.anchors.pop(event.anchor, None)
        return super().compose_node(parent, index)


class _GoAnchorsLoader(_RedefinableAnchors, yaml.SafeLoader):
    """_Loader's reading, composed in Python (the C composer cannot be told to accept a redefined anchor)."""


_GoAnchorsLoader.yaml_implicit_resolvers = _Loader.yaml_implicit_resolvers
_GoAnchorsLoader.yaml_constructors = dict(_Loader.yaml_constructors)


def _is_redefined_anchor(exc: yaml.YAMLError) -> bool:
    return isinstance(exc, yaml.composer.ComposerError) and "found duplicate anchor" in (exc.context or "")


def parse_yaml_documents(text: str, where: str = "YAML text") -> list[Any]:
    """Every non-empty document of `text`; raises yaml.YAMLError, and YamlBudgetError (naming `where`) for YAML
    that expands past the budget of one file (an alias bomb).

    The fast C loader first; a document that redefines an anchor is read again by the slower Python composer,
    which accepts it as Go's yaml does, within the same budget."""
    try:
        return read_yaml(text, where, loader=_Loader)
    except yaml.YAMLError as exc:
        if not _is_redefined_anchor(exc):
            raise
    return read_yaml(text, where, loader=_GoAnchorsLoader)


def load_documents(path: Path, warnings: list[str], display: str | None = None) -> list[Any]:
    """The documents of one file, or [] with a warning naming it when it cannot be read or parsed."""
    name = display or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        warnings.append(f"{name}: skipped, cannot be read: {exc}")
        return []
    try:
        return parse_yaml_documents(text, name)
    except yaml.YAMLError as exc:
        warnings.append(f"{name}: skipped, not YAML that PyYAML can parse: {' '.join(str(exc).split())}")
        return []


# --- Records --------------------------------------------------------------------------------------------------


def api_group(api_version: str) -> str:
    return api_version.rpartition("/")[0] if "/" in api_version else ""


def is_flux_group(group: str) -> bool:
    return group == "fluxcd.io" or group.endswith(".fluxcd.io") or group == "fluxcd.controlplane.io"


def default_keep(api_version: str, kind: str) -> bool:
    """Flux kinds, workloads, and the ConfigMaps and Secrets postBuild.substituteFrom may read."""
    group = api_group(api_version)
    if is_flux_group(group):
        return True
    if group == "" and kind in _KEPT_CORE:
        return True
    return kind in _WORKLOAD_GROUPS.get(group, set())


@dataclass(frozen=True)
class FluxObject:
    """One Kubernetes object of a fleet. `body` is the whole document; treat it as read-only (transformations
    return new records). `file` is where it was read (relative to the tree's root for read_tree), `index` its
    document number in that file."""

    api_version: str
    kind: str
    name: str
    namespace: str | None
    body: dict[str, Any]
    file: str
    index: int = 0

    @property
    def group(self) -> str:
        return api_group(self.api_version)

    @property
    def version(self) -> str:
        return self.api_version.rpartition("/")[2]

    @property
    def is_flux(self) -> bool:
        return is_flux_group(self.group)

    @property
    def display(self) -> str:
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name or "(no name)"
        return f"{self.kind} {where}"

    @property
    def where(self) -> str:
        """`file: Kind namespace/name`, for messages."""
        return f"{self.file}: {self.display}"

    @property
    def spec(self) -> dict[str, Any]:
        spec = self.body.get("spec")
        return spec if isinstance(spec, dict) else {}

    @property
    def labels(self) -> dict[str, Any]:
        return _meta_map(self.body, "labels")

    @property
    def annotations(self) -> dict[str, Any]:
        return _meta_map(self.body, "annotations")

    def with_body(self, body: dict[str, Any]) -> FluxObject:
        """The same record with a new body; kind, name and namespace are read again from it."""
        made = object_from_document(body, self.file, self.index)
        if made is None:
            return replace(self, body=body)
        return made

    @classmethod
    def from_document(cls, doc: Any, file: str, index: int = 0) -> FluxObject | None:
        return object_from_document(doc, file, index)


def _meta_map(body: Mapping[str, Any], key: str) -> dict[str, Any]:
    metadata = body.get("metadata")
    value = metadata.get(key) if isinstance(metadata, dict) else None
    return value if isinstance(value, dict) else {}


def object_from_document(doc: Any, file: str, index: int = 0) -> FluxObject | None:
    """A record for a Kubernetes document (one with string apiVersion and kind), else None."""
    if not isinstance(doc, dict):
        return None
    api_version, kind = doc.get("apiVersion"), doc.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str) or not api_version or not kind:
        return None
    metadata = doc.get("metadata")
    if not isinstance(metadata, dict):
        metadata = {}
    name = metadata.get("name")
    namespace = metadata.get("namespace")
    return FluxObject(
        api_version=api_version,
        kind=kind,
        name=str(name) if isinstance(name, str | int) and not isinstance(name, bool) else "",
        namespace=str(namespace) if isinstance(namespace, str) and namespace else None,
        body=doc,
        file=file,
        index=index,
    )


def objects_from_documents(
    docs: Iterable[Any], file: str, *, keep: Callable[[str, str], bool] = default_keep
) -> list[FluxObject]:
    """Records for the kept Kubernetes documents; `kind: List` documents are expanded."""
    result: list[FluxObject] = []
    for index, doc in enumerate(docs):
        if isinstance(doc, dict) and doc.get("kind") == "List" and isinstance(doc.get("items"), list):
            items = doc["items"]
        else:
            items = [doc]
        for item in items:
            made = object_from_document(item, file, index)
            if made is not None and keep(made.api_version, made.kind):
                result.append(made)
    return result


# --- The simple reader ----------------------------------------------------------------------------------------


def _yaml_files(directory: Path) -> list[Path]:
    """Every .yaml/.yml file under `directory`, sorted, hidden files and directories (.git, .github) left out."""
    found = []
    for path in sorted(directory.rglob("*")):
        relative = path.relative_to(directory).parts
        if any(part.startswith(".") for part in relative):
            continue
        if path.suffix in YAML_SUFFIXES and path.is_file():
            found.append(path)
    return found


def read_yaml_files(
    directory: Path,
    *,
    warnings: list[str] | None = None,
    keep: Callable[[str, str], bool] = default_keep,
) -> list[FluxObject]:
    """Every kept object of every YAML file under `directory` (or in the one file it names), no kustomize."""
    notes = warnings if warnings is not None else []
    directory = Path(directory)
    files = [directory] if directory.is_file() else _yaml_files(directory)
    base = directory.parent if directory.is_file() else directory
    result: list[FluxObject] = []
    for path in files:
        display = path.relative_to(base).as_posix()
        result += objects_from_documents(load_documents(path, notes, display), display, keep=keep)
    return result


# --- Images ---------------------------------------------------------------------------------------------------


def pod_spec(obj: FluxObject) -> dict[str, Any] | None:
    path = WORKLOAD_POD_SPECS.get(obj.kind)
    if path is None or obj.kind not in _WORKLOAD_GROUPS.get(obj.group, set()):
        return None
    node: Any = obj.body
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
    return node if isinstance(node, dict) else None


def workload_images(obj: FluxObject) -> list[tuple[str, Any]]:
    """(field path, value) of every container image of a workload, in document order."""
    spec = pod_spec(obj)
    if spec is None:
        return []
    prefix = ".".join(WORKLOAD_POD_SPECS[obj.kind])
    found = []
    for key in CONTAINER_LISTS:
        containers = spec.get(key)
        if not isinstance(containers, list):
            continue
        for i, container in enumerate(containers):
            if isinstance(container, dict) and "image" in container:
                found.append((f"{prefix}.{key}[{i}].image", container["image"]))
    return found


def split_image(text: str) -> tuple[str, str | None, str | None]:
    """`name[:tag][@digest]` → (name, tag, digest), as kustomize splits an image."""
    name, digest = text, None
    if "@" in name:
        name, digest = name.split("@", 1)
    tag = None
    colon, slash = name.rfind(":"), name.rfind("/")
    if colon > slash:
        name, tag = name[:colon], name[colon + 1 :]
    return name, tag, digest


def dump_json(value: Any) -> str:
    """A stable text for comparing bodies and keying visits."""
    return json.dumps(value, sort_keys=True, default=str)
