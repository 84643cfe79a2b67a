"""postBuild variable substitution, as kustomize-controller does it.

postBuild substitution follows kustomize-controller: it happens for the objects a Kustomization applies when
it has a postBuild with at least one variable (or `substituteStrategy: Always`); `substitute` wins over
`substituteFrom` (ConfigMaps and Secrets found among the collected objects), which wins over the `variables`
the caller gives (--flux-var: values the cluster would supply). The caller's variables also apply to the root
objects when given. Objects labelled or annotated `kustomize.toolkit.fluxcd.io/substitute: disabled` are left
alone. Unlike Flux, only the fields mirror reads are substituted (names, namespaces, URLs, refs, chart names
and versions, sourceRefs, paths, workload images, image values): ConfigMap data and scripts are never touched.
A variable with no value and no default is an error here (Flux would write an empty string).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from mirror.errors import UsageError
from mirror.flux.objects import (
    FluxObject,
    workload_images,
)
from mirror.flux.plan import EXTENSIONS_GROUP, HELM_GROUP, KUSTOMIZE_GROUP, SOURCE_GROUP

SUBSTITUTE_DISABLED = "kustomize.toolkit.fluxcd.io/substitute"
_VAR_NAME = re.compile(r"[_a-zA-Z][_a-zA-Z0-9]*")


# --- Variables ------------------------------------------------------------------------------------------------


def parse_flux_vars(items: Iterable[str]) -> dict[str, str]:
    """`--flux-var KEY=VALUE` options → a mapping; names as Flux accepts them."""
    result: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not _VAR_NAME.fullmatch(name):
            raise UsageError(
                f"--flux-var {item!r}: expected KEY=VALUE with KEY of letters, digits and _ (not first a digit)"
            )
        result[name] = value
    return result


class SubstitutionError(ValueError):
    pass


def envsubst(text: str, lookup: Callable[[str], str | None]) -> tuple[str, list[str]]:
    """Flux's envsubst (fluxcd/pkg/envsubst): `${var}` and its bash forms; `$$` is a literal `$`, and a `$` not
    followed by `{` is left alone (`$var` is never substituted). Returns the text and the variables that had
    no value and no default (Flux would write an empty string for them). Raises SubstitutionError on syntax
    Flux rejects (an unclosed `${`, `${var:?x}`, `${var:+x}`, `${var+x}`)."""
    missing: list[str] = []
    out, _ = _expand(text, 0, lookup, missing, nested=False)
    return out, missing


def _expand(
    text: str, pos: int, lookup: Callable[[str], str | None], missing: list[str], *, nested: bool
) -> tuple[str, int]:
    out: list[str] = []
    while pos < len(text):
        ch = text[pos]
        if ch == "$" and text.startswith("$$", pos):
            out.append("$")
            pos += 2
        elif ch == "$" and text.startswith("${", pos):
            value, pos = _expression(text, pos + 2, lookup, missing)
            out.append(value)
        elif ch == "}" and nested:
            return "".join(out), pos
        else:
            out.append(ch)
            pos += 1
    if nested:
        raise SubstitutionError(f"unclosed ${{ in {text!r}")
    return "".join(out), pos


_OPERATORS = (":=", ":-", ":?", ":+", "=", "-", "?", "+", "^^", "^", ",,", ",", "##", "#", "%%", "%", "//", "/#", "/%")


def _expression(text: str, pos: int, lookup: Callable[[str], str | None], missing: list[str]) -> tuple[str, int]:
    length = text.startswith("#", pos) and pos + 1 < len(text) and text[pos + 1] not in "}"
    if length:
        pos += 1
    start = pos
    while pos < len(text) and (text[pos].isalnum() or text[pos] == "_"):
        pos += 1
    name = text[start:pos]
    if not name:
        raise SubstitutionError(f"no variable name after ${{ in {text!r}")
    value = lookup(name)
    if pos >= len(text):
        raise SubstitutionError(f"unclosed ${{ in {text!r}")
    if text[pos] == "}":
        if value is None:
            missing.append(name)
        result = value or ""
        return (str(len(result)) if length else result), pos + 1
    operator = next((op for op in _OPERATORS if text.startswith(op, pos)), None)
    if operator is None and text.startswith("/", pos):
        operator = "/"
    if operator is None and text.startswith(":", pos):
        operator = ":"
    if operator is None or length:
        raise SubstitutionError(f"unsupported expression in {text!r}")
    if operator in (":?", ":+", "?", "+"):
        raise SubstitutionError(f"${{{name}{operator}…}} is not supported by Flux")
    argument, pos = _expand(text, pos + len(operator), lookup, missing, nested=True)
    pos += 1  # the closing brace
    if operator in (":=", ":-", "=", "-"):
        use_default = value is None or (operator.startswith(":") and value == "")
        return (argument if use_default else value or ""), pos
    if value is None:
        missing.append(name)
        value = ""
    return _function(value, operator, argument), pos


def _glob(pattern: str) -> re.Pattern[str]:
    parts = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "*":
            parts.append(".*")
        elif ch == "?":
            parts.append(".")
        elif ch == "[" and "]" in pattern[i + 1 :]:
            end = pattern.index("]", i + 1)
            parts.append("[" + pattern[i + 1 : end].replace("\\", "\\\\") + "]")
            i = end
        else:
            parts.append(re.escape(ch))
        i += 1
    return re.compile("".join(parts), re.DOTALL)


def _function(value: str, operator: str, argument: str) -> str:
    if operator == "^^":
        return value.upper()
    if operator == "^":
        return value[:1].upper() + value[1:]
    if operator == ",,":
        return value.lower()
    if operator == ",":
        return value[:1].lower() + value[1:]
    if operator in ("#", "##", "%", "%%"):
        pattern = _glob(argument)
        cuts = range(len(value) + 1)
        # Shortest prefix and longest suffix first cut near the start; the other two near the end.
        for cut in reversed(cuts) if operator in ("##", "%") else cuts:
            if operator.startswith("#") and cut and pattern.fullmatch(value[:cut]):
                return value[cut:]
            if operator.startswith("%") and cut < len(value) and pattern.fullmatch(value[cut:]):
                return value[:cut]
        return value
    if operator == ":":
        bounds = argument.split(":", 1)
        try:
            offset = int(bounds[0])
        except ValueError:
            return value
        if offset < 0:
            offset = max(len(value) + offset, 0)
        if len(bounds) == 1:
            return value[offset:]
        try:
            count = int(bounds[1])
        except ValueError:
            return value
        end = len(value) + count if count < 0 else offset + count
        return value[offset:end] if end >= offset else ""
    pattern_text, replacement = _split_replacement(argument)
    if operator == "//":
        return value.replace(pattern_text, replacement)
    if operator == "/#":
        return replacement + value[len(pattern_text) :] if value.startswith(pattern_text) else value
    if operator == "/%":
        return value[: len(value) - len(pattern_text)] + replacement if value.endswith(pattern_text) else value
    return value.replace(pattern_text, replacement, 1)


def _split_replacement(argument: str) -> tuple[str, str]:
    """`pattern/replacement` split at the first `/` not escaped; `\\/` and `\\\\` are unescaped."""
    pattern: list[str] = []
    i = 0
    while i < len(argument):
        ch = argument[i]
        if ch == "\\" and i + 1 < len(argument) and argument[i + 1] in "/\\":
            pattern.append(argument[i + 1])
            i += 2
            continue
        if ch == "/":
            return "".join(pattern), argument[i + 1 :].replace("\\/", "/")
        pattern.append(ch)
        i += 1
    return "".join(pattern), ""


# Fields mirror reads, per (group, kind); `*` is every item of a list or value of a map.
_COMMON_FIELDS: tuple[tuple[str, ...], ...] = (("metadata", "name"), ("metadata", "namespace"))
_SUBSTITUTED_FIELDS: dict[tuple[str, str], tuple[tuple[str, ...], ...]] = {
    (SOURCE_GROUP, "GitRepository"): (
        ("spec", "url"),
        ("spec", "ref", "*"),
        ("spec", "include", "*", "repository", "name"),
    ),
    (SOURCE_GROUP, "HelmRepository"): (("spec", "url"), ("spec", "type")),
    (SOURCE_GROUP, "OCIRepository"): (("spec", "url"), ("spec", "ref", "*"), ("spec", "layerSelector", "mediaType")),
    (SOURCE_GROUP, "HelmChart"): (("spec", "chart"), ("spec", "version"), ("spec", "sourceRef", "*")),
    (HELM_GROUP, "HelmRelease"): (
        ("spec", "chart", "spec", "chart"),
        ("spec", "chart", "spec", "version"),
        ("spec", "chart", "spec", "sourceRef", "*"),
        ("spec", "chartRef", "*"),
        ("spec", "valuesFrom", "*", "name"),
        ("spec", "valuesFrom", "*", "valuesKey"),
    ),
    (KUSTOMIZE_GROUP, "Kustomization"): (
        ("spec", "path"),
        ("spec", "sourceRef", "*"),
        ("spec", "targetNamespace"),
        ("spec", "images", "*", "*"),
        ("spec", "postBuild", "substitute", "*"),
        ("spec", "postBuild", "substituteFrom", "*", "name"),
    ),
    (EXTENSIONS_GROUP, "ArtifactGenerator"): (
        ("spec", "sources", "*", "*"),
        ("spec", "artifacts", "*", "name"),
        ("spec", "artifacts", "*", "copy", "*", "*"),
    ),
}
_IMAGE_VALUE_KEYS = {"image", "repository", "registry", "tag", "digest"}


def _substitute_at(
    node: Any, path: Sequence[str], lookup: Callable[[str], str | None], report: Callable[[str, str], None], where: str
) -> None:
    """Substitute the string(s) at `path` under `node`, in place."""
    if not path or not isinstance(node, dict | list):
        return
    head, rest = path[0], path[1:]
    if head == "*":
        keys: Iterable[Any] = range(len(node)) if isinstance(node, list) else list(node)
    elif isinstance(node, dict) and head in node:
        keys = [head]
    elif isinstance(node, list) and head.isdigit() and int(head) < len(node):
        keys = [int(head)]
    else:
        return
    for key in keys:
        label = f"{where}[{key}]" if isinstance(node, list) else f"{where}.{key}" if where else str(key)
        if rest:
            _substitute_at(node[key], rest, lookup, report, label)
        elif isinstance(node[key], str) and "$" in node[key]:
            try:
                value, missing = envsubst(node[key], lookup)
            except SubstitutionError as exc:
                report(label, str(exc))
                continue
            for name in dict.fromkeys(missing):
                report(label, f"variable ${{{name}}} has no value and no default")
            if not missing:
                node[key] = value


def _substitute_tree(node: Any, lookup: Callable[[str], str | None], depth: int = 0) -> Any:
    """Every string of a values tree, variables without a value left as written (for the image scan only)."""
    if depth > 64:
        return node
    if isinstance(node, dict):
        return {k: _substitute_tree(v, lookup, depth + 1) for k, v in node.items()}
    if isinstance(node, list):
        return [_substitute_tree(v, lookup, depth + 1) for v in node]
    if isinstance(node, str) and "${" in node:
        try:
            value, missing = envsubst(node, lookup)
        except SubstitutionError:
            return node
        return node if missing else value
    return node


def substitution_disabled(obj: FluxObject) -> bool:
    return obj.labels.get(SUBSTITUTE_DISABLED) == "disabled" or obj.annotations.get(SUBSTITUTE_DISABLED) == "disabled"


def substitute_object(obj: FluxObject, variables: Mapping[str, str], problems: list[str]) -> FluxObject:
    """postBuild substitution of the fields mirror reads; a variable without a value is a problem."""
    if substitution_disabled(obj):
        return obj
    fields = list(_COMMON_FIELDS) + list(_SUBSTITUTED_FIELDS.get((obj.group, obj.kind), ()))
    body = copy.deepcopy(obj.body)

    def report(label: str, problem: str) -> None:
        problems.append(f"{obj.where}: {label}: {problem}")

    for path in fields:
        _substitute_at(body, path, variables.get, report, "")
    for label, _ in workload_images(obj):
        _substitute_at(body, _image_path(label), variables.get, report, "")
    return obj.with_body(body)


def _image_path(label: str) -> tuple[str, ...]:
    """`spec.template.spec.containers[0].image` → ("spec", "template", "spec", "containers", "0"→index…)."""
    parts: list[str] = []
    for part in label.split("."):
        name, _, index = part.partition("[")
        parts.append(name)
        if index:
            parts.append(index.rstrip("]"))
    return tuple(parts)
