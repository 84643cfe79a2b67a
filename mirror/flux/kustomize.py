"""The kustomize build, as kustomize-controller runs it, of the parts that decide what mirror collects.

`read_tree(root, path)` is what kustomize-controller builds from `path` inside a source whose files are under
`root`: the kustomization.yaml there when there is one; otherwise every manifest under `path`, a
sub-directory holding a kustomization.yaml being built as such (Flux's generated kustomization).

`read_tree` imitates the parts of kustomize that decide which Flux objects and images a build yields:
`resources` (also the old `bases`, and `components`) that are local files or directories, `namespace`,
`patches` (strategic merge or JSON 6902, by target or by the patch's own kind and name),
`patchesStrategicMerge`, `patchesJson6902`, `images`, and `configMapGenerator` (without the hash suffix, so that
HelmRelease valuesFrom and postBuild.substituteFrom find what they name). Everything else (`replacements`,
`namePrefix`, `helmCharts`, remote resources, ...) is not imitated: the ones that can change what is
collected are named in a warning. Nothing outside `root` is read, as kustomize-controller's secure file system
refuses it too.

Problems never raise here except a path outside the root and YAML past its budget (mirror/flux/objects.py):
they are appended to the `warnings` list.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from mirror.errors import UsageError
from mirror.flux.objects import (
    KEPT_KINDS,
    YAML_SUFFIXES,
    FluxObject,
    api_group,
    default_keep,
    load_documents,
    object_from_document,
    objects_from_documents,
    parse_yaml_documents,
    split_image,
    workload_images,
)
from mirror.flux.patterns import compile_upstream, literal
from mirror.kube import CONTAINER_LISTS, WORKLOAD_POD_SPECS
from mirror.limits import DEFAULT_LIMITS, Limits

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
KUSTOMIZE_GROUP = "kustomize.config.k8s.io"


# --- The kustomize-aware reader -------------------------------------------------------------------------------


def _is_remote(entry: str) -> bool:
    return (
        "://" in entry or entry.startswith(("github.com/", "gitlab.com/", "git@", "bitbucket.org/")) or "?ref=" in entry
    )


def _find_kustomization(directory: Path) -> Path | None:
    for name in KUSTOMIZATION_FILES:
        candidate = directory / name
        if candidate.is_file():
            return candidate
    return None


class _TreeReader:
    def __init__(self, root: Path, warnings: list[str], keep: Callable[[str, str], bool], max_depth: int) -> None:
        self.root = root.resolve()
        self.warnings = warnings
        self.keep = keep
        self.max_depth = max_depth  # kustomizations nested in kustomizations
        self.building: list[Path] = []

    def display(self, path: Path) -> str:
        try:
            text = path.resolve().relative_to(self.root).as_posix()
        except ValueError:
            return str(path)
        return text if text != "." else "."

    def inside(self, path: Path) -> Path | None:
        resolved = path.resolve()
        if resolved == self.root or self.root in resolved.parents:
            return resolved
        return None

    def build(self, directory: Path) -> list[FluxObject]:
        if directory in self.building:
            self.warnings.append(f"{self.display(directory)}: kustomization cycle; not read again")
            return []
        if len(self.building) >= self.max_depth:
            self.warnings.append(f"{self.display(directory)}: kustomizations nested too deeply; not read")
            return []
        self.building.append(directory)
        try:
            kfile = _find_kustomization(directory)
            return self.kustomization(directory, kfile) if kfile else self.generated(directory)
        finally:
            self.building.pop()

    def generated(self, directory: Path) -> list[FluxObject]:
        """Flux's generated kustomization: every manifest; a directory with a kustomization is built as one."""
        result: list[FluxObject] = []
        for entry in sorted(directory.iterdir()):
            if entry.name.startswith("."):
                continue
            inside = self.inside(entry)
            if inside is None:
                self.warnings.append(f"{self.display(entry)}: points outside the source root; not read")
                continue
            if inside.is_dir():
                result += self.build(inside) if _find_kustomization(inside) else self.generated(inside)
            elif entry.suffix in YAML_SUFFIXES and inside.is_file():
                result += self.file(inside)
        return result

    def file(self, path: Path) -> list[FluxObject]:
        display = self.display(path)
        return objects_from_documents(load_documents(path, self.warnings, display), display, keep=self.keep)

    def kustomization(self, directory: Path, kfile: Path) -> list[FluxObject]:
        where = self.display(kfile)
        docs = load_documents(kfile, self.warnings, where)
        spec = docs[0] if len(docs) == 1 and isinstance(docs[0], dict) else None
        if spec is None:
            self.warnings.append(f"{where}: not a kustomization (expected one mapping); directory read as manifests")
            return self.generated_without(directory, kfile)
        if api_group(str(spec.get("apiVersion", ""))).endswith("fluxcd.io"):
            # A Flux Kustomization saved under that name: kustomize would refuse it; treat it as a manifest.
            self.warnings.append(f"{where}: a Flux object named like a kustomization file; read as a manifest")
            return self.generated_without(directory, None)
        result: list[FluxObject] = []
        for key in ("resources", "bases", "components"):
            entries = spec.get(key) or []
            if not isinstance(entries, list):
                self.warnings.append(f"{where}: {key} is not a list; ignored")
                continue
            for entry in entries:
                result += self.resource(directory, entry, f"{where}: {key}")
        result += self.config_maps(directory, spec.get("configMapGenerator"), where)
        for key in ("namePrefix", "nameSuffix", "helmCharts", "replacements", "vars"):
            if spec.get(key):
                self.warnings.append(f"{where}: {key} is not imitated; the objects are read without it")
        context = PatchContext(self.root, directory, self.warnings, where)
        result = apply_patch_entries(result, _patch_entries(spec), context)
        namespace = spec.get("namespace")
        if isinstance(namespace, str) and namespace:
            result = set_namespace(result, namespace)
        images = spec.get("images")
        if images:
            result = apply_images(result, images, self.warnings, where)
        return result

    def config_maps(self, directory: Path, generators: Any, where: str) -> list[FluxObject]:
        """configMapGenerator's ConfigMaps (files, literals, envs), named without kustomize's hash suffix: they
        are read for HelmRelease valuesFrom and postBuild.substituteFrom, which name them without it too."""
        if not generators or not self.keep("v1", "ConfigMap"):
            return []
        result = []
        for i, generator in enumerate(generators if isinstance(generators, list) else []):
            label = f"{where}: configMapGenerator[{i}]"
            if not isinstance(generator, dict) or not isinstance(generator.get("name"), str):
                self.warnings.append(f"{label}: no name; ignored")
                continue
            data: dict[str, str] = {}
            for item in generator.get("literals") or []:
                key, sep, value = str(item).partition("=")
                if sep:
                    data[key] = value
            for item in [*(generator.get("envs") or []), *([generator["env"]] if generator.get("env") else [])]:
                text = self.generator_file(directory, str(item), label)
                for line in (text or "").splitlines():
                    key, sep, value = line.partition("=")
                    if sep and not line.lstrip().startswith("#"):
                        data[key.strip()] = value
            for item in generator.get("files") or []:
                key, sep, relative = str(item).partition("=")
                relative = relative if sep else key
                text = self.generator_file(directory, relative, label)
                if text is not None:
                    data[key if sep else PurePosixPath(relative).name] = text
            body: dict[str, Any] = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": generator["name"]}}
            if isinstance(generator.get("namespace"), str):
                body["metadata"]["namespace"] = generator["namespace"]
            body["data"] = data
            made = object_from_document(body, label)
            if made is not None:
                result.append(made)
        return result

    def generator_file(self, directory: Path, relative: str, where: str) -> str | None:
        path = self.inside(directory / relative)
        if path is None or not path.is_file():
            self.warnings.append(f"{where}: {relative} is not a file inside the source root; ignored")
            return None
        try:
            return path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            self.warnings.append(f"{where}: {relative} cannot be read: {exc}")
            return None

    def generated_without(self, directory: Path, skip: Path | None) -> list[FluxObject]:
        result = []
        for entry in sorted(directory.iterdir()):
            if entry == skip or entry.name.startswith("."):
                continue
            inside = self.inside(entry)
            if inside is not None and inside.is_file() and entry.suffix in YAML_SUFFIXES:
                result += self.file(inside)
            elif inside is not None and inside.is_dir():
                result += self.build(inside)
        return result

    def resource(self, directory: Path, entry: Any, where: str) -> list[FluxObject]:
        if not isinstance(entry, str) or not entry:
            self.warnings.append(f"{where}: entry {entry!r} is not a path; ignored")
            return []
        if _is_remote(entry):
            self.warnings.append(f"{where}: remote resource {entry} is not read (its objects and images are missed)")
            return []
        path = self.inside(directory / entry)
        if path is None:
            self.warnings.append(f"{where}: {entry} is outside the source root; not read")
            return []
        if path.is_dir():
            if _find_kustomization(path) is None:
                self.warnings.append(
                    f"{where}: {entry} has no kustomization file (kustomize refuses it); read as manifests"
                )
            return self.build(path)
        if path.is_file():
            return self.file(path)
        self.warnings.append(f"{where}: {entry} does not exist")
        return []


