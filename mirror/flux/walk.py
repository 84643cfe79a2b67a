"""Walking a Flux fleet: the objects it applies, found by following its Kustomizations.

Use a FluxWalker: give it the objects read at the root (kustomize.read_tree) and a callback that reads the
objects of another source's path. The walker follows every Kustomization (kustomize.toolkit.fluxcd.io) to its
`sourceRef` and `path` through the callback, applies what kustomize-controller applies there (targetNamespace,
patches, images, postBuild substitution), and does so recursively: a (source, path, variables, transformations)
visited once is not read again, so cycles end, and nesting is bounded by `max_depth`. Then every object
collected is resolved into a FluxPlan (mirror/flux/resolve.py says how).

The root: `walk(objects, source=KEY, path=P)` says which source and path the root objects were read from. A
Kustomization that applies exactly that source and path (the bootstrap's flux-system) is followed first, and its
build replaces the root objects (with its substitutions and patches): they are what Flux really applies. A
Kustomization whose sourceRef is an ExternalArtifact is mapped through the ArtifactGenerator that makes it
(`copy: [{from: "@alias/dir/**", to: "@artifact/dest/"}]`) back to the source and path it copies: an
approximation that holds when the artifact keeps the source's relative layout, as the copy rules fleets use do.

The postBuild substitution itself is mirror/flux/substitute.py; the records are mirror/flux/plan.py; the
resolution of the objects collected into a plan is mirror/flux/resolve.py.

Everything that cannot be resolved is collected as a problem naming the file and object; `FluxPlan.check()`
(and `walk(strict=True)`) raises one FluxResolutionError listing them all.
"""

from __future__ import annotations

import base64
import binascii
import copy
import re
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mirror.errors import UsageError
from mirror.flux.kustomize import PatchContext, apply_images, apply_patch_entries, normalise_path, set_namespace
from mirror.flux.objects import FluxObject, dump_json, workload_images
from mirror.flux.plan import (
    EXTENSIONS_GROUP,
    KUSTOMIZE_GROUP,
    SOURCE_GROUP,
    FluxPlan,
    FollowedKustomization,
    OciArtifact,
    ReadTree,
    SourceKey,
)
from mirror.flux.resolve import FleetResolution, _Held, _key_of, _ns, _scalar_text
from mirror.flux.substitute import (
    _COMMON_FIELDS,
    _SUBSTITUTED_FIELDS,
    _VAR_NAME,
    _image_path,
    _substitute_at,
    substitute_object,
    substitution_disabled,
)
from mirror.limits import DEFAULT_LIMITS, Limits
from mirror.manifest.model import GitSource
from mirror.oci.platform import Platform

# --- Walking --------------------------------------------------------------------------------------------------


@dataclass
class _Build:
    """One tree to read: the root objects, or the build of a Kustomization."""

    objects: list[FluxObject] | None = None
    via: FluxObject | None = None
    depth: int = 0


@dataclass(frozen=True)
class _Resolved:
    source: SourceKey
    path: str
    variables: dict[str, str] | None
    transforms: dict[str, Any]


