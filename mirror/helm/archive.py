"""Chart archives (.tgz) read safely in memory, within a budget: nothing is ever extracted to disk.

See docs/collector.md ("Helm charts").
"""

from __future__ import annotations

import datetime
import gzip
import io
import re
import tarfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO

import yaml

from mirror.errors import InvalidDocumentError
from mirror.limits import DEFAULT_LIMITS, Limits
from mirror.yamlio import YamlBudget, read_yaml

_Base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# Helm reads Chart.yaml fields into Go strings, keeping the scalar's text: `version: 1.10` is "1.10", not 1.1.
# This loader resolves only null and booleans, so numbers and dates stay as written.
_TEXT_TAGS_DROPPED = {
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:timestamp",
}


class _TextScalarLoader(_Base):  # type: ignore[misc, valid-type]
    yaml_implicit_resolvers = {  # noqa: RUF012 - the resolver table PyYAML reads from the class
        first: [(tag, pattern) for tag, pattern in resolvers if tag not in _TEXT_TAGS_DROPPED]
        for first, resolvers in _Base.yaml_implicit_resolvers.items()
    }


def max_tar_bytes(limits: Limits) -> int:
    """Decompressed bytes tarfile may pull, all overheads included: the backstop behind the other caps."""
    return limits.max_chart_content_bytes + limits.max_chart_members * 2048 + 2 * limits.max_chart_header_bytes


@dataclass(frozen=True)
class Dependency:
    name: str
    version: str  # a constraint, e.g. "22.x.x"; "" when absent
    repository: str  # https://…, oci://…, @alias, file://…, or "" for a vendored-only dependency
    alias: str | None = None
    condition: str | None = None


@dataclass(frozen=True)
class Chart:
    name: str
    version: str
    app_version: str  # "" when Chart.yaml has none
    api_version: str  # "v1" or "v2"
    chart_type: str  # "application" or "library"
    metadata: Mapping[str, Any]  # Chart.yaml as parsed, scalars kept as text
    values: Mapping[str, Any]  # values.yaml; {} when absent or unreadable (see warnings)
    annotations: dict[str, str]
    dependencies: tuple[Dependency, ...]
    subcharts: tuple[Chart, ...]  # vendored under charts/, sorted by name
    lock: Mapping[str, Any] | None = None  # Chart.lock (v2) or requirements.lock (v1)
    warnings: tuple[str, ...] = ()
    path: str = ""  # where the chart sits in the archive, e.g. "wordpress/charts/mariadb"


class _TooBig(Exception):
    """A cap was passed inside tarfile or gzip; turned into InvalidDocumentError at the edge."""


@dataclass
class _Budget:
    limits: Limits
    yaml: YamlBudget  # nodes of every YAML file of the chart and its sub-charts together
    content_bytes: int = 0
    tar_bytes: int = 0
    members: int = 0

    def add_tar_bytes(self, count: int) -> None:
        self.tar_bytes += count
        if self.tar_bytes > max_tar_bytes(self.limits):
            raise _TooBig(f"more than {max_tar_bytes(self.limits)} bytes once decompressed")


class _CountingReader(io.RawIOBase):
    """Reads from `inner`, failing once more than `limit` bytes have passed (or `budget` is spent)."""

    def __init__(
        self, inner: BinaryIO | gzip.GzipFile, *, limit: int | None = None, budget: _Budget | None = None
    ) -> None:
        super().__init__()
        self._inner = inner
        self._limit = limit
        self._budget = budget
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self._inner.read(len(view))
        self._account(len(data))
        view[: len(data)] = data
        return len(data)

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = 64 * 1024
        data = self._inner.read(size)
        self._account(len(data))
        return data

    def _account(self, count: int) -> None:
        self.count += count
        if self._limit is not None and self.count > self._limit:
            raise _TooBig(f"archive is larger than {self._limit} bytes")
        if self._budget is not None:
            self._budget.add_tar_bytes(count)


_HEADER_TYPES = {
    tarfile.XHDTYPE,
    tarfile.XGLTYPE,
    tarfile.SOLARIS_XHDTYPE,
    tarfile.GNUTYPE_LONGNAME,
    tarfile.GNUTYPE_LONGLINK,
}


