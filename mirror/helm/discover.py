"""The container images a chart uses, found in three layers; each result says how it was found.

See docs/collector.md ("Helm charts", image discovery).
"""

from __future__ import annotations

import contextlib
import datetime
import os
import re
import signal
import subprocess
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mirror.errors import ReferenceError_, UsageError
from mirror.helm.archive import Chart, Dependency
from mirror.kube import CONTAINER_LISTS, WORKLOAD_POD_SPECS
from mirror.limits import DEFAULT_LIMITS, Limits
from mirror.manifest.model import ChartValues
from mirror.oci.reference import parse_reference
from mirror.yamlio import YamlBudget, read_yaml

ANNOTATIONS = ("artifacthub.io/images", "images")
_HEX64 = re.compile(r"[a-f0-9]{64}")


@dataclass(frozen=True)
class FoundImage:
    reference: str  # normalised, e.g. docker.io/library/redis:8.8.0
    how: str  # every way it was found, joined by "; "
    chart: str  # the chart (Helm path, e.g. "wordpress/charts/mariadb") where it was first found
    evidence: tuple[tuple[str, str], ...] = ()  # each (chart, how), in the order found
    guessed: bool = False  # only ever inferred (a tag taken from appVersion): check it exists before relying on it


class TooManyImagesError(UsageError):
    """A chart (or a HelmRelease's values) names more images than any real one does: refused, not cut short."""


class _Found:
    """The images found for `what` (a chart, or a HelmRelease), at most `limit` distinct references; and the
    budget of the YAML read while discovering them (annotations, rendered output)."""

    def __init__(self, what: str = "the chart", limit: int | None = None, limits: Limits = DEFAULT_LIMITS) -> None:
        self.limits = limits
        self._by_reference: dict[str, list[tuple[str, str]]] = {}
        self._certain: set[str] = set()
        self.charts_walked = 0
        self._what = what
        self._limit = limit if limit is not None else limits.max_images_per_chart
        self.yaml = YamlBudget.from_limits(limits)

    def add(self, text: str, chart: str, how: str, *, guessed: bool = False) -> bool:
        try:
            reference = str(parse_reference(text))
        except ReferenceError_:
            return False
        if reference not in self._by_reference and len(self._by_reference) >= self._limit:
            raise TooManyImagesError(
                f"{self._what}: names more than {self._limit} images; refused (limit max_images_per_chart)",
                hint="real charts name dozens of images; to carry a chart's images without discovery, give them in "
                "the MirrorSet as images: {discover: false, include: [...]}",
            )
        evidence = self._by_reference.setdefault(reference, [])
        if (chart, how) not in evidence:
            evidence.append((chart, how))
        if not guessed:
            self._certain.add(reference)
        return True

    def result(self) -> list[FoundImage]:
        images = []
        for reference in sorted(self._by_reference):
            evidence = self._by_reference[reference]
            first = evidence[0][0]
            hows = [how if chart == first else f"{how} (in {chart})" for chart, how in evidence]
            guessed = reference not in self._certain
            images.append(FoundImage(reference, "; ".join(hows), first, tuple(evidence), guessed))
        return images


def discover_images(
    chart: Chart,
    *,
    helm: str | None = None,
    archive: bytes | None = None,
    warnings: list[str] | None = None,
    helm_timeout: float | None = None,
    max_images: int | None = None,
    limits: Limits = DEFAULT_LIMITS,
    values: ChartValues | None = None,
) -> list[FoundImage]:
    """The images of `chart` and its vendored sub-charts, sorted by reference.

    `helm` is the path of a helm binary for layer 3; `archive` the chart's .tgz bytes it renders. Problems
    (a missing binary, a failing render, an unreadable annotation) are appended to `warnings`. More than
    `max_images` (by default Limits.max_images_per_chart) distinct images raise TooManyImagesError. The YAML
    read here (annotations, what helm template printed) shares one budget per chart: past it, an alias bomb,
    is YamlBudgetError (exit 2).

    `values` (a MirrorSet chart entry's values, valuesFiles, kubeVersion, apiVersions) are merged over the chart's
    own values for the walk of layer 2, and given to helm template for layer 3.
    """
    notes: list[str] = warnings if warnings is not None else []
    values = values or ChartValues()
    found = _Found(f"chart {chart.name} {chart.version}", max_images, limits)
    merged, overrides = _with_values(chart, values, found, notes)
    _walk_chart(chart, chart.path or chart.name, merged, "", found, notes, depth=0, overrides=overrides)
    if helm is not None:
        if archive is None:
            notes.append(f"{chart.name}: helm template needs the chart archive; layer 3 skipped")
        else:
            timeout = helm_timeout if helm_timeout is not None else limits.helm_timeout_s
            _rendered_images(chart, helm, archive, timeout, found, notes, values)
    elif values.given:
        notes.append(
            f"{chart.name}: no helm to render the templates with the MirrorSet's values; only the walk of the values "
            "used them"
        )
    return found.result()


