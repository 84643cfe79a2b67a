"""The edits of a relocation commit: each Flux source object of a YAML file pointed at the internal endpoints by
editing its endpoint lines in place, so comments, layout and every other byte of the file stay as upstream wrote
them (see docs/flux-high-side.md, "The relocation commit").

The new values come from the rules of mirror/flux/rewrite.py and mirror/flux/bootstrap.py (the same ones
--flux-out applies): `spec.url`, HelmRepository `type: oci`, `insecure`, a cloud `provider` removed, the
`secretRef`/`certSecretRef` the internal endpoints need, and a GitRepository following `mirror/<branch>` when
that branch of its repository is relocated too. Only these keys of `spec` are touched; a value the rules cannot
place (a `${VAR}` of postBuild substitution, a flow-style spec, an unlandable URL) leaves the object as it is,
with a note. Pure: text in, text out.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from mirror.errors import MirrorError
from mirror.flux.bootstrap import EndpointAccess, reference_internal_secrets
from mirror.flux.objects import FluxObject, object_from_document, parse_yaml_documents
from mirror.flux.rewrite import InternalEndpoints, rewrite_objects

RELOCATED_BRANCH_PREFIX = "mirror/"
SOURCE_API_GROUP = "source.toolkit.fluxcd.io"  # a file without it holds nothing to relocate
_SOURCE_KINDS = ("GitRepository", "HelmRepository", "OCIRepository")
# The keys of `spec` that say where a source is and how it is reached: the only ones a relocation edits.
_ENDPOINT_KEYS = ("url", "type", "insecure", "provider", "serviceAccountName", "passCredentials")
_REFERENCE_KEYS = ("secretRef", "certSecretRef")
_PLAIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@~+%=-]*")


def relocated_branch(branch: str) -> str:
    return RELOCATED_BRANCH_PREFIX + branch


@dataclass(frozen=True)
class Relocation:
    """The import's flags as the relocation reads them, and the branches relocated (internal Git URL → names)."""

    endpoints: InternalEndpoints
    access: EndpointAccess
    branches: Mapping[str, frozenset[str]]

    def follows(self, url: str, branch: object) -> str | None:
        """The relocated branch a GitRepository at internal `url` on `branch` follows, or None."""
        if isinstance(branch, str) and branch in self.branches.get(url, frozenset()):
            return relocated_branch(branch)
        return None


@dataclass(frozen=True)
class _Edit:
    start: int
    end: int
    text: str


class _Skip(Exception):
    """This object cannot be edited in place; the reason becomes a note."""


def relocate_text(text: str, file: str, relocation: Relocation, notes: list[str]) -> str:
    """`text` with every Flux source object's endpoint lines rewritten; `text` itself when nothing changes."""
    if SOURCE_API_GROUP not in text:
        return text
    try:
        documents = parse_yaml_documents(text, file)
        nodes = [n for n in yaml.compose_all(text, Loader=yaml.SafeLoader) if not _empty(n)]
    except (yaml.YAMLError, MirrorError, ValueError, RecursionError):
        return text  # not YAML (a template): Flux does not read it either
    if len(documents) != len(nodes):
        return text
    newline = "\r\n" if "\r\n" in text else "\n"
    lines = _line_starts(text)
    edits: list[_Edit] = []
    for index, (document, node) in enumerate(zip(documents, nodes, strict=True)):
        obj = object_from_document(document, file, index)
        if obj is None or obj.group != SOURCE_API_GROUP or obj.kind not in _SOURCE_KINDS:
            continue
        try:
            edits += _object_edits(obj, node, text, lines, newline, relocation)
        except _Skip as reason:
            notes.append(f"{file}: {obj.display}: left as it is: {reason}")
    if not edits:
        return text
    result = text
    for edit in sorted(edits, key=lambda e: (e.start, e.end), reverse=True):
        result = result[: edit.start] + edit.text + result[edit.end :]
    return result


def _empty(node: yaml.Node) -> bool:
    null = isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null"
    return null and node.value in ("", "~", "null")


def _line_starts(text: str) -> list[int]:
    starts = [0]
    for match in re.finditer("\n", text):
        starts.append(match.end())
    return starts


