"""A Helm repository's index.yaml, read as a stream of YAML events, keeping only the charts asked for.

See docs/collector.md ("Helm charts").
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass
from typing import BinaryIO, cast

import yaml
from yaml.constructor import SafeConstructor
from yaml.error import Mark
from yaml.resolver import Resolver

from mirror.errors import InvalidDocumentError, UsageError
from mirror.limits import Limits
from mirror.yamlio import UNBUILDABLE_VALUE_ERRORS

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_MERGE_TAG = "tag:yaml.org,2002:merge"
_KEPT_FIELDS = frozenset({"version", "digest", "urls"})


@dataclass(frozen=True, slots=True)
class IndexEntry:
    version: str
    digest: object = None  # as YAML reads it; None when absent or null
    urls: tuple[object, ...] | None = None  # None when not a list; only the first URL is kept


class NotScalar:
    """A mapping or sequence where a scalar was expected; shown as such in messages."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def __repr__(self) -> str:
        return f"<a {self.kind}>"


class _Skip:
    """Marks a key whose value is not kept."""


_SKIP = _Skip()


@dataclass(frozen=True, slots=True)
class _Sequence:
    first: Compact | None  # None: empty


@dataclass(frozen=True, slots=True)
class _Mapping:
    fields: dict[str, Compact]  # version, digest and urls only, merges applied


@dataclass(frozen=True, slots=True)
class _Unsupported:
    what: str  # a chart list or the entries mapping: not accepted as an alias target


Compact = yaml.ScalarEvent | _Sequence | _Mapping | _Unsupported


