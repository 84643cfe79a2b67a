"""Log lines for people (text) or for log collectors (JSON Lines); both go to stderr, never stdout.

Text lines show untrusted text escaped (mirror.terminal), so a name cannot repaint the screen or start a line
of its own. A JSON line is one object: `ts` (UTC, RFC 3339 with milliseconds), `level` (`info`, `warning`, `error`),
`event` (a stable name scripts can match on), `message` (the text line's words) and the event's own fields.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping

from mirror.terminal import escape, escape_json

LOG_FORMATS = ("text", "json")
_TEXT_PREFIX = {"info": "", "warning": "warning: ", "error": "error: "}
_RESERVED = ("ts", "level", "event", "message")


def check_log_format(value: str) -> str:
    if value not in LOG_FORMATS:
        raise ValueError(f"--log-format {value!r}: expected one of {', '.join(LOG_FORMATS)}")
    return value


def text_line(level: str, message: str) -> str:
    return escape(_TEXT_PREFIX.get(level, f"{level}: ") + message)


def json_line(
    level: str, event: str, message: str, fields: Mapping[str, object] | None = None, *, now: dt.datetime | None = None
) -> str:
    """One JSON object on one line. Fields never overwrite the four fixed keys."""
    when = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    record: dict[str, object] = {
        "ts": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "level": level,
        "event": event,
        "message": message,
    }
    for name, value in (fields or {}).items():
        if name not in _RESERVED:
            record[name] = value
    return escape_json(json.dumps(record, ensure_ascii=False, default=str))


def format_line(
    log_format: str, level: str, event: str, message: str, fields: Mapping[str, object] | None = None
) -> str:
    if log_format == "json":
        return json_line(level, event, message, fields)
    return text_line(level, message)