def _target_spec(obj: FluxObject, relocation: Relocation) -> dict[str, Any]:
    try:
        warnings: list[str] = []
        rewritten = rewrite_objects([obj], relocation.endpoints, warnings=warnings)
        spec = reference_internal_secrets(rewritten, relocation.endpoints, relocation.access)[0].body["spec"]
    except MirrorError as exc:
        raise _Skip(exc.message) from None
    assert isinstance(spec, dict)
    return spec


def _mapping_items(node: yaml.Node) -> dict[str, tuple[yaml.Node, yaml.Node]]:
    if not isinstance(node, yaml.MappingNode):
        return {}
    return {k.value: (k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode)}


def _object_edits(
    obj: FluxObject, node: yaml.Node, text: str, lines: list[int], newline: str, relocation: Relocation
) -> list[_Edit]:
    url = obj.spec.get("url")
    if not isinstance(url, str) or "${" in url:
        raise _Skip(f"spec.url {url!r} is not a URL (postBuild substitution?)")
    spec_node = _mapping_items(node).get("spec", (None, None))[1]
    if not isinstance(spec_node, yaml.MappingNode) or spec_node.flow_style or not spec_node.value:
        raise _Skip("spec is not a block mapping")
    items = _mapping_items(spec_node)
    before, after = obj.spec, _target_spec(obj, relocation)
    indent = items["url"][0].start_mark.column
    anchor = _line_after(items["url"][1], lines, text)  # new keys go just below the url
    edits: list[_Edit] = []
    inserted = ""
    for key in (*_ENDPOINT_KEYS, *_REFERENCE_KEYS):
        old, new = before.get(key), after.get(key)
        if old == new:
            continue
        if key not in after:
            edits.append(_delete(items[key], text, lines))
        elif key in items and not isinstance(new, dict):
            edits.append(_replace(items[key][1], new))
        elif key not in before:
            inserted += _render(key, new, indent, newline)
        else:
            raise _Skip(f"spec.{key} would change shape")
    if obj.kind == "GitRepository":
        branch = relocation.follows(after["url"], (before.get("ref") or {}).get("branch"))
        branch_node = _mapping_items(items["ref"][1]).get("branch") if "ref" in items else None
        if branch is not None and branch_node is not None:
            edits.append(_replace(branch_node[1], branch))
    if inserted:
        prefix = "" if anchor == 0 or text[anchor - 1] == "\n" else newline
        edits.append(_Edit(anchor, anchor, prefix + inserted))
    return edits


def _line_after(value: yaml.Node, lines: list[int], text: str) -> int:
    """The offset where the line after `value` begins (the end of the text if it is the last line)."""
    end = value.end_mark
    line = end.line if end.column == 0 and end.line > value.start_mark.line else end.line + 1
    return lines[line] if line < len(lines) else len(text)


def _scalar(value: object, style: str | None = None) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    if style == "'":
        return "'" + text.replace("'", "''") + "'"
    if style is None and _PLAIN.fullmatch(text) and text not in ("true", "false", "null", "~"):
        return text
    return json.dumps(text)


def _replace(node: yaml.Node, value: object) -> _Edit:
    if not isinstance(node, yaml.ScalarNode) or node.style not in (None, "", '"', "'"):
        raise _Skip("an endpoint value is not a one-line scalar")
    style = node.style or None
    return _Edit(node.start_mark.index, node.end_mark.index, _scalar(value, style))


def _delete(item: tuple[yaml.Node, yaml.Node], text: str, lines: list[int]) -> _Edit:
    key, value = item
    start = lines[key.start_mark.line]
    if text[start : key.start_mark.index].strip():
        raise _Skip(f"spec.{key.value} does not begin its line")
    return _Edit(start, _line_after(value, lines, text), "")


def _render(key: str, value: object, indent: int, newline: str) -> str:
    pad = " " * indent
    if isinstance(value, dict):
        body = "".join(f"{pad}  {k}: {_scalar(v)}{newline}" for k, v in value.items())
        return f"{pad}{key}:{newline}{body}"
    return f"{pad}{key}: {_scalar(value)}{newline}"