class _IndexReader:
    def __init__(self, events: Iterator[yaml.Event], names: Collection[str], where: str, limits: Limits) -> None:
        self._events = events
        self._names = frozenset(names)
        self._where = where
        self._limits = limits
        self._nodes = 0
        self._anchors: dict[str, Compact] = {}
        self._resolver = Resolver()
        self._constructor = SafeConstructor()

    # -- events --------------------------------------------------------------------------------------------

    def _next(self) -> yaml.Event:
        event = next(self._events)
        if isinstance(event, yaml.NodeEvent):
            self._nodes += 1
            if self._nodes > self._limits.max_index_yaml_nodes:
                raise UsageError(
                    f"{self._where}: more than {self._limits.max_index_yaml_nodes} YAML nodes; "
                    "refused (limit max_index_yaml_nodes)"
                )
        return event

    def _remember(self, event: yaml.Event, compact: Compact) -> Compact:
        anchor = getattr(event, "anchor", None)
        if anchor is not None:
            if anchor not in self._anchors and len(self._anchors) >= self._limits.max_index_yaml_anchors:
                raise UsageError(
                    f"{self._where}: more than {self._limits.max_index_yaml_anchors} YAML anchors; "
                    "refused (limit max_index_yaml_anchors)"
                )
            self._anchors[anchor] = compact
        return compact

    def _alias(self, event: yaml.AliasEvent) -> Compact:
        try:
            return self._anchors[event.anchor or ""]  # PyYAML gives every alias an anchor name
        except KeyError:
            raise InvalidDocumentError(f"{self._where}: not valid YAML: undefined alias *{event.anchor}") from None

    def _skip(self, event: yaml.Event) -> None:
        """Consume the rest of the node that `event` starts, remembering anchored nodes inside it."""
        if isinstance(event, yaml.CollectionStartEvent) and event.anchor is None:
            depth = 1
            while depth:
                event = self._next()
                if isinstance(event, yaml.NodeEvent) and event.anchor is not None:
                    self._compact(event)  # consumes the whole anchored node
                elif isinstance(event, yaml.CollectionStartEvent):
                    depth += 1
                elif isinstance(event, yaml.CollectionEndEvent):
                    depth -= 1
        elif isinstance(event, yaml.NodeEvent) and event.anchor is not None:
            self._compact(event)

    def _compact(self, event: yaml.Event) -> Compact:
        """The node that `event` starts, consumed, in compact form."""
        if isinstance(event, yaml.AliasEvent):
            return self._alias(event)
        if isinstance(event, yaml.ScalarEvent):
            return self._remember(event, event)
        if isinstance(event, yaml.MappingStartEvent):
            return self._remember(event, _Mapping(self._fields()))
        first = None
        while not isinstance(item := self._next(), yaml.SequenceEndEvent):
            if first is None:
                first = self._compact(item)
            else:
                self._skip(item)
        return self._remember(event, _Sequence(first))

    def _fields(self) -> dict[str, Compact]:
        """A mapping's version, digest and urls, once its start was read; explicit keys win over merged ones."""
        explicit: dict[str, Compact] = {}
        merged: dict[str, Compact] = {}
        while not isinstance(key := self._next(), yaml.MappingEndEvent):
            if isinstance(key, yaml.AliasEvent) or not isinstance(key, yaml.ScalarEvent):
                self._skip(key)
                self._skip(self._next())
                continue
            value = self._next()
            if key.value == "<<" and self._tag(key) == _MERGE_TAG:
                for source in self._merge_sources(value):
                    for name, field in source.fields.items():
                        merged.setdefault(name, field)
            elif key.value in _KEPT_FIELDS and self._construct(key) == key.value:
                explicit[key.value] = self._compact(value)
            else:
                self._skip(value)
        return {**merged, **explicit}

    def _merge_sources(self, event: yaml.Event) -> list[_Mapping]:
        """What `<<:` merges, earliest first: a mapping, or a sequence of mappings (usually aliases)."""
        if isinstance(event, yaml.SequenceStartEvent):
            items: list[Compact] = []
            while not isinstance(item := self._next(), yaml.SequenceEndEvent):
                items.append(self._compact(item))
            self._remember(event, _Unsupported("a merge list"))
        else:
            items = [self._compact(event)]
        mappings = [compact for compact in items if isinstance(compact, _Mapping)]
        if len(mappings) != len(items):
            raise InvalidDocumentError(f"{self._where}: not valid YAML: a merge key (<<) merges a non-mapping")
        return mappings

    def _tag(self, event: yaml.ScalarEvent) -> str:
        if event.tag is None or event.tag == "!":
            return self._resolver.resolve(yaml.ScalarNode, event.value, event.implicit)
        return event.tag

    def _construct(self, event: yaml.ScalarEvent) -> object:
        node = yaml.ScalarNode(self._tag(event), event.value, style=event.style)
        try:
            return self._constructor.construct_object(node)
        except UNBUILDABLE_VALUE_ERRORS as exc:  # e.g. version: 2026-02-30; read_index reports it as invalid YAML
            raise yaml.constructor.ConstructorError(
                None, None, f"cannot build a {node.tag} value: {exc}", cast("Mark", event.start_mark)
            ) from None  # the C parser's marks print as the Python ones do
        finally:
            self._constructor.constructed_objects.clear()

    def _value(self, compact: Compact | None, what: str) -> object:
        """A kept value as yaml.load builds it; NotScalar for a collection."""
        if isinstance(compact, yaml.ScalarEvent):
            return self._construct(compact)
        if isinstance(compact, _Unsupported):
            raise InvalidDocumentError(f"{self._where}: {what} is an alias of {compact.what}; not accepted")
        return NotScalar("sequence" if isinstance(compact, _Sequence) else "mapping")

    def _key(self, event: yaml.Event, interesting: Collection[str], what: str) -> object:
        """A key of the top level or of entries: its value when it may be one of `interesting`, else _SKIP."""
        if isinstance(event, yaml.AliasEvent):
            raise InvalidDocumentError(
                f"{self._where}: a key in {what} is a YAML alias (*{event.anchor}); not accepted"
            )
        if not isinstance(event, yaml.ScalarEvent):
            raise InvalidDocumentError(f"{self._where}: {what} has a key that is not a scalar")
        if event.value == "<<" and self._tag(event) == _MERGE_TAG:
            raise InvalidDocumentError(f"{self._where}: {what} uses a YAML merge key (<<); not accepted there")
        if event.value not in interesting:
            return _SKIP
        return self._construct(event)

    def _no_alias(self, event: yaml.Event, what: str) -> None:
        if isinstance(event, yaml.AliasEvent):
            raise InvalidDocumentError(f"{self._where}: {what} is a YAML alias (*{event.anchor}); not accepted")

    # -- structure -----------------------------------------------------------------------------------------

    def read(self) -> dict[str, list[IndexEntry] | None]:
        found: dict[str, list[IndexEntry] | None] | None = None
        documents = 0
        event = self._next()  # StreamStartEvent
        while not isinstance(event := self._next(), yaml.StreamEndEvent):
            if isinstance(event, yaml.DocumentStartEvent):
                documents += 1
                if documents > 1:
                    raise InvalidDocumentError(f"{self._where}: not valid YAML: more than one document")
                found = self._root(self._next())
                self._next()  # DocumentEndEvent
        if found is None:
            raise InvalidDocumentError(f"{self._where}: not a Helm repository index (no entries)")
        return found

    def _root(self, event: yaml.Event) -> dict[str, list[IndexEntry] | None] | None:
        self._no_alias(event, "the document")
        if not isinstance(event, yaml.MappingStartEvent):
            self._skip(event)
            return None
        entries: dict[str, list[IndexEntry] | None] | None = None
        while not isinstance(key := self._next(), yaml.MappingEndEvent):
            name = self._key(key, ("entries",), "the top level")
            value = self._next()
            if name == "entries":
                entries = self._entries(value)
            else:
                self._skip(value)
        self._remember(event, _Unsupported("the index"))
        return entries

    def _entries(self, event: yaml.Event) -> dict[str, list[IndexEntry] | None] | None:
        self._no_alias(event, "entries")
        if not isinstance(event, yaml.MappingStartEvent):
            self._skip(event)
            return None
        charts: dict[str, list[IndexEntry] | None] = {}
        while not isinstance(key := self._next(), yaml.MappingEndEvent):
            name = self._key(key, self._names, "entries")
            value = self._next()
            if isinstance(name, str) and name in self._names:
                charts[name] = self._versions(value, name)
            else:
                self._skip(value)
        self._remember(event, _Unsupported("entries"))
        return charts

    def _versions(self, event: yaml.Event, chart: str) -> list[IndexEntry] | None:
        what = f"entries.{chart}"
        self._no_alias(event, what)
        if not isinstance(event, yaml.SequenceStartEvent):
            self._skip(event)
            return None
        kept: list[IndexEntry] = []
        while not isinstance(item := self._next(), yaml.SequenceEndEvent):
            if isinstance(item, yaml.MappingStartEvent | yaml.AliasEvent):
                compact = self._compact(item)
                if isinstance(compact, _Unsupported):
                    raise InvalidDocumentError(f"{self._where}: an item of {what} is an alias of {compact.what}")
                entry = self._entry(compact.fields, what) if isinstance(compact, _Mapping) else None
            else:
                self._skip(item)
                entry = None
            if entry is not None:
                kept.append(entry)
                if len(kept) > self._limits.max_index_chart_versions:
                    raise UsageError(
                        f"{self._where}: chart {chart} lists more than {self._limits.max_index_chart_versions} "
                        "versions; refused (limit max_index_chart_versions)"
                    )
        self._remember(event, _Unsupported(f"the list {what}"))
        return kept

    def _entry(self, fields: dict[str, Compact], what: str) -> IndexEntry | None:
        version = self._value(fields.get("version"), f"{what}[].version") if "version" in fields else None
        if not isinstance(version, str):
            return None  # as before: unquoted versions that YAML read as numbers are skipped
        digest = self._value(fields["digest"], f"{what}[].digest") if "digest" in fields else None
        urls = fields.get("urls")
        if isinstance(urls, _Unsupported):
            self._value(urls, f"{what}[].urls")
        first: tuple[object, ...] | None = None
        if isinstance(urls, _Sequence):
            first = () if urls.first is None else (self._value(urls.first, f"{what}[].urls[0]"),)
        return IndexEntry(version, digest, first)


def read_index(
    stream: BinaryIO, names: Collection[str], *, where: str, limits: Limits
) -> dict[str, list[IndexEntry] | None]:
    """The entries of the charts `names` that the index lists, each in the index's order.

    A name the index lists as a list maps to its entries with a string version (possibly none); a name listed
    as anything else maps to None; a name not listed is absent.
    """
    try:
        return _IndexReader(yaml.parse(stream, Loader=_Loader), names, where, limits).read()
    except yaml.YAMLError as exc:
        raise InvalidDocumentError(f"{where}: not valid YAML: {' '.join(str(exc).split())}") from exc
    except RecursionError as exc:  # anchored nodes nested thousands deep under version, digest or urls
        raise InvalidDocumentError(f"{where}: YAML nested too deeply") from exc