class _GuardedTarInfo(tarfile.TarInfo):
    """Refuses a PAX or GNU long-name header whose data is too large before tarfile reads it into memory.

    `_proc_member` is tarfile's private hook, stable since Python 2; should it ever go away, the byte budget
    of _CountingReader still bounds what such a header can cost. Subclassed per read to carry the cap.
    """

    max_header_bytes = DEFAULT_LIMITS.max_chart_header_bytes

    def _proc_member(self, tarfile_: tarfile.TarFile) -> tarfile.TarInfo:
        if self.type in _HEADER_TYPES and self.size > self.max_header_bytes:
            raise _TooBig(f"extended header of {self.size} bytes is larger than {self.max_header_bytes}")
        if self.type == tarfile.GNUTYPE_SPARSE:
            raise _TooBig("sparse file members are not allowed")
        return super()._proc_member(tarfile_)  # type: ignore[misc]


_KEPT_FILES = ("Chart.yaml", "values.yaml", "requirements.yaml", "Chart.lock", "requirements.lock")
_KEPT = re.compile(
    r"(?:charts/[^/]+/)*(?:" + "|".join(re.escape(n) for n in _KEPT_FILES) + r"|charts/[^/]+\.tgz)",
)
_REGULAR_TYPES = {tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE}
_TYPE_NAMES = {
    tarfile.SYMTYPE: "symbolic link",
    tarfile.LNKTYPE: "hard link",
    tarfile.CHRTYPE: "character device",
    tarfile.BLKTYPE: "block device",
    tarfile.FIFOTYPE: "FIFO",
    tarfile.GNUTYPE_SPARSE: "sparse file",
}
_DRIVE = re.compile(r"^[A-Za-z]:")


def read_chart(
    data: bytes | BinaryIO,
    *,
    where: str,
    limits: Limits = DEFAULT_LIMITS,
    yaml_budget: YamlBudget | None = None,
) -> Chart:
    """Read a chart archive; raises InvalidDocumentError (exit 3) naming `where` and the member at fault.

    Its YAML files, sub-charts' included, share one `yaml_budget` (by default Limits' budget of one file):
    YAML past it, an alias bomb, is YamlBudgetError (exit 2) naming the chart and the file.
    """
    budget = _Budget(limits, yaml_budget if yaml_budget is not None else YamlBudget.from_limits())
    top, files = _read_archive(data, where, budget)
    del top  # Helm names a chart by its Chart.yaml, not by its directory
    return _build_chart(files, "", where, None, budget, depth=0)


def _fail(where: str, problem: str, member: str | None = None) -> InvalidDocumentError:
    location = f"{where}: {member}" if member else where
    return InvalidDocumentError(
        f"{location}: {problem}",
        hint="the chart archive is malformed or unsafe; fetch it again from a trusted source",
    )


def _read_archive(data: bytes | BinaryIO, where: str, budget: _Budget) -> tuple[str, dict[str, bytes]]:
    """Walk one .tgz; return its top directory and the kept files by path below it."""
    limits = budget.limits
    source: BinaryIO = io.BytesIO(data) if isinstance(data, bytes | bytearray | memoryview) else data
    compressed = _CountingReader(source, limit=limits.max_chart_bytes)
    top: str | None = None
    files: dict[str, bytes] = {}
    seen: set[str] = set()
    current: str | None = None  # the last member tarfile returned
    reading = False  # True while that member's data is read; otherwise tarfile is between headers
    try:
        with gzip.GzipFile(fileobj=compressed, mode="rb") as unzipped:
            counted = _CountingReader(unzipped, budget=budget)
            guarded = type("_CappedTarInfo", (_GuardedTarInfo,), {"max_header_bytes": limits.max_chart_header_bytes})
            with tarfile.open(fileobj=counted, mode="r|", tarinfo=guarded) as archive:
                for member in archive:
                    current = member.name
                    budget.members += 1
                    if budget.members > limits.max_chart_members:
                        raise _fail(where, f"more than {limits.max_chart_members} members")
                    name, parts = _check_name(member, where)
                    if len(parts) == 1 and member.type != tarfile.DIRTYPE:
                        raise _fail(where, "a file outside the chart's top directory", name)
                    if top is None:
                        top = parts[0]
                    elif parts[0] != top:
                        raise _fail(where, f"a second top directory {parts[0]!r} besides {top!r}", name)
                    if member.type == tarfile.DIRTYPE:
                        continue
                    if member.size > limits.max_chart_file_bytes:
                        raise _fail(
                            where,
                            f"{member.size} bytes is over the {limits.max_chart_file_bytes}-byte file limit",
                            name,
                        )
                    budget.content_bytes += member.size
                    if budget.content_bytes > limits.max_chart_content_bytes:
                        raise _fail(where, f"the chart holds more than {limits.max_chart_content_bytes} bytes", name)
                    if name in seen:
                        raise _fail(where, "the same file twice", name)
                    seen.add(name)
                    relative = "/".join(parts[1:])
                    if _KEPT.fullmatch(relative):
                        reading = True
                        files[relative] = _read_member(archive, member, where, name)
                        reading = False
    except InvalidDocumentError:
        raise
    except _TooBig as exc:
        raise _fail(where, str(exc), _position(current, reading)) from None
    except gzip.BadGzipFile as exc:
        if current is None:
            raise _fail(where, f"not a gzip-compressed chart archive ({exc})") from None
        raise _fail(where, f"corrupt gzip data ({exc})", _position(current, reading)) from None
    except (tarfile.TarError, EOFError, OSError, zlib.error, ValueError, RecursionError) as exc:
        raise _fail(where, f"unreadable tar.gz: {exc}", _position(current, reading)) from None
    if top is None:
        raise _fail(where, "an empty archive: no Chart.yaml")
    return top, files


