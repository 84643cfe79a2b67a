"""The one retry policy: which answers and transport failures are retried, and how (backoff with jitter,
Retry-After honoured up to a ceiling, and a longer one not waited for at all); every client that retries a
request uses it."""

from __future__ import annotations

import datetime as dt
import email.utils
import math
import random
import re
import ssl
import time
from collections.abc import Callable
from typing import TypeVar

import httpx

from mirror.errors import MirrorError, RateLimitedError, SlowTransferError, TransferError, UnreachableError
from mirror.limits import Limits

T = TypeVar("T")

# Answers worth another attempt: rate limiting and the gateway/server errors of a registry or CDN in trouble.
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class Retryable(Exception):
    """Raised inside an attempt for a failure worth retrying; carries the error to raise when attempts run out."""

    def __init__(self, final: MirrorError, retry_after: float | None = None) -> None:
        super().__init__(str(final))
        self.final = final
        self.retry_after = retry_after


def transport_failure(exc: BaseException, where: str, *, hint: str | None = None) -> MirrorError:
    """The mirror error for a transport failure talking to `where` (a host, or what was asked of it).

    The one mapping of httpx, TLS and socket failures: a connection that could not be made (or timed out) is
    UnreachableError, too many redirects and any other broken transfer are TransferError; a slow transfer
    (mirror.netguard) stays what it is.
    """
    if isinstance(exc, MirrorError):
        return exc
    if isinstance(exc, httpx.ConnectError):
        return UnreachableError(f"cannot reach {where}: {exc}", hint=hint)
    if isinstance(exc, httpx.TimeoutException):
        return UnreachableError(f"{where} timed out: {exc!r}", hint=hint)
    if isinstance(exc, httpx.TooManyRedirects):
        return TransferError(f"{where}: too many redirects", hint=hint)
    if isinstance(exc, (httpx.HTTPError, httpx.StreamError, ssl.SSLError, OSError)):
        return TransferError(f"transfer from {where} failed: {exc!r}", hint=hint)
    raise TypeError(f"not a transport failure: {exc!r}")  # a bug in the caller, not bad input


def retryable_failure(exc: BaseException, where: str, *, hint: str | None = None) -> Retryable | MirrorError:
    """What an attempt raises for a transport failure under the policy: retried unless retrying cannot help."""
    error = transport_failure(exc, where, hint=hint)
    if isinstance(exc, httpx.TooManyRedirects):
        return error
    if isinstance(error, SlowTransferError):
        return retry_slow(error)
    return Retryable(error)


def retry_slow(error: SlowTransferError) -> Retryable | SlowTransferError:
    """A speed floor is retried like a broken transfer (a blob resumes), a missed deadline is not."""
    return Retryable(error) if error.retryable else error


def retry_answer(response: httpx.Response, error: MirrorError) -> Retryable | None:
    """A Retryable for an answer the policy retries (with its Retry-After), None for any other."""
    if response.status_code not in RETRY_STATUSES:
        return None
    return Retryable(error, parse_retry_after(response.headers.get("retry-after")))


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


def wait_too_long(failure: Retryable, retry_after: float, limits: Limits) -> RateLimitedError:
    """A Retry-After beyond the ceiling is not waited for, nor cut short: an attempt before the time the registry
    named is refused again (and on a registry with a pull quota may count), so the run stops (exit 4) saying when
    to run it again."""
    when = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(seconds=math.ceil(retry_after))
    at = when.isoformat().replace("+00:00", "Z")
    return RateLimitedError(
        f"{failure.final.message}; it asks to wait {retry_after:.0f} s (Retry-After), more than the "
        f"{limits.retry_after_max_s:.0f} s waited at most (retry_after_max_s): not retried",
        rate_limit={"retryAfterS": math.ceil(retry_after), "retryAt": at},
        hint=f"run the same command again after {at}",
    )


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
            if exc.retry_after is not None and exc.retry_after > limits.retry_after_max_s:
                raise wait_too_long(exc, exc.retry_after, limits) from exc
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