def _with_values(
    chart: Chart, values: ChartValues, found: _Found, notes: list[str]
) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
    """The chart's values with the MirrorSet's values files, then its inline values, coalesced over them; and
    what the MirrorSet's values set, alone (to say which findings they changed)."""
    merged: Mapping[str, Any] = chart.values
    overrides: Mapping[str, Any] = {}
    layers = [*values.files, ("values", values.inline)] if values.inline else list(values.files)
    for name, text in layers:
        where = f"{chart.name}: MirrorSet {name}"
        try:
            documents = read_yaml(text, where, budget=found.yaml)
        except yaml.YAMLError as exc:  # checked when the MirrorSet was loaded: only a changed file gets here
            notes.append(f"{where} is not valid YAML: {' '.join(str(exc).split())[:200]}")
            continue
        layer = documents[0] if len(documents) == 1 else None
        if isinstance(layer, dict) and layer:
            merged = _merge(merged, layer, found.limits.max_values_depth)
            overrides = _merge(overrides, layer, found.limits.max_values_depth)
    return merged, overrides


_STEP = re.compile(r"\.([^.\[]+)|\[(\d+)\]")


def _touches(overrides: Mapping[str, Any], where: str) -> bool:
    """Whether the MirrorSet's values set the value at `where` (.a.b[0]), or something inside it, or replaced a
    list on the way there."""
    if not overrides:
        return False
    node: Any = overrides
    for match in _STEP.finditer(where):
        if isinstance(node, list):
            return True  # a list is replaced whole
        key = match.group(1)
        if key is None or not isinstance(node, dict) or key not in node:
            return False
        node = node[key]
    return True


# Layer 1 and 2, recursively over vendored sub-charts.


def _walk_chart(
    chart: Chart,
    path: str,
    values: Mapping[str, Any],
    suffix: str,
    found: _Found,
    notes: list[str],
    depth: int,
    overrides: Mapping[str, Any] | None = None,  # what the MirrorSet's values set in `values`
) -> None:
    found.charts_walked += 1
    most = found.limits.max_chart_walks
    if found.charts_walked > most:
        if found.charts_walked == most + 1:
            notes.append(f"{path}: more than {most} sub-charts to walk; the rest are not walked")
        return
    notes.extend(f"{path}: {warning}" for warning in chart.warnings)
    _annotation_images(chart, path, suffix, found, notes)
    vendored = {sub.name for sub in chart.subcharts}
    vendored_keys = {d.alias or d.name for d in chart.dependencies if d.name in vendored} | vendored
    missing_keys = {d.alias or d.name for d in chart.dependencies if d.name not in vendored}
    walker = _ValuesWalker(chart, values, path, suffix, found, notes, (vendored_keys, missing_keys))
    walker.overrides = overrides or {}
    walker.walk()
    for dependency in chart.dependencies:
        if dependency.name not in vendored:
            origin = dependency.repository or "no repository"
            notes.append(
                f"{path}: dependency {dependency.name} {dependency.version or '(any version)'} from {origin} is "
                "not vendored in the archive; its images are not discovered"
            )
    for sub in chart.subcharts:
        uses: list[Dependency | None] = [d for d in chart.dependencies if d.name == sub.name] or [None]
        for use in uses:
            key = (use.alias if use else None) or sub.name
            sub_path = f"{path}/charts/{key}"
            own_value = values.get(key)
            own: Mapping[str, Any] = own_value if isinstance(own_value, dict) else {}
            sub_values = _merge(sub.values, own, found.limits.max_values_depth)
            parent_global = values.get("global")
            if isinstance(parent_global, dict):
                own_global = sub_values.get("global")
                sub_values = {
                    **sub_values,
                    "global": _merge(
                        own_global if isinstance(own_global, dict) else {}, parent_global, found.limits.max_values_depth
                    ),
                }
            sub_suffix = suffix
            condition = use.condition if use else None
            if condition and _condition(values, condition) is False:
                sub_suffix += f" (sub-chart disabled by default: {condition})"
            own_overrides = (overrides or {}).get(key)
            sub_overrides = own_overrides if isinstance(own_overrides, dict) else None
            _walk_chart(sub, sub_path, sub_values, sub_suffix, found, notes, depth + 1, sub_overrides)


