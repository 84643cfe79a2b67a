"""URL paths as a server will read them: percent-decoded, dot segments resolved, or refused.

See docs/importer.md ("Landing rules").
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote, unquote, urlsplit

from mirror.errors import UsageError

_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")
# What a path segment keeps literally when the landing URL is written: RFC 3986 pchar without '%' (so nothing
# the server decodes can become a separator or a dot) and without ';' (path parameters, read by some servers).
_SAFE_IN_SEGMENT = "-._~!$&'()*+,=:@"
# Percent-escapes of '.', '/', '\' and '%' in a source path: a check on the text would not see what they mean.
_ENCODED_SEPARATOR = re.compile(r"%(2[eEfF5]|5[cC])")
_REFUSED_CATEGORIES = {"Cc", "Cf", "Zl", "Zp"}


class UnsafeUrlPath(UsageError):
    """A URL path that cannot be resolved to a plain list of segments; `reason` says why."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"path {path!r} {reason}")
        self.path = path
        self.reason = reason


def _control_character(text: str) -> str | None:
    return next((ch for ch in text if unicodedata.category(ch) in _REFUSED_CATEGORIES), None)


def _remove_dot_segments(segments: list[str], raw: str) -> list[str]:
    # Written by hand (RFC 3986 §5.2.4 on a list of segments): urllib.parse.urljoin silently drops a `..` above
    # the root, which hides exactly the climb we must refuse, and posixpath.normpath follows file-system rules
    # (it keeps a leading `..` and treats `//` specially), not URL rules.
    output: list[str] = []
    for segment in segments:
        if segment == "..":
            if not output:
                raise UnsafeUrlPath(raw, "climbs above its root (a '..' segment, once decoded)")
            output.pop()
        elif segment not in (".", ""):
            output.append(segment)
    return output


def path_segments(raw: str) -> list[str]:
    """The decoded segments of a URL path, with dot segments resolved; raises UnsafeUrlPath."""
    if (ch := _control_character(raw)) is not None:
        raise UnsafeUrlPath(raw, f"holds the control character U+{ord(ch):04X}")
    try:
        decoded = unquote(raw, errors="strict")
    except UnicodeDecodeError as exc:
        raise UnsafeUrlPath(raw, "decodes to bytes that are not UTF-8") from exc
    if (ch := _control_character(decoded)) is not None:
        raise UnsafeUrlPath(raw, f"decodes to the control character U+{ord(ch):04X}")
    if _ESCAPE.search(decoded):
        raise UnsafeUrlPath(raw, "is percent-encoded twice")
    segments = _remove_dot_segments(decoded.replace("\\", "/").split("/"), raw)
    if not segments:
        raise UnsafeUrlPath(raw, "has no path left once its dot segments are resolved")
    return segments


def normalise_path(raw: str) -> str:
    """`a/%2E%2e/b/./c/` → `b/c` (decoded, no leading or trailing slash); raises UnsafeUrlPath."""
    return "/".join(path_segments(raw))


def quote_path(path: str) -> str:
    """A normalised path written for a URL: each segment encoded so the server decodes it back to itself."""
    return "/".join(quote(segment, safe=_SAFE_IN_SEGMENT) for segment in path.split("/"))


def url_path(url: str) -> str:
    """The normalised path of a whole URL. Control characters are looked for in the whole text first, since
    urlsplit silently removes tabs and newlines (`.\\t.` would otherwise become `..` unseen)."""
    if (ch := _control_character(url)) is not None:
        raise UnsafeUrlPath(url, f"holds the control character U+{ord(ch):04X}")
    return normalise_path(urlsplit(url).path)


def join_under(base_url: str, path: str) -> str:
    """`BASE/PATH`, with PATH normalised; refused (UnsafeUrlPath) unless the result, read back as a server
    would read it, is still under BASE."""
    base = urlsplit(base_url)
    base_path = normalise_path(base.path) if base.path.strip("/") else ""
    landing = base_url.rstrip("/") + "/" + quote_path(normalise_path(path))
    # Read back: what the server will resolve must start with BASE's own segments.
    resolved = url_path(landing)
    if base_path and not resolved.startswith(base_path + "/"):
        raise UnsafeUrlPath(path, f"would land outside {base_url}")
    return landing


def source_path_problem(url: str) -> str | None:
    """Why collect refuses a source URL's path, or None: an encoded separator (`encoded_separator`), or what
    `url_path` refuses (a control character, raw or encoded; a climb above the root)."""
    path = urlsplit(url).path
    if (encoded := encoded_separator(path)) is not None:
        return f"its path holds {encoded!r}, an encoded dot, slash, backslash or percent sign"
    try:
        url_path(url)
    except UnsafeUrlPath as exc:
        return f"its path {exc.reason}"
    return None


def encoded_separator(path: str) -> str | None:
    """The first percent-escape of '.', '/', '\\' or '%' (or a raw backslash) in a source URL path, if any.

    Collect refuses these in source URLs: an upstream that decodes them may serve another repository than
    the text says, and no honest Git host needs them.
    """
    if "\\" in path:
        return "\\"
    match = _ENCODED_SEPARATOR.search(path)
    return match.group(0) if match else None