class FluxWalker(FleetResolution):
    """Collects the objects of a fleet by following its Kustomizations, then resolves them (see module doc).

    `read_tree(source, path)` returns the objects kustomize-controller would build from `path` of that source
    (kustomize.read_tree over a checkout does it), or None when the caller has no content for that source: the
    Kustomization is then listed as a problem. It may raise UsageError, which is recorded as a problem too.
    `source(key)` tells the callback what a key designates (GitSource or OciArtifact) while the walk runs.

    `variables` stand for values the cluster would supply (--flux-var): the lowest-priority postBuild values
    of every Kustomization that has a postBuild, and the substitution of the root objects when given.
    `external` defines sources that are not among the objects (say, the repository of a bootstrap whose
    GitRepository lives elsewhere); they are used for references and included in the plan.
    """

    def __init__(
        self,
        read_tree: ReadTree,
        *,
        variables: Mapping[str, str] | None = None,
        platforms: tuple[Platform, ...] | None = None,
        external: Mapping[SourceKey, GitSource | OciArtifact] | None = None,
        max_depth: int = 32,
        limits: Limits = DEFAULT_LIMITS,
        ssh_urls: Callable[[str], str | None] | None = None,
    ) -> None:
        self._read_tree = read_tree
        self._ssh_urls = ssh_urls
        self._limits = limits
        self._variables = dict(variables or {})
        self._platforms = platforms
        self._external = dict(external or {})
        self._max_depth = max_depth
        self._held: dict[tuple[str, str, str, str], _Held] = {}
        self._visited: set[tuple[Any, ...]] = set()
        self._root: tuple[SourceKey, str] | None = None
        self._plan = FluxPlan()

    # The walk.

    def walk(
        self,
        objects: Sequence[FluxObject],
        *,
        source: SourceKey | None = None,
        path: str = ".",
        strict: bool = False,
    ) -> FluxPlan:
        """Walk from `objects`, read at `path` of `source` (None: a directory that is no Flux source).

        When a Kustomization collected applies that same source and path (the bootstrap's flux-system), its
        build replaces the root objects: they are what Flux applies, with its substitutions and patches.
        One FluxWalker walks once.
        """
        for name in self._variables:
            if not _VAR_NAME.fullmatch(name):
                self._plan.problems.append(f"--flux-var {name}: not a valid variable name")
        if source is not None:
            self._root = (source, normalise_path(path))
        queue: deque[_Build] = deque([_Build(list(objects))])
        while queue:
            self._process(queue.popleft(), queue)
        self._report_literals()
        self._resolve()
        plan = self._plan
        plan.objects = [held.obj for held in self._held.values()]
        plan.problems = list(dict.fromkeys(plan.problems))
        plan.warnings = list(dict.fromkeys(plan.warnings))
        if strict:
            plan.check()
        return plan

    def source(self, key: SourceKey) -> GitSource | OciArtifact | None:
        """What `key` designates, from the objects collected so far (for the read_tree callback)."""
        if key in self._external:
            return self._external[key]
        held = self._held.get((SOURCE_GROUP, key.kind, key.namespace, key.name))
        if held is None:
            return None
        if key.kind == "GitRepository":
            return self._git_source(held.obj, [], quiet=True)
        if key.kind == "OCIRepository":
            return self._oci_artifact(held.obj, [], is_chart=False, quiet=True)
        return None

    def _process(self, build: _Build, queue: deque[_Build]) -> None:
        if build.objects is not None:  # the root
            variables = self._variables or None
            objects = build.objects
            replacing = False
        else:
            read = self._read(build)
            if read is None:
                return
            objects, variables, replacing = read
        if variables is not None:
            objects = [substitute_object(obj, variables, self._plan.problems) for obj in objects]
        for obj in objects:
            new = self._register(obj, variables, from_root=build.objects is not None, replacing=replacing)
            if new and obj.group == KUSTOMIZE_GROUP and obj.kind == "Kustomization":
                follow = _Build(None, via=obj, depth=build.depth + 1)
                # The Kustomization that applies the root itself goes first: its build replaces the root objects
                # (with its substitutions) before any of them is followed.
                if build.objects is not None and self._applies_root(obj):
                    queue.appendleft(follow)
                else:
                    queue.append(follow)

    def _applies_root(self, obj: FluxObject) -> bool:
        ref = obj.spec.get("sourceRef")
        if self._root is None or not isinstance(ref, dict):
            return False
        key = SourceKey(str(ref.get("kind")), str(ref.get("namespace") or _ns(obj)), str(ref.get("name")))
        return (key, normalise_path(str(obj.spec.get("path") or "./"))) == self._root

    def _read(self, build: _Build) -> tuple[list[FluxObject], dict[str, str] | None, bool] | None:
        kustomization = build.via
        assert kustomization is not None
        held = self._held.get((kustomization.group, kustomization.kind, _ns(kustomization), kustomization.name))
        if held is None or held.obj is not kustomization:
            return None  # replaced by the build that applies the root; the replacement is followed instead
        key = _key_of(kustomization)
        resolved = self._resolve_kustomization(kustomization)
        if resolved is None:
            self._follow(key, None, "", None, "unsupported", kustomization)
            return None
        visit = (resolved.source, resolved.path, dump_json(resolved.variables), dump_json(resolved.transforms))
        if visit in self._visited:
            self._follow(key, resolved.source, resolved.path, resolved.variables, "seen", kustomization)
            return None
        self._visited.add(visit)
        if build.depth > self._max_depth:
            self._plan.problems.append(
                f"{kustomization.where}: Kustomizations nested more than {self._max_depth} deep; not followed"
            )
            self._follow(key, resolved.source, resolved.path, resolved.variables, "failed", kustomization)
            return None
        try:
            read = self._read_tree(resolved.source, resolved.path)
        except UsageError as exc:
            self._plan.problems.append(
                f"{kustomization.where}: cannot read {resolved.path} of {resolved.source}: {exc.one_line()}"
            )
            self._follow(key, resolved.source, resolved.path, resolved.variables, "failed", kustomization)
            return None
        if read is None:
            self._plan.problems.append(
                f"{kustomization.where}: the content of {resolved.source} is not available, so the objects at "
                f"{resolved.path} are not collected"
            )
            self._follow(key, resolved.source, resolved.path, resolved.variables, "unavailable", kustomization)
            return None
        self._follow(key, resolved.source, resolved.path, resolved.variables, "read", kustomization)
        objects = [_relabel(obj, resolved.source) for obj in read]
        objects = self._transform(objects, resolved.transforms, kustomization)
        replacing = self._root == (resolved.source, resolved.path)
        return objects, resolved.variables, replacing

    def _follow(
        self,
        key: SourceKey,
        source: SourceKey | None,
        path: str,
        variables: Mapping[str, str] | None,
        status: str,
        via: FluxObject,
    ) -> None:
        self._plan.kustomizations.append(FollowedKustomization(key, source, path, variables, status, via.where))

    def _register(self, obj: FluxObject, variables: dict[str, str] | None, *, from_root: bool, replacing: bool) -> bool:
        """Keep the first definition of each object; True when `obj` is new (its Kustomizations are followed)."""
        key = (obj.group, obj.kind, _ns(obj), obj.name)
        known = self._held.get(key)
        if known is None:
            self._held[key] = _Held(obj, variables, from_root)
            return True
        if replacing and known.from_root:
            changed = dump_json(known.obj.body) != dump_json(obj.body)
            self._held[key] = _Held(obj, variables, False)
            return changed
        if dump_json(known.obj.body) != dump_json(obj.body) and obj.is_flux:
            self._plan.warnings.append(
                f"{obj.where}: defined again differently (first in {known.obj.file}); the first definition is used"
            )
        return False

    def _report_literals(self) -> None:
        """Without substitution, a `${…}` in a field mirror reads stays as written: name each one."""
        for held in self._held.values():
            if held.variables is not None or substitution_disabled(held.obj):
                continue
            obj = held.obj
            fields = list(_COMMON_FIELDS) + list(_SUBSTITUTED_FIELDS.get((obj.group, obj.kind), ()))
            fields += [_image_path(label) for label, _ in workload_images(obj)]
            labels: list[str] = []
            scratch = copy.deepcopy(obj.body)

            def report(label: str, _: str, labels: list[str] = labels) -> None:
                labels.append(label)

            for path in fields:
                _substitute_at(scratch, path, lambda _: None, report, "")
            for label in dict.fromkeys(labels):
                self._plan.problems.append(
                    f"{obj.where}: {label}: holds a ${{…}} variable, but no postBuild substitution applies to this "
                    "object, so Flux leaves it as written (pass --flux-var if the root objects need it)"
                )

    def _transform(self, objects: list[FluxObject], transforms: Mapping[str, Any], via: FluxObject) -> list[FluxObject]:
        where = via.where
        entries = []
        for key in ("patchesStrategicMerge", "patches", "patchesJson6902"):
            for i, item in enumerate(transforms.get(key) or []):
                target = item.get("target") if isinstance(item, dict) and key != "patchesStrategicMerge" else None
                content = {"patch": item} if key == "patchesStrategicMerge" else item
                entries.append((content, target, f"spec.{key}[{i}]"))
        objects = apply_patch_entries(objects, entries, PatchContext(None, None, self._plan.warnings, where))
        if transforms.get("targetNamespace"):
            objects = set_namespace(objects, str(transforms["targetNamespace"]))
        if transforms.get("images"):
            objects = apply_images(objects, transforms["images"], self._plan.warnings, f"{where}: spec.images")
        return objects

    def _resolve_kustomization(self, obj: FluxObject) -> _Resolved | None:
        spec = obj.spec
        ref = spec.get("sourceRef")
        if not isinstance(ref, dict) or not isinstance(ref.get("kind"), str) or not isinstance(ref.get("name"), str):
            self._plan.problems.append(f"{obj.where}: spec.sourceRef: expected {{kind, name}}")
            return None
        source = SourceKey(ref["kind"], str(ref.get("namespace") or _ns(obj)), ref["name"])
        path = normalise_path(str(spec.get("path") or "./"))
        if source.kind == "ExternalArtifact":
            mapped = self._external_artifact(obj, source, path)
            if mapped is None:
                return None
            source, path = mapped
        elif source.kind not in ("GitRepository", "OCIRepository"):
            self._plan.problems.append(f"{obj.where}: spec.sourceRef: {source.kind} sources are not supported")
            return None
        transforms = {
            key: spec[key]
            for key in ("targetNamespace", "patches", "patchesStrategicMerge", "patchesJson6902", "images")
            if spec.get(key)
        }
        return _Resolved(source, path, self._post_build(obj), transforms)

    def _post_build(self, obj: FluxObject) -> dict[str, str] | None:
        post_build = obj.spec.get("postBuild")
        if not isinstance(post_build, dict):
            return None
        found: dict[str, str] = {}
        for i, ref in enumerate(post_build.get("substituteFrom") or []):
            found.update(self._substitute_from(obj, ref, f"spec.postBuild.substituteFrom[{i}]"))
        inline = post_build.get("substitute") or {}
        if not isinstance(inline, dict):
            self._plan.problems.append(f"{obj.where}: spec.postBuild.substitute: expected a map")
            inline = {}
        for name, value in inline.items():
            if value is None or isinstance(value, dict | list):
                self._plan.problems.append(f"{obj.where}: spec.postBuild.substitute.{name}: expected a string")
                continue
            found[str(name)] = _scalar_text(value).replace("\n", "")
        for name in found:
            if not _VAR_NAME.fullmatch(name):
                self._plan.problems.append(f"{obj.where}: postBuild variable {name!r}: not a valid variable name")
        variables = {**self._variables, **found}
        if not variables and post_build.get("substituteStrategy") != "Always":
            return None
        return variables

    def _substitute_from(self, obj: FluxObject, ref: Any, label: str) -> dict[str, str]:
        if not isinstance(ref, dict) or ref.get("kind") not in ("ConfigMap", "Secret") or not ref.get("name"):
            self._plan.problems.append(f"{obj.where}: {label}: expected {{kind: ConfigMap|Secret, name}}")
            return {}
        held = self._held.get(("", ref["kind"], _ns(obj), str(ref["name"])))
        if held is None:
            if not ref.get("optional"):
                self._plan.warnings.append(
                    f"{obj.where}: {label}: {ref['kind']} {_ns(obj)}/{ref['name']} is not among the objects read; "
                    "its variables must come from --flux-var"
                )
            return {}
        body = held.obj.body
        values: dict[str, str] = {}
        data = body.get("data")
        for name, value in (data if isinstance(data, dict) else {}).items():
            if ref["kind"] == "Secret":
                try:
                    values[str(name)] = base64.b64decode(str(value), validate=True).decode("utf-8")
                except (binascii.Error, UnicodeDecodeError):
                    self._plan.warnings.append(f"{held.obj.where}: data.{name} is not base64 UTF-8 text; ignored")
            else:
                values[str(name)] = _scalar_text(value)
        if ref["kind"] == "Secret" and isinstance(body.get("stringData"), dict):
            values.update({str(k): _scalar_text(v) for k, v in body["stringData"].items()})
        return {k: v.replace("\n", "") for k, v in values.items()}

    def _external_artifact(self, obj: FluxObject, ref: SourceKey, path: str) -> tuple[SourceKey, str] | None:
        """An ExternalArtifact made by an ArtifactGenerator: its copy rules map the path back into a source."""
        for held in self._held.values():
            generator = held.obj
            if (generator.group, generator.kind) != (EXTENSIONS_GROUP, "ArtifactGenerator"):
                continue
            if _ns(generator) != ref.namespace:
                continue
            artifacts = generator.spec.get("artifacts") or []
            artifact = next((a for a in artifacts if isinstance(a, dict) and a.get("name") == ref.name), None)
            if artifact is None:
                continue
            mapped = _map_artifact_path(generator, artifact, path, ref.namespace)
            if mapped is None:
                self._plan.problems.append(
                    f"{obj.where}: spec.path {path} of {ref} cannot be mapped through the copy rules of "
                    f'{generator.where} (only `from: "@alias/dir/**"` rules are understood)'
                )
            else:
                self._plan.warnings.append(
                    f"{obj.where}: {ref} is read as {mapped[1]} of {mapped[0]} (through {generator.display})"
                )
            return mapped
        self._plan.problems.append(f"{obj.where}: spec.sourceRef: no ArtifactGenerator collected produces {ref}")
        return None