def read_tree(
    root: Path,
    path: str = ".",
    *,
    warnings: list[str] | None = None,
    keep: Callable[[str, str], bool] = default_keep,
    limits: Limits = DEFAULT_LIMITS,
) -> list[FluxObject]:
    """The kept objects kustomize-controller would build from `path` (a Flux `spec.path`) inside `root`.

    Raises UsageError when `path` leaves `root` or does not exist; everything else is a warning.
    """
    notes = warnings if warnings is not None else []
    reader = _TreeReader(Path(root), notes, keep, limits.max_kustomize_depth)
    relative = normalise_path(path)
    target = reader.inside(reader.root / relative)
    if target is None:
        raise UsageError(f"{path}: the path leaves the source root {root}")
    if not target.exists():
        raise UsageError(f"{root}: path {path} does not exist")
    if target.is_file():
        return reader.file(target)
    return reader.build(target)


def normalise_path(path: str) -> str:
    """A Flux `spec.path` as a relative POSIX path: `./a/b/`, `/a/b` and `a/b` are all `a/b`; empty is `.`."""
    text = str(PurePosixPath("/" + (path or "").strip()))  # absolute, so `..` cannot climb above the root
    parts: list[str] = []
    for part in text.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
            continue
        parts.append(part)
    return "/".join(parts) or "."