def _merge(base: Mapping[str, Any], override: Mapping[str, Any], max_depth: int, depth: int = 0) -> dict[str, Any]:
    """Helm's coalescing, simplified: maps merge key by key, the override wins, a null override deletes."""
    merged = dict(base)
    for key, value in override.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict) and depth < max_depth:
            merged[key] = _merge(merged[key], value, max_depth, depth + 1)
        else:
            merged[key] = value
    return merged


def _condition(values: Mapping[str, Any], condition: str) -> bool | None:
    """Helm's dependency condition: the first of the comma-separated paths that resolves to a bool."""
    for path in condition.split(","):
        node: Any = values
        for part in path.strip().split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, bool):
            return node
    return None


def _annotation_images(chart: Chart, path: str, suffix: str, found: _Found, notes: list[str]) -> None:
    for key in ANNOTATIONS:
        text = chart.annotations.get(key)
        if not text:
            continue
        try:
            documents = read_yaml(text, f"{path}: annotation {key}", budget=found.yaml)
        except yaml.YAMLError as exc:
            notes.append(f"{path}: annotation {key} is not valid YAML: {' '.join(str(exc).split())}")
            continue
        entries = documents[0] if len(documents) == 1 else None
        if not isinstance(entries, list):
            if key != "images":  # another chart's `images` annotation can mean anything
                notes.append(f"{path}: annotation {key} is not a list")
            continue
        for entry in entries:
            image = entry.get("image") if isinstance(entry, dict) else None
            if not isinstance(image, str) or not found.add(image.strip(), path, f"annotation {key}{suffix}"):
                notes.append(f"{path}: annotation {key} has an entry without a valid image: {entry!r:.200}")