# --- Helpers --------------------------------------------------------------------------------------------------


def _relabel(obj: FluxObject, source: SourceKey) -> FluxObject:
    return FluxObject(obj.api_version, obj.kind, obj.name, obj.namespace, obj.body, f"{source}:{obj.file}", obj.index)


def _map_artifact_path(
    generator: FluxObject, artifact: Mapping[str, Any], path: str, namespace: str
) -> tuple[SourceKey, str] | None:
    """An artifact path back to (source, path) through `copy: [{from: "@alias/dir/**", to: "@artifact/dest/"}]`:
    the rule whose destination holds `path` most closely wins."""
    aliases: dict[str, SourceKey] = {}
    for source in generator.spec.get("sources") or []:
        if isinstance(source, dict) and source.get("alias") and source.get("kind") and source.get("name"):
            aliases[str(source["alias"])] = SourceKey(
                str(source["kind"]), str(source.get("namespace") or namespace), str(source["name"])
            )
    best: tuple[int, SourceKey, str] | None = None
    for rule in artifact.get("copy") or []:
        if not isinstance(rule, dict):
            continue
        match = re.fullmatch(r"@([^/]+)/(.*?)/?\*\*", str(rule.get("from", "")))
        destination = str(rule.get("to", ""))
        if match is None or match.group(1) not in aliases or not destination.startswith("@artifact"):
            continue
        source_dir = match.group(2).strip("/")
        destination_dir = normalise_path(destination.removeprefix("@artifact"))
        if destination_dir == ".":
            rest = path
        elif path == destination_dir or path.startswith(destination_dir + "/"):
            rest = path[len(destination_dir) :]
        else:
            continue
        mapped = normalise_path(f"{source_dir}/{rest}")
        depth = 0 if destination_dir == "." else len(destination_dir)
        if best is None or depth > best[0]:
            best = (depth, aliases[match.group(1)], mapped)
    return (best[1], best[2]) if best else None