# --- Transformations ------------------------------------------------------------------------------------------


def set_namespace(objects: Sequence[FluxObject], namespace: str) -> list[FluxObject]:
    """kustomize's `namespace:` (and Flux's targetNamespace): set on every kept object, all namespaced."""
    result = []
    for obj in objects:
        if obj.namespace == namespace:
            result.append(obj)
            continue
        body = copy.deepcopy(obj.body)
        metadata = body.get("metadata")
        if not isinstance(metadata, dict):
            metadata = body["metadata"] = {}
        metadata["namespace"] = namespace
        result.append(obj.with_body(body))
    return result


@dataclass
class PatchContext:
    """Where patch files are read from, and where problems go."""

    root: Path | None
    directory: Path | None
    warnings: list[str]
    where: str


def _patch_entries(spec: Mapping[str, Any]) -> list[tuple[Any, Any, str]]:
    """(content-or-path, target, label) for patches, patchesStrategicMerge and patchesJson6902, in kustomize's
    order: strategic merge patches first, then patches, then JSON 6902 patches."""
    entries: list[tuple[Any, Any, str]] = []
    for i, item in enumerate(spec.get("patchesStrategicMerge") or []):
        entries.append(
            (
                {"path": item} if isinstance(item, str) and "\n" not in item else {"patch": item},
                None,
                f"patchesStrategicMerge[{i}]",
            )
        )
    for i, item in enumerate(spec.get("patches") or []):
        entries.append((item, item.get("target") if isinstance(item, dict) else None, f"patches[{i}]"))
    for i, item in enumerate(spec.get("patchesJson6902") or []):
        entries.append((item, item.get("target") if isinstance(item, dict) else None, f"patchesJson6902[{i}]"))
    return entries