class _ValuesWalker:
    """One chart's values. Top-level keys that belong to a dependency are not this chart's own values: a vendored
    sub-chart's key is walked with that sub-chart instead, and a missing one's without the appVersion default."""

    def __init__(
        self,
        chart: Chart,
        values: Mapping[str, Any],
        path: str,
        suffix: str,
        found: _Found,
        notes: list[str],
        dependency_keys: tuple[set[str], set[str]] = (set(), set()),
    ) -> None:
        self.app_version = chart.app_version
        self.values = values
        self.path = path
        self.suffix = suffix
        self.found = found
        self.notes = notes
        self.vendored_keys, self.missing_keys = dependency_keys
        self.foreign: str | None = None  # the missing dependency whose values are being walked
        global_values = values.get("global")
        global_values = global_values if isinstance(global_values, dict) else {}
        self.image_registry = _text(global_values.get("imageRegistry"))
        global_image = global_values.get("image")
        self.global_image_registry = _text(global_image.get("registry")) if isinstance(global_image, dict) else None
        self.visited: set[int] = {id(values)}
        self.nodes = 0
        self.overrides: Mapping[str, Any] = {}  # what the MirrorSet's values set here

    def walk(self) -> None:
        claimed = self._image_map(self.values, "")
        for key, value in self.values.items():
            if key in self.vendored_keys:
                continue
            self.foreign = key if key in self.missing_keys else None
            self._entry(key, value, "", claimed, 1)

    def _node(self, node: Any, where: str, depth: int) -> None:
        if not isinstance(node, dict | list) or id(node) in self.visited or depth > self.found.limits.max_values_depth:
            return
        self.visited.add(id(node))
        self.nodes += 1
        if self.nodes > self.found.limits.max_values_nodes:
            return
        if isinstance(node, list):
            for index, item in enumerate(node):
                self._node(item, f"{where}[{index}]", depth + 1)
            return
        claimed = self._image_map(node, where)
        for key, value in node.items():
            self._entry(key, value, where, claimed, depth)

    def _entry(self, key: Any, value: Any, where: str, claimed: str | None, depth: int) -> None:
        child = f"{where}.{key}"
        if isinstance(value, str) and key != claimed and _is_image_key(key):
            self._add(value, child)
        else:
            self._node(value, child, depth + 1)

    def _add(self, text: str, where: str, notes: list[str] | None = None, *, guessed: bool = False) -> None:
        if "{{" in text:
            return
        notes = list(notes or [])
        if self.foreign:
            notes.append(f"values for dependency {self.foreign}")
        if _touches(self.overrides, where):
            notes.append("with the MirrorSet's values")
        note = f" ({'; '.join(notes)})" if notes else ""
        self.found.add(text, self.path, f"values: {where or '.'}{note}{self.suffix}", guessed=guessed)

    def _image_map(self, node: Mapping[Any, Any], where: str) -> str | None:
        """Add the image a map describes; return the key (`image`) it used up, if any."""
        repository = _text(node.get("repository"))
        image = _text(node.get("image"))
        registry = _text(node.get("registry"))
        notes: list[str] = []
        if repository:
            name, claimed = repository, None
            if self.image_registry:
                registry = self.image_registry
                notes.append("registry from .global.imageRegistry")
        elif image and any(key in node for key in ("registry", "tag", "digest")):
            name, claimed = image, "image"
            if not registry and self.global_image_registry:
                registry = self.global_image_registry
                notes.append("registry from .global.image.registry")
        else:
            return None
        parts = [registry, name, node.get("tag"), node.get("digest"), node.get("sha"), node.get("tagLabel")]
        if any(isinstance(part, str) and "{{" in part for part in parts):
            return claimed
        tag = _text(node.get("tag"))
        digest = _digest(node.get("digest")) or _digest(node.get("sha"))
        if (node.get("digest") or node.get("sha")) and digest is None:
            return claimed  # a digest Helm would render as garbage
        if tag and "@" in tag:
            tag, _, tag_digest = tag.partition("@")
            digest = digest or tag_digest
        guessed = False
        if not tag and not digest:
            if self.foreign or not self.app_version:
                whose = f"dependency {self.foreign}, which is not vendored" if self.foreign else "the templates"
                self.notes.append(
                    f"{self.path}: values: {where or '.'} names {name} without a tag; the tag comes from {whose}, "
                    "so this image is not discovered"
                )
                return claimed
            tag, guessed = self.app_version, True
            label = _text(node.get("tagLabel"))
            if label:
                tag = f"{tag}-{label}"
                notes.append("tag from appVersion and tagLabel")
            else:
                notes.append("tag from appVersion")
        text = f"{registry.rstrip('/')}/{name}" if registry else name
        if tag:
            text += f":{tag}"
        if digest:
            text += f"@{digest}"
        self._add(text, where, notes, guessed=guessed)
        return claimed


def _is_image_key(key: Any) -> bool:
    return isinstance(key, str) and (key == "image" or key.endswith("Image"))


