"""Retries with exponential backoff and jitter, honouring Retry-After within a cap."""

from __future__ import annotations

import email.utils
import random
import re
import time
from collections.abc import Callable
from typing import TypeVar

from mirror.errors import MirrorError
from mirror.limits import Limits

T = TypeVar("T")


class Retryable(Exception):
    """Raised inside an attempt for a failure worth retrying; carries the error to raise when attempts run out."""

    def __init__(self, final: MirrorError, retry_after: float | None = None) -> None:
        super().__init__(str(final))
        self.final = final
        self.retry_after = retry_after


def parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if re.fullmatch(r"[0-9]{1,9}", value):  # ASCII only: str.isdigit() would also take "²"
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def with_retries(
    attempt: Callable[[], T],
    limits: Limits,
    *,
    sleep: Callable[[float], None] = time.sleep,
    on_retry: Callable[[Retryable, float], None] | None = None,
) -> T:
    for number in range(1, limits.max_attempts + 1):
        try:
            return attempt()
        except Retryable as exc:
            if number == limits.max_attempts:
                raise exc.final from exc
            backoff = min(limits.backoff_max_s, limits.backoff_initial_s * 2 ** (number - 1))
            delay = backoff * random.uniform(0.5, 1.0)
            if exc.retry_after is not None:
                delay = min(limits.retry_after_max_s, max(delay, exc.retry_after))
            if on_retry:
                on_retry(exc, delay)
            sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover - the loop always returns or raises