def _position(current: str | None, reading: bool) -> str:
    if current is None:
        return "first tar header"
    return current if reading else f"tar header after {current}"


def _check_name(member: tarfile.TarInfo, where: str) -> tuple[str, list[str]]:
    name = member.name
    if member.type not in _REGULAR_TYPES and member.type != tarfile.DIRTYPE:
        kind = _TYPE_NAMES.get(member.type, f"type {member.type!r}")
        raise _fail(where, f"{kind} members are not allowed; only regular files and directories", name)
    if not name or "\\" in name or "\x00" in name:
        raise _fail(where, "unsafe member name", repr(name))
    if name.startswith("/") or _DRIVE.match(name):
        raise _fail(where, "an absolute path", name)
    parts = name.split("/")
    if ".." in parts:
        raise _fail(where, "a path that climbs out with '..'", name)
    if any(part in ("", ".") for part in parts):
        raise _fail(where, "a path with empty or '.' parts", name)
    return name, parts


def _read_member(archive: tarfile.TarFile, member: tarfile.TarInfo, where: str, name: str) -> bytes:
    handle = archive.extractfile(member)
    if handle is None:  # pragma: no cover - regular files always have a handle
        raise _fail(where, "cannot read", name)
    chunks: list[bytes] = []
    remaining = member.size
    while remaining > 0:
        chunk = handle.read(min(remaining, 64 * 1024))
        if not chunk:
            raise _fail(where, f"truncated: {member.size - remaining} of {member.size} bytes", name)
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _build_chart(
    files: dict[str, bytes], prefix: str, where: str, parent: str | None, budget: _Budget, depth: int
) -> Chart:
    """The chart whose files sit under `prefix`; its path is Helm's (`parent/charts/<name>`), as in `# Source:`."""
    if depth > budget.limits.max_subchart_depth:
        raise _fail(where, f"sub-charts nested deeper than {budget.limits.max_subchart_depth}", prefix or None)
    notes: list[str] = []
    chart_member = prefix + "Chart.yaml"
    if chart_member not in files:
        raise _fail(where, "no Chart.yaml", prefix or None)
    metadata = _load_yaml(files[chart_member], _TextScalarLoader, where, chart_member, budget)
    if not isinstance(metadata, dict):
        raise _fail(where, "Chart.yaml is not a mapping", chart_member)
    name = _text_field(metadata, "name", where, chart_member, required=True)
    version = _text_field(metadata, "version", where, chart_member, required=True)
    app_version = _text_field(metadata, "appVersion", where, chart_member)
    api_version = _text_field(metadata, "apiVersion", where, chart_member) or "v1"
    chart_type = _text_field(metadata, "type", where, chart_member) or "application"
    path = name if parent is None else f"{parent}/charts/{name}"
    annotations = _annotations(metadata.get("annotations"), where, chart_member)

    dependencies = _dependencies(metadata.get("dependencies"), where, chart_member)
    requirements = prefix + "requirements.yaml"
    if requirements in files:
        document = _load_yaml(files[requirements], _TextScalarLoader, where, requirements, budget)
        if document is not None and not isinstance(document, dict):
            raise _fail(where, "requirements.yaml is not a mapping", requirements)
        if not dependencies:
            dependencies = _dependencies((document or {}).get("dependencies"), where, requirements)
        if api_version != "v1":
            notes.append(f"{requirements}: dependencies belong in Chart.yaml since apiVersion v2")

    values: Mapping[str, Any] = {}
    values_member = prefix + "values.yaml"
    if values_member in files:
        try:
            loaded = _load_yaml(files[values_member], _Base, where, values_member, budget)
        except InvalidDocumentError as exc:
            notes.append(f"{exc.message}; values ignored")
        else:
            if isinstance(loaded, dict):
                values = loaded
            elif loaded is not None:
                notes.append(f"{where}: {values_member}: not a mapping; values ignored")

    lock = None
    for lock_name in ("Chart.lock", "requirements.lock"):
        if prefix + lock_name in files:
            try:
                loaded = _load_yaml(files[prefix + lock_name], _TextScalarLoader, where, prefix + lock_name, budget)
            except InvalidDocumentError as exc:
                notes.append(f"{exc.message}; lock ignored")
            else:
                lock = loaded if isinstance(loaded, dict) else None
            break

    subcharts = tuple(sorted(_subcharts(files, prefix, where, path, budget, depth), key=lambda c: c.path))
    return Chart(
        name=name,
        version=version,
        app_version=app_version,
        api_version=api_version,
        chart_type=chart_type,
        metadata=metadata,
        values=values,
        annotations=annotations,
        dependencies=dependencies,
        subcharts=subcharts,
        lock=lock,
        warnings=tuple(notes),
        path=path,
    )


