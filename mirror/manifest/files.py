"""Reading `spec.files`: single files, from a URL (pinned by sha256, or trusted on first use) or a local path.

See docs/mirrorset.md ("Files").
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from mirror.errors import ManifestError
from mirror.manifest.model import FileSource
from mirror.oci.fileartifact import is_file_name, landing_repository
from mirror.oci.reference import is_repository_path, is_tag

TRUST_ON_FIRST_USE = "trust-on-first-use"
DEFAULT_TAG = "latest"

_FIELDS = {"url", "path", "sha256", "name", "tag"}
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")

Fail = Callable[..., ManifestError]  # _Checker.fail: (field, problem, hint=None) → ManifestError


def parse_files(value: Any, manifest: Path, fail: Fail) -> tuple[FileSource, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise fail("spec.files", "expected a list of {url, sha256, name} or {path, sha256, name} entries")
    result: list[FileSource] = []
    for i, item in enumerate(value):
        entry = _entry(item, f"spec.files[{i}]", manifest, fail)
        for earlier in result:
            if earlier.name.lower() == entry.name.lower():
                raise fail(
                    f"spec.files[{i}].name",
                    f"{entry.name!r} is also the name of {earlier.origin.removeprefix(f'{manifest}: ')}",
                    hint="two files land in one repository and one --files-out name: give one of them another name",
                )
        result.append(entry)
    return tuple(result)


def _entry(item: Any, field: str, manifest: Path, fail: Fail) -> FileSource:
    if not isinstance(item, dict):
        raise fail(field, f"expected a mapping with url or path, got {type(item).__name__}")
    unknown = sorted(str(k) for k in item if k not in _FIELDS)
    if unknown:
        raise fail(f"{field}.{unknown[0]}", "unknown field", hint=f"allowed fields here: {', '.join(sorted(_FIELDS))}")
    if ("url" in item) == ("path" in item):
        raise fail(field, "give exactly one of url (an http(s) download) or path (a local file)")
    origin = f"{manifest}: {field}"
    sha256 = item.get("sha256")
    if "url" in item:
        url = _url(item["url"], f"{field}.url", fail)
        if sha256 is None:
            raise fail(
                f"{field}.sha256",
                "missing; a file from a URL is pinned by its sha256",
                hint=f"add `sha256: <64 hex digits>` (as the publisher gives it) or `sha256: {TRUST_ON_FIRST_USE}` "
                "(the digest seen at the first resolve is written into the lock)",
            )
        digest = None if sha256 == TRUST_ON_FIRST_USE else _sha256(sha256, f"{field}.sha256", fail)
        default_name = PurePosixPath(urlsplit(url).path).name
        name = _name(item.get("name", default_name), f"{field}.name", fail, defaulted="name" not in item)
        return FileSource(name, url, url, None, digest, _tag(item.get("tag"), f"{field}.tag", fail), origin)
    written = item["path"]
    if not isinstance(written, str) or not written or written.startswith("/"):
        raise fail(f"{field}.path", f"expected a path relative to the MirrorSet file, got {written!r}")
    local = manifest.parent / written
    if not local.is_file():
        raise fail(f"{field}.path", f"{local} is not a file")
    if sha256 == TRUST_ON_FIRST_USE:
        raise fail(f"{field}.sha256", "a local file is read as it is: give its sha256 to check it, or leave it out")
    digest = None if sha256 is None else _sha256(sha256, f"{field}.sha256", fail)
    name = _name(item.get("name", PurePosixPath(written).name), f"{field}.name", fail, defaulted="name" not in item)
    return FileSource(name, written, None, local, digest, _tag(item.get("tag"), f"{field}.tag", fail), origin)


def _url(value: Any, field: str, fail: Fail) -> str:
    if not isinstance(value, str) or not value:
        raise fail(field, f"expected an http(s) URL, got {value!r}")
    if not value.isprintable():  # urlsplit drops tabs and newlines, the HTTP client refuses them: percent-encode
        raise fail(field, f"{value!r} holds a control character", hint="percent-encode it (%09, %0A, ...)")
    try:
        parts = urlsplit(value)
        credentials = bool(parts.username or parts.password)
        hostname = parts.hostname
    except ValueError as exc:
        raise fail(field, "not a valid URL") from exc  # never echoed: it may carry a password
    if credentials:
        raise fail(field, "the URL must not carry credentials")
    if parts.scheme not in ("http", "https") or not hostname or parts.fragment:
        raise fail(field, f"{value!r} must be an https:// or http:// URL without a fragment")
    return value


def _sha256(value: Any, field: str, fail: Fail) -> str:
    if not isinstance(value, str) or not _SHA256.fullmatch(value.removeprefix("sha256:")):
        raise fail(field, f"expected 64 hex digits or {TRUST_ON_FIRST_USE!r}, got {value!r}")
    return value.removeprefix("sha256:").lower()


def _name(value: Any, field: str, fail: Fail, *, defaulted: bool) -> str:
    if not is_file_name(value):
        told = f"the last path segment {value!r}" if defaulted else repr(value)
        raise fail(
            field,
            f"{told} is not a file name of letters, digits, '.', '_' or '-' (at most 128)",
            hint="give the file a name: `name: tool`",
        )
    if not is_repository_path(landing_repository(value)):
        raise fail(
            field,
            f"{value!r} cannot name the repository it lands in ({landing_repository(value)}): letters and digits "
            "joined by single '.', '_' or '-'",
            hint="give the file a name such as `name: rke2-install.sh`",
        )
    return str(value)


def _tag(value: Any, field: str, fail: Fail) -> str:
    if value is None:
        return DEFAULT_TAG
    if not isinstance(value, str) or not is_tag(value):
        raise fail(field, f"{value!r} is not a tag ([A-Za-z0-9_][A-Za-z0-9._-]{{0,127}})")
    return value


def check_one_name(files: Iterable[tuple[str, FileSource]]) -> None:
    """Files of MirrorSets collected together: one name, one file (the same entry twice is one file)."""
    seen: dict[str, tuple[str, FileSource]] = {}
    for path, entry in files:
        key = entry.name.lower()
        earlier = seen.setdefault(key, (path, entry))
        # The same entry: the very name too, as one file lands (and is locked) under one name; and for a local
        # file the same file, not the same words (`path: tool` beside two MirrorSets names two files).
        same = _identity(earlier[1]) == _identity(entry)
        if earlier[1] is not entry and not same:
            raise ManifestError(
                path,
                entry.origin.removeprefix(f"{path}: ") + ".name",
                f"{entry.name!r} is also the name of another file at {earlier[1].origin}",
                hint="two files land in one repository and one --files-out name: give one of them another name",
            )


def _identity(entry: FileSource) -> tuple[object, ...]:
    local = entry.path.resolve() if entry.path is not None else None
    return entry.name, entry.source, local, entry.sha256, entry.tag