def _text(value: Any) -> str | None:
    """A scalar as Helm's templates print it: values pass through JSON, so every number is a float64."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e21 else repr(value)
    if isinstance(value, datetime.date):
        return value.isoformat()
    return None


def _digest(value: Any) -> str | None:
    text = _text(value)
    if not text:
        return None
    if _HEX64.fullmatch(text):
        return f"sha256:{text}"
    return text if text.startswith("sha256:") and _HEX64.fullmatch(text[7:]) else None


# Layer 3.


def _rendered_images(
    chart: Chart, helm: str, archive: bytes, timeout: float, found: _Found, notes: list[str], values: ChartValues
) -> None:
    top = chart.path or chart.name
    with tempfile.TemporaryDirectory(prefix="mirror-helm-") as scratch:
        home = Path(scratch)
        chart_file = home / "chart.tgz"
        chart_file.write_bytes(archive)
        environment = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(home),
            "HELM_CACHE_HOME": str(home / "cache"),
            "HELM_CONFIG_HOME": str(home / "config"),
            "HELM_DATA_HOME": str(home / "data"),
            "KUBECONFIG": str(home / "no-kubeconfig"),
        }
        argv = [helm, "template", "release-name", str(chart_file), "--namespace", "default"]
        argv += _values_arguments(values, home)
        outcome = _run(argv, environment, home, timeout, found.limits.max_render_bytes)
    if isinstance(outcome, str):
        notes.append(f"{top}: helm template {outcome}; rendered images not discovered")
        return
    for source, document in _documents(outcome, top, notes, found.yaml):
        _document_images(document, source, top, found, notes)


def _values_arguments(values: ChartValues, scratch: Path) -> list[str]:
    """helm template's arguments for a chart entry's values: each values file and then the inline values as a file
    of its own (-f, later ones win, as helm reads them), never --set; --kube-version; --api-versions each. The
    versions were checked when the MirrorSet was loaded; the `--flag=value` form keeps any value a value."""
    arguments: list[str] = []
    contents = [text for _, text in values.files] + ([values.inline] if values.inline else [])
    for index, text in enumerate(contents):
        path = scratch / f"values-{index}.yaml"
        path.write_bytes(text)
        arguments += ["-f", str(path)]
    if values.kube_version:
        arguments.append(f"--kube-version={values.kube_version}")
    arguments += [f"--api-versions={api}" for api in values.api_versions]
    return arguments


def _run(argv: list[str], environment: dict[str, str], cwd: Path, timeout: float, max_bytes: int) -> bytes | str:
    """stdout of a successful run, or a sentence saying what went wrong. Output and time are bounded.

    The child runs in its own process group, so a timeout also ends anything it started (a post-renderer,
    say) that would otherwise hold the pipe open.
    """
    try:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=environment,
            cwd=cwd,
            start_new_session=True,
        )
    except OSError as exc:
        return f"could not start {argv[0]!r}: {exc.strerror or exc}"
    assert process.stdout is not None and process.stderr is not None
    expired = threading.Event()

    def stop() -> None:
        if process.returncode is None:  # never signal a group whose leader was reaped: its id may be reused
            with contextlib.suppress(OSError):  # already gone
                os.killpg(process.pid, signal.SIGKILL)

    def expire() -> None:
        expired.set()
        stop()

    stderr: list[bytes] = []

    def drain_stderr() -> None:
        kept = 0
        while chunk := process.stderr.read(8192):  # type: ignore[union-attr]
            if kept < 8192:
                stderr.append(chunk[: 8192 - kept])
                kept += len(chunk)

    timer = threading.Timer(timeout, expire)
    drainer = threading.Thread(target=drain_stderr, daemon=True)
    timer.start()
    drainer.start()
    output = bytearray()
    too_long = False
    try:
        while chunk := process.stdout.read(65536):
            output += chunk
            if len(output) > max_bytes:
                too_long = True
                stop()
                break
    except BaseException:
        stop()
        raise
    finally:
        code = process.wait()  # bounded: the timer is still armed
        timer.cancel()
        drainer.join(timeout=5)
        process.stdout.close()
        process.stderr.close()
    if expired.is_set():
        return f"did not finish within {timeout:g} s"
    if too_long:
        return f"printed more than {max_bytes} bytes"
    if code != 0:
        message = " ".join(b"".join(stderr).decode("utf-8", "replace").split())[:500]
        return f"failed (exit {code}): {message}" if message else f"failed (exit {code})"
    return bytes(output)


_SEPARATOR = re.compile(r"^---[ \t]*(?:#.*)?$", re.MULTILINE)
_SOURCE = re.compile(r"^# Source: (\S+)", re.MULTILINE)


def _documents(output: bytes, top: str, notes: list[str], budget: YamlBudget) -> list[tuple[str, Any]]:
    """Each rendered document with the chart it came from (from Helm's `# Source:` comment)."""
    text = output.decode("utf-8", "replace")
    documents: list[tuple[str, Any]] = []
    for chunk in _SEPARATOR.split(text):
        match = _SOURCE.search(chunk)
        source = match.group(1) if match else ""
        try:
            loaded = read_yaml(chunk, f"{top}: helm template output {source or '(no source)'}", budget=budget)
        except yaml.YAMLError as exc:
            problem = " ".join(str(exc).split())[:200]
            notes.append(f"{top}: helm template output {source or '(no source)'} is not valid YAML: {problem}")
            continue
        documents.extend((source, doc) for doc in loaded)
    return documents


def _document_images(document: Any, source: str, top: str, found: _Found, notes: list[str]) -> None:
    if not isinstance(document, dict):
        return
    kind = document.get("kind")
    metadata = document.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    label = f"{kind}/{name}"
    chart = source.split("/templates/", 1)[0] if "/templates/" in source else top
    annotations = metadata.get("annotations") if isinstance(metadata, dict) else None
    hook = annotations.get("helm.sh/hook") if isinstance(annotations, dict) else None
    note = f" (helm.sh/hook {hook})" if isinstance(hook, str) and hook else ""
    if isinstance(kind, str) and kind in WORKLOAD_POD_SPECS:
        spec: Any = document
        for key in WORKLOAD_POD_SPECS[kind]:
            spec = spec.get(key) if isinstance(spec, dict) else None
        for list_key in CONTAINER_LISTS:
            containers = spec.get(list_key) if isinstance(spec, dict) else None
            for container in containers if isinstance(containers, list) else ():
                if not isinstance(container, dict):
                    continue
                image = container.get("image")
                how = f"helm template: {label} {list_key} {container.get('name')}{note}"
                if not isinstance(image, str) or not found.add(image, chart, how):
                    notes.append(f"{chart}: helm template rendered {label} with image {image!r}, not a reference")
                _env_images(container, f"helm template: {label} {list_key} {container.get('name')}", note, chart, found)
        return
    for where, image in _image_fields(document, "", 0, found.limits.max_values_depth):
        found.add(image, chart, f"helm template: {label} {where}{note}")


_TAGGED = re.compile(r"[^\s/]+(/[^\s/]+)*(:[\w][\w.-]{0,127}|@sha256:[a-f0-9]{64})")


def _env_images(container: Mapping[str, Any], what: str, note: str, chart: str, found: _Found) -> None:
    """Images an operator or controller is told to start, through its env: guesses (an env value is any text).

    A value counts when it reads as a reference with a tag or digest and either has a path (host/name or
    org/name) or sits under a name that says IMAGE: `localhost:8080` is a host and port, `helper:2.1` under
    HELPER_IMAGE an image. No reference is longer than 512 characters (a 255-character name, a tag, a digest)."""
    env = container.get("env")
    for entry in env if isinstance(env, list) else ():
        if not isinstance(entry, dict):
            continue
        name, value = entry.get("name"), entry.get("value")
        if not isinstance(name, str) or not isinstance(value, str) or "://" in value or "{{" in value:
            continue
        value = value.strip()
        if len(value) > 512 or not _TAGGED.fullmatch(value) or ("/" not in value and "IMAGE" not in name.upper()):
            continue
        found.add(value, chart, f"{what} env {name} (a guess: an env value){note}", guessed=True)


def _image_fields(node: Any, where: str, depth: int, max_depth: int) -> list[tuple[str, str]]:
    if depth > max_depth:
        return []
    result: list[tuple[str, str]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, str) and _is_image_key(key) and "{{" not in value:
                result.append((f"{where}.{key}", value))
            else:
                result.extend(_image_fields(value, f"{where}.{key}", depth + 1, max_depth))
    elif isinstance(node, list):
        for index, item in enumerate(node):
            result.extend(_image_fields(item, f"{where}[{index}]", depth + 1, max_depth))
    return result


__all__ = ["ANNOTATIONS", "FoundImage", "discover_images"]
