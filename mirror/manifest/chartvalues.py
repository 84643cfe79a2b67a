"""spec.charts[].values, valuesFiles, kubeVersion and apiVersions, checked and read when a MirrorSet is loaded.

Values files are read here, once, so that discovery renders with exactly what was checked. See docs/mirrorset.md.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from mirror.errors import ManifestError, UsageError
from mirror.fsutil import require_regular_file
from mirror.limits import DEFAULT_LIMITS, Limits
from mirror.manifest.model import ChartValues
from mirror.yamlio import YamlBudget, read_yaml

FIELDS = {"values", "valuesFiles", "kubeVersion", "apiVersions"}
# What Helm's --kube-version parses (a semantic version, `v` and the patch optional).
_KUBE_VERSION = re.compile(r"v?[0-9]{1,4}\.[0-9]{1,4}(\.[0-9]{1,4})?(-[0-9A-Za-z.-]{1,64})?(\+[0-9A-Za-z.-]{1,64})?")
# version, group/version or group/version/Kind: never a flag, never a comma (helm splits its list on commas).
_API_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]{0,252}(/[A-Za-z0-9][A-Za-z0-9.-]{0,62}){0,2}")

Fail = Callable[..., ManifestError]  # (field, problem, hint=None), bound to the MirrorSet file


def chart_values(
    item: Mapping[str, Any], field: str, base: Path, fail: Fail, limits: Limits = DEFAULT_LIMITS
) -> ChartValues:
    """The four fields of one chart entry (`field` is e.g. spec.charts[0]; `base` the MirrorSet's folder)."""
    return ChartValues(
        files=_files(item.get("valuesFiles"), f"{field}.valuesFiles", base, fail, limits),
        inline=_inline(item.get("values"), f"{field}.values", fail),
        kube_version=_kube_version(item.get("kubeVersion"), f"{field}.kubeVersion", fail),
        api_versions=_api_versions(item.get("apiVersions"), f"{field}.apiVersions", fail),
    )


def _inline(value: Any, field: str, fail: Fail) -> bytes:
    if value is None:
        return b""
    if not isinstance(value, dict):
        raise fail(field, f"expected a mapping of values, got {type(value).__name__}")
    if not value:
        return b""
    return yaml.safe_dump(value, sort_keys=False, allow_unicode=True).encode()


def _files(value: Any, field: str, base: Path, fail: Fail, limits: Limits) -> tuple[tuple[str, bytes], ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise fail(field, "expected a list of values files (paths relative to the MirrorSet file)")
    result = []
    for i, item in enumerate(value):
        where = f"{field}[{i}]"
        if not isinstance(item, str) or not item:
            raise fail(where, f"expected a non-empty path, got {item!r}")
        result.append((item, _read(base / item, where, fail, limits)))
    return tuple(result)


def _read(path: Path, field: str, fail: Fail, limits: Limits) -> bytes:
    try:
        require_regular_file(path, "values file")
        with open(path, "rb") as handle:
            data = handle.read(limits.max_values_file_bytes + 1)
    except UsageError as exc:
        raise fail(field, exc.message) from exc
    except OSError as exc:
        raise fail(field, f"{path}: cannot read: {exc.strerror or exc}") from exc
    if len(data) > limits.max_values_file_bytes:
        raise fail(field, f"{path}: larger than {limits.max_values_file_bytes} bytes (limit max_values_file_bytes)")
    try:
        documents = read_yaml(data, str(path), budget=YamlBudget.from_limits(limits))
    except yaml.YAMLError as exc:
        raise fail(field, f"{path}: not valid YAML: {' '.join(str(exc).split())[:300]}") from exc
    except UsageError as exc:  # past the YAML budget: an alias bomb
        raise fail(field, exc.message, hint=exc.hint) from exc
    if len(documents) > 1 or not isinstance(documents[0] if documents else {}, dict | type(None)):
        raise fail(field, f"{path}: a values file is one YAML mapping")
    return data


def _kube_version(value: Any, field: str, fail: Fail) -> str | None:
    if value is None:
        return None
    if isinstance(value, float | int) and not isinstance(value, bool):
        raise fail(field, f"{value!r} was read as a number", hint='quote it, e.g. kubeVersion: "1.31.0"')
    if not isinstance(value, str) or not _KUBE_VERSION.fullmatch(value):
        raise fail(field, f"{value!r} is not a Kubernetes version such as 1.31.0")
    return value


def _api_versions(value: Any, field: str, fail: Fail) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise fail(field, "expected a list of API versions, e.g. [monitoring.coreos.com/v1]")
    for i, item in enumerate(value):
        if not isinstance(item, str) or not _API_VERSION.fullmatch(item):
            raise fail(
                f"{field}[{i}]",
                f"{item!r} is not an API version (version, group/version or group/version/Kind)",
            )
    return tuple(value)
