"""Moments as mirror writes them in bundles, statements and state files: UTC, to the second, like
2026-01-31T12:00:00Z."""

from __future__ import annotations

import datetime as dt
import re

from mirror.errors import BundleFormatError

_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")


def format_time(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: object, where: str) -> dt.datetime:
    if not isinstance(value, str) or not _TIME.fullmatch(value):
        raise BundleFormatError(f"{where}: expected a UTC time like 2026-01-31T12:00:00Z")
    try:
        return dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    except ValueError as exc:
        raise BundleFormatError(f"{where}: not a valid time") from exc