def apply_patch_entries(
    objects: list[FluxObject], entries: Sequence[tuple[Any, Any, str]], context: PatchContext
) -> list[FluxObject]:
    for item, target, label in entries:
        where = f"{context.where}: {label}"
        content = _patch_content(item, context, where)
        if content is None:
            continue
        for patch in content:
            objects = apply_patch(objects, patch, target, context.warnings, where)
    return objects


def _patch_content(item: Any, context: PatchContext, where: str) -> list[Any] | None:
    """The patch documents of a patch entry: inline (`patch:`, a string, or an object) or read from `path:`."""
    if isinstance(item, dict) and "path" in item and "patch" not in item:
        relative = item.get("path")
        if not isinstance(relative, str) or context.directory is None or context.root is None:
            context.warnings.append(f"{where}: patch path {relative!r} cannot be read here; ignored")
            return None
        path = (context.directory / relative).resolve()
        root = context.root.resolve()
        if path != root and root not in path.parents:
            context.warnings.append(f"{where}: patch {relative} is outside the source root; ignored")
            return None
        docs = load_documents(path, context.warnings, relative)
        return [docs[0]] if len(docs) == 1 and isinstance(docs[0], list) else docs
    patch = item.get("patch") if isinstance(item, dict) and "patch" in item else item
    if isinstance(patch, str):
        try:
            docs = parse_yaml_documents(patch, f"{where}: inline patch")
        except yaml.YAMLError as exc:
            context.warnings.append(f"{where}: inline patch is not YAML: {' '.join(str(exc).split())}; ignored")
            return None
        return [docs[0]] if len(docs) == 1 and isinstance(docs[0], list) else docs
    if isinstance(patch, dict | list):
        return [patch]
    context.warnings.append(f"{where}: not a patch; ignored")
    return None


def selects(obj: FluxObject, target: Mapping[str, Any], where: str = "patch target") -> bool:
    """Whether a kustomize/Flux patch target selects `obj`: group, version, kind exactly; name and namespace as
    anchored regular expressions (RE2, as kustomize evaluates them; an invalid one is refused, naming `where`);
    labelSelector and annotationSelector as equality-based selectors."""
    for key, actual in (("group", obj.group), ("version", obj.version), ("kind", obj.kind)):
        wanted = target.get(key)
        if wanted and wanted != actual:
            return False
    for key, actual in (("name", obj.name), ("namespace", obj.namespace or "")):
        wanted = target.get(key)
        if wanted and compile_upstream(str(wanted), f"{where}: target.{key}").fullmatch(actual) is None:
            return False
    for key, values in (("labelSelector", obj.labels), ("annotationSelector", obj.annotations)):
        selector = target.get(key)
        if selector and not _selector_matches(str(selector), values):
            return False
    return True


def _selector_matches(selector: str, values: Mapping[str, Any]) -> bool:
    for term in (t.strip() for t in selector.split(",")):
        if not term:
            continue
        if "!=" in term:
            key, _, value = term.partition("!=")
            if str(values.get(key.strip(), "")) == value.strip() and key.strip() in values:
                return False
        elif "=" in term:
            key, _, value = term.replace("==", "=").partition("=")
            if key.strip() not in values or str(values[key.strip()]) != value.strip():
                return False
        elif term.startswith("!"):
            if term[1:].strip() in values:
                return False
        elif term not in values:
            return False
    return True