def _subcharts(files: dict[str, bytes], prefix: str, where: str, path: str, budget: _Budget, depth: int) -> list[Chart]:
    charts_dir = prefix + "charts/"
    directories: set[str] = set()
    found: list[Chart] = []
    for member in sorted(files):
        if not member.startswith(charts_dir):
            continue
        rest = member[len(charts_dir) :]
        entry, slash, _ = rest.partition("/")
        if entry.startswith(("_", ".")):  # Helm ignores these too
            continue
        if slash:
            directories.add(entry)
            continue
        nested_where = f"{where}: {member}"
        _, nested = _read_archive(files[member], nested_where, budget)
        found.append(_build_chart(nested, "", nested_where, path, budget, depth + 1))
    for entry in sorted(directories):
        found.append(_build_chart(files, f"{charts_dir}{entry}/", where, path, budget, depth + 1))
    return found


def _load_yaml(data: bytes, loader: type, where: str, member: str, budget: _Budget) -> Any:
    """The one document of a chart file (None when empty), measured against the chart's YAML budget."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _fail(where, f"not UTF-8: {exc}", member) from None
    try:
        documents = read_yaml(text, f"{where}: {member}", loader=loader, budget=budget.yaml)
    except yaml.YAMLError as exc:
        raise _fail(where, f"not valid YAML: {_one_line(exc)}", member) from None
    if len(documents) > 1:
        raise _fail(where, "more than one YAML document", member)
    return documents[0] if documents else None


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())


def _text_field(metadata: dict[Any, Any], key: str, where: str, member: str, *, required: bool = False) -> str:
    value = metadata.get(key)
    if value is None or value == "":
        if required:
            raise _fail(where, f"field {key!r} is required", member)
        return ""
    text = _scalar_text(value)
    if text is None:
        raise _fail(where, f"field {key!r} must be a string, not {type(value).__name__}", member)
    return text


def _scalar_text(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    if isinstance(value, datetime.date):
        return value.isoformat()
    return None


def _annotations(value: Any, where: str, member: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _fail(where, "annotations must be a mapping of strings", member)
    result: dict[str, str] = {}
    for key, item in value.items():
        text = "" if item is None else _scalar_text(item)
        if text is None or _scalar_text(key) is None:
            raise _fail(where, f"annotation {key!r} must be a string", member)
        result[str(key)] = text
    return result


def _dependencies(value: Any, where: str, member: str) -> tuple[Dependency, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise _fail(where, "dependencies must be a list", member)
    result = []
    for index, item in enumerate(value):
        field_where = f"{member}: dependencies[{index}]"
        if not isinstance(item, dict):
            raise _fail(where, "a dependency must be a mapping", field_where)
        result.append(
            Dependency(
                name=_text_field(item, "name", where, field_where, required=True),
                version=_text_field(item, "version", where, field_where),
                repository=_text_field(item, "repository", where, field_where),
                alias=_text_field(item, "alias", where, field_where) or None,
                condition=_text_field(item, "condition", where, field_where) or None,
            )
        )
    return tuple(result)


__all__ = ["Chart", "Dependency", "max_tar_bytes", "read_chart"]
