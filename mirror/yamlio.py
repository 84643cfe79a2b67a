"""YAML read within a budget, for every YAML document mirror reads; strict loading for documents people write.

See docs/limits.md ("Parsing what others wrote").
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mirror.errors import UsageError
from mirror.limits import DEFAULT_LIMITS, Limits

_Base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class YamlBudgetError(UsageError):
    """YAML that would expand past its budget of nodes or depth (an alias bomb), or into an infinite tree."""


@dataclass
class YamlBudget:
    """Nodes the YAML read for one purpose may still expand to, and how deep it may nest.

    One budget may be shared by several files (a chart and its vendored sub-charts), so that many files each
    under the limit cannot multiply it.
    """

    max_nodes: int
    max_depth: int
    used: int = 0

    @classmethod
    def from_limits(cls, limits: Limits = DEFAULT_LIMITS) -> YamlBudget:
        return cls(limits.max_yaml_nodes, limits.max_yaml_depth)


_HINT = "the YAML uses aliases (or nesting) to expand far beyond its size; refusing it before building it"


def _line(node: yaml.Node) -> str:
    mark = node.start_mark
    return f"line {mark.line + 1}" if mark is not None else "a node"


def _measure(root: yaml.Node, budget: YamlBudget, where: str) -> int:
    """The nodes `root` expands to; raises YamlBudgetError past what is left of the budget or its depth.

    An iterative depth-first walk (no recursion limit to meet) in which each collection is measured once;
    scalars, most of the nodes, count 1 and are never stacked.
    """
    allowed = budget.max_nodes - budget.used
    if isinstance(root.value, str):
        return _check(root, 1, 0, allowed, budget, where)
    sizes: dict[int, int] = {}
    depths: dict[int, int] = {}
    open_nodes: set[int] = set()  # entered, not finished: exactly the path from the root
    stack: list[tuple[yaml.Node, list[yaml.Node] | None, int]] = [(root, None, 0)]
    while stack:
        node, collections, scalars = stack.pop()
        key = id(node)
        if collections is not None:  # every child is measured: finish the node
            open_nodes.discard(key)
            size = 1 + scalars + sum([sizes[id(c)] for c in collections])
            depth = 1 + max([depths[id(c)] for c in collections], default=0)
            sizes[key], depths[key] = _check(node, size, depth, allowed, budget, where), depth
            continue
        if key in sizes:
            continue
        if key in open_nodes:
            raise YamlBudgetError(f"{where}: an alias at {_line(node)} refers to a node that contains it", hint=_HINT)
        open_nodes.add(key)
        value = node.value
        children = value if isinstance(node, yaml.SequenceNode) else [item for pair in value for item in pair]
        kids = [c for c in children if not isinstance(c.value, str)]
        stack.append((node, kids, len(children) - len(kids)))
        stack.extend([(c, None, 0) for c in kids if id(c) not in sizes])
    return sizes[id(root)]


def _check(node: yaml.Node, size: int, depth: int, allowed: int, budget: YamlBudget, where: str) -> int:
    if size > allowed:
        raise YamlBudgetError(
            f"{where}: the YAML expands to more than {budget.max_nodes} nodes at {_line(node)} "
            "(an alias counts as the size of what it points at)",
            hint=_HINT,
        )
    if depth > budget.max_depth:
        raise YamlBudgetError(
            f"{where}: the YAML nests deeper than {budget.max_depth} levels at {_line(node)}", hint=_HINT
        )
    return size


def read_yaml(text: str | bytes, where: str, *, loader: type = _Base, budget: YamlBudget | None = None) -> list[Any]:
    """Every non-empty document of `text`, each measured against `budget` before it is constructed.

    Raises YamlBudgetError (exit 2, naming `where`) past the budget; yaml.YAMLError for YAML that does not
    parse (the caller decides how lenient to be), RecursionError and values that cannot be built turned into one.
    """
    budget = budget if budget is not None else YamlBudget.from_limits()
    parser = loader(text)
    _guard_construction(parser)
    documents = []
    try:
        while parser.check_node():
            node = parser.get_node()
            budget.used += _measure(node, budget, where)
            document = parser.construct_document(node)
            if document is not None:
                documents.append(document)
    except RecursionError as exc:  # the pure-Python composer recurses; the budget's depth is far below this
        raise yaml.YAMLError(f"nested too deeply: {exc}") from None
    finally:
        parser.dispose()
    return documents


# What PyYAML's constructors raise for a scalar whose text its tag cannot hold: int() past 4300 digits
# (ValueError), 2026-02-30 (ValueError), `!!timestamp abc` (AttributeError), `!!int abc` (ValueError).
UNBUILDABLE_VALUE_ERRORS = (ValueError, OverflowError, AttributeError, TypeError)


def _guard_construction(parser: Any) -> None:
    """Make `parser` raise a ConstructorError, with the node's line, for a value that cannot be built.

    Every node, nested ones included, is built through construct_object, so the innermost failing node is named.
    """
    construct_object = parser.construct_object

    def construct_or_refuse(node: yaml.Node, deep: bool = False) -> Any:
        try:
            return construct_object(node, deep=deep)
        except UNBUILDABLE_VALUE_ERRORS as exc:
            raise yaml.constructor.ConstructorError(
                None, None, f"cannot build a {node.tag} value: {exc}", node.start_mark
            ) from None

    parser.construct_object = construct_or_refuse


class _StrictLoader(_Base):  # type: ignore[misc, valid-type]
    pass


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_yaml_documents(path: Path, limits: Limits = DEFAULT_LIMITS) -> list[Any]:
    """A file people write (MirrorSet, trust policy): no duplicate keys, within the YAML budget."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read: {exc}") from exc
    try:
        return read_yaml(text, str(path), loader=_StrictLoader, budget=YamlBudget.from_limits(limits))
    except yaml.YAMLError as exc:
        raise UsageError(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from exc