def apply_patch(
    objects: list[FluxObject], patch: Any, target: Any, warnings: list[str], where: str
) -> list[FluxObject]:
    """One patch document: a list is a JSON 6902 patch (needs a target); a mapping a strategic merge patch,
    applied to the target's objects, or without a target to the object of its own kind and name."""
    if isinstance(patch, list):
        if not isinstance(target, dict):
            warnings.append(f"{where}: a JSON 6902 patch without a target; ignored")
            return objects
        chosen = [selects(obj, target, where) for obj in objects]
    elif isinstance(patch, dict):
        if isinstance(target, dict):
            chosen = [selects(obj, target, where) for obj in objects]
        else:
            own = object_from_document(patch, where)
            if own is None:
                warnings.append(f"{where}: a strategic merge patch without apiVersion and kind; ignored")
                return objects
            wanted = {"group": own.group, "kind": own.kind, "name": literal(own.name)}
            if own.namespace:
                wanted["namespace"] = literal(own.namespace)
            chosen = [selects(obj, wanted, where) for obj in objects]
    else:
        warnings.append(f"{where}: not a patch; ignored")
        return objects
    if not any(chosen):
        kind = (target if isinstance(target, dict) else patch if isinstance(patch, dict) else {}).get("kind")
        if kind in KEPT_KINDS or (not kind and isinstance(target, dict)):
            selector = f"{target}" if target else "its own kind and name"
            warnings.append(f"{where}: the patch selects none of the objects read ({selector})")
        return objects
    result = []
    for obj, take in zip(objects, chosen, strict=True):
        if not take:
            result.append(obj)
            continue
        body = copy.deepcopy(obj.body)
        if isinstance(patch, list):
            try:
                body = json_patch(body, patch)
            except ValueError as exc:
                warnings.append(f"{where}: does not apply to {obj.where}: {exc}")
                result.append(obj)
                continue
        else:
            patch_body = copy.deepcopy(patch)
            # The patch's identity selected the object (or is a placeholder such as `name: _` when targeted).
            _drop_identity(patch_body)
            body = strategic_merge(body, patch_body, merge_lists_by_name=not obj.is_flux)
        result.append(obj.with_body(body))
    return result


def _drop_identity(patch: dict[str, Any]) -> None:
    patch.pop("apiVersion", None)
    patch.pop("kind", None)
    metadata = patch.get("metadata")
    if isinstance(metadata, dict):
        metadata.pop("name", None)
        metadata.pop("namespace", None)
        if not metadata:
            patch.pop("metadata")


def strategic_merge(base: Any, patch: Any, *, merge_lists_by_name: bool, depth: int = 0) -> Any:
    """A strategic merge patch, simplified: maps merge (null deletes, `$patch: replace|delete`); lists are
    replaced, except lists of named maps in built-in kinds (containers, env, volumes), merged by name."""
    if depth > DEFAULT_LIMITS.max_yaml_depth:  # no document read is deeper: a guard on recursion only
        return patch
    if isinstance(patch, dict):
        directive = patch.get("$patch")
        if directive == "delete":
            return None
        clean = {k: v for k, v in patch.items() if k != "$patch"}
        if directive == "replace" or not isinstance(base, dict):
            return {k: v for k, v in clean.items() if v is not None}
        merged = dict(base)
        for key, value in clean.items():
            if value is None:
                merged.pop(key, None)
                continue
            result = strategic_merge(merged.get(key), value, merge_lists_by_name=merge_lists_by_name, depth=depth + 1)
            if result is None:
                merged.pop(key, None)
            else:
                merged[key] = result
        return merged
    if isinstance(patch, list) and isinstance(base, list) and merge_lists_by_name and _named(base) and _named(patch):
        merged_list = list(base)
        for item in patch:
            index = next((i for i, old in enumerate(merged_list) if old.get("name") == item.get("name")), None)
            if item.get("$patch") == "delete":
                if index is not None:
                    merged_list.pop(index)
            elif index is None:
                merged_list.append({k: v for k, v in item.items() if k != "$patch"})
            else:
                merged_list[index] = strategic_merge(
                    merged_list[index], item, merge_lists_by_name=True, depth=depth + 1
                )
        return merged_list
    return patch


def _named(items: list[Any]) -> bool:
    return bool(items) and all(isinstance(item, dict) and "name" in item for item in items)


def _pointer(path: Any) -> list[str]:
    if not isinstance(path, str) or (path and not path.startswith("/")):
        raise ValueError(f"{path!r} is not a JSON pointer")
    return [part.replace("~1", "/").replace("~0", "~") for part in path.split("/")[1:]] if path else []


def _walk(doc: Any, parts: list[str], path: object) -> Any:
    node = doc
    for part in parts:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise ValueError(f"path {path} does not exist")
    return node


def _add(doc: Any, parts: list[str], value: Any, path: object, *, replace_only: bool = False) -> Any:
    if not parts:
        return value
    parent = _walk(doc, parts[:-1], path)
    last = parts[-1]
    if isinstance(parent, dict):
        if replace_only and last not in parent:
            raise ValueError(f"path {path} does not exist")
        parent[last] = value
    elif isinstance(parent, list):
        if last == "-" and not replace_only:
            parent.append(value)
        elif last.isdigit() and int(last) <= len(parent) - (1 if replace_only else 0):
            if replace_only:
                parent[int(last)] = value
            else:
                parent.insert(int(last), value)
        else:
            raise ValueError(f"index in {path} is out of range")
    else:
        raise ValueError(f"path {path} does not exist")
    return doc


def _remove(doc: Any, parts: list[str], path: object) -> Any:
    if not parts:
        raise ValueError("cannot remove the whole document")
    parent = _walk(doc, parts[:-1], path)
    last = parts[-1]
    if isinstance(parent, dict) and last in parent:
        return parent.pop(last)
    if isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        return parent.pop(int(last))
    raise ValueError(f"path {path} does not exist")


def json_patch(doc: Any, operations: Sequence[Any]) -> Any:
    """RFC 6902 on a copy's worth of data (the caller copies); raises ValueError naming the failing operation."""
    for number, op in enumerate(operations):
        if not isinstance(op, dict) or not isinstance(op.get("op"), str):
            raise ValueError(f"operation {number} is not an {{op, path}} mapping")
        kind, path = op["op"], op.get("path")
        parts = _pointer(path)
        if kind == "add":
            doc = _add(doc, parts, copy.deepcopy(op.get("value")), path)
        elif kind == "replace":
            doc = _add(doc, parts, copy.deepcopy(op.get("value")), path, replace_only=True)
        elif kind == "remove":
            _remove(doc, parts, path)
        elif kind in ("move", "copy"):
            source = _pointer(op.get("from"))
            value = (
                _remove(doc, source, op.get("from"))
                if kind == "move"
                else copy.deepcopy(_walk(doc, source, op.get("from")))
            )
            doc = _add(doc, parts, value, path)
        elif kind == "test":
            if _walk(doc, parts, path) != op.get("value"):
                raise ValueError(f"test at {path} failed")
        else:
            raise ValueError(f"unknown operation {kind!r}")
    return doc


def apply_images(objects: Sequence[FluxObject], images: Any, warnings: list[str], where: str) -> list[FluxObject]:
    """kustomize's (and Flux's spec.images) image transformer on workload containers: an entry's `name`
    matches an image whose name (without tag or digest) is exactly it; `newName`, `newTag` and `digest`
    replace the parts (a digest drops the tag, a new tag drops the digest)."""
    if not isinstance(images, list):
        warnings.append(f"{where}: images is not a list; ignored")
        return list(objects)
    rules = [i for i in images if isinstance(i, dict) and isinstance(i.get("name"), str)]
    if len(rules) != len(images):
        warnings.append(f"{where}: images entries without a name are ignored")
    result = []
    for obj in objects:
        if not workload_images(obj):
            result.append(obj)
            continue
        body = copy.deepcopy(obj.body)
        changed = False
        spec: Any = body
        for key in WORKLOAD_POD_SPECS[obj.kind]:
            spec = spec.get(key) if isinstance(spec, dict) else None
        for key in CONTAINER_LISTS:
            containers = spec.get(key) if isinstance(spec, dict) else None
            for container in containers if isinstance(containers, list) else []:
                if not isinstance(container, dict) or not isinstance(container.get("image"), str):
                    continue
                new = _transform_image(container["image"], rules)
                if new != container["image"]:
                    container["image"] = new
                    changed = True
        result.append(obj.with_body(body) if changed else obj)
    return result


def _transform_image(image: str, rules: Sequence[Mapping[str, Any]]) -> str:
    name, tag, digest = split_image(image)
    for rule in rules:
        if rule["name"] != name:
            continue
        new_name = str(rule.get("newName") or name)
        new_tag = rule.get("newTag")
        new_digest = rule.get("digest")
        if new_digest:
            return f"{new_name}@{new_digest}"
        if new_tag is not None and new_tag != "":
            return f"{new_name}:{new_tag}"
        text = new_name + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")
        return text
    return image
