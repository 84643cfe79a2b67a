"""Pull quotas: what a registry says is left of its rate limit (`ratelimit-remaining`), read from every answer,
and the stop before the quota is spent. See docs/collector.md ("Pull quotas").
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass

from mirror.errors import RateLimitedError

# Docker Hub: `ratelimit-remaining: 76;w=21600` (76 pulls left in a window of 21,600 s); the IETF draft's
# RateLimit-Remaining is the bare number. ASCII digits only, bounded, like every number read from a header.
_QUOTA = re.compile(r"\s*([0-9]{1,18})\s*(?:;\s*w\s*=\s*([0-9]{1,12}))?\s*(?:;.*)?")


@dataclass(frozen=True)
class Quota:
    remaining: int
    limit: int | None = None
    window_s: int | None = None

    def to_json(self) -> dict[str, object]:
        return {"remaining": self.remaining, "limit": self.limit, "windowS": self.window_s}


def _number(value: str | None) -> tuple[int, int | None] | None:
    match = _QUOTA.fullmatch(value or "")
    if match is None:
        return None
    return int(match.group(1)), int(match.group(2)) if match.group(2) else None


def read_quota(headers: Mapping[str, str]) -> Quota | None:
    """The quota an answer states, or None when it states none (or states it unreadably)."""
    remaining = _number(headers.get("ratelimit-remaining"))
    if remaining is None:
        return None
    limit = _number(headers.get("ratelimit-limit"))
    window = remaining[1] if remaining[1] is not None else (limit[1] if limit else None)
    return Quota(remaining[0], limit[0] if limit else None, window)


class QuotaWatch:
    """One registry host's quota as its answers state it, and its manifest requests counted; thread-safe.

    Once an answer says fewer than `minimum` pulls are left, the watch stays tripped for the run: every later
    manifest GET to the host is refused before it is sent (a request already sent finishes).
    """

    def __init__(self, host: str, minimum: int, *, endpoint: str | None = None) -> None:
        self.host = host
        self.endpoint = endpoint  # `registries.HOST.endpoint` when set: the address asked, whose headers these are
        self.minimum = minimum
        self.last: Quota | None = None
        self.tripped: Quota | None = None
        self.manifest_gets = 0
        self.manifest_heads = 0
        self._stated_none = False  # a manifest GET's answer stated no quota
        self._lock = threading.Lock()

    @property
    def counts_pulls(self) -> bool:
        """Whether the host may count manifest GETs: yes until one of its manifest GETs was answered without a
        quota, and once any answer stated one."""
        return self.last is not None or not self._stated_none

    def get_answered(self, headers: Mapping[str, str]) -> None:
        """A manifest GET was answered 200 (observe has read its quota, if it stated one). Only a GET's answer
        says whether GETs are counted: a registry may state its quota on the requests it counts alone, and a HEAD
        it never counts says nothing about them."""
        if read_quota(headers) is None:
            self._stated_none = True

    def observe(self, headers: Mapping[str, str]) -> None:
        quota = read_quota(headers)
        if quota is None:
            return
        with self._lock:
            self.last = quota
            if quota.remaining < self.minimum and self.tripped is None:
                self.tripped = quota

    def before_pull(self, what: str) -> None:
        """Count a manifest GET about to be sent, or refuse it (RateLimitedError) once the quota is nearly spent."""
        with self._lock:
            tripped = self.tripped
            if tripped is None:
                self.manifest_gets += 1
                return
        window = f" in a window of {tripped.window_s} s" if tripped.window_s is not None else ""
        of = f" of {tripped.limit}" if tripped.limit is not None else ""
        asked = self.host if self.endpoint is None else f"{self.endpoint} (registries.{self.host}.endpoint)"
        ways = (
            f"log in for a larger quota, collect through a pull-through cache (registries.{self.host}.endpoint), "
            if self.endpoint is None
            else "log in to the endpoint for a larger quota (the quota is the endpoint's, or its upstream's it "
            "passes on), "
        )
        raise RateLimitedError(
            f"{asked}: {tripped.remaining} pull(s) left{of}{window} (ratelimit-remaining), fewer than the "
            f"{self.minimum} kept in reserve (min_ratelimit_remaining); stopped before {what}: no further manifest "
            "is fetched from this host (GET), requests already sent finished",
            rate_limit={
                "host": self.host,
                **({"endpoint": self.endpoint} if self.endpoint is not None else {}),
                **tripped.to_json(),
                "minimum": self.minimum,
            },
            hint=(
                "run again once the window has moved on"
                + (f" (up to {tripped.window_s} s)" if tripped.window_s is not None else "")
                + f", {ways}or lower --min-pull-quota"
            ),
        )

    def counted_head(self) -> None:
        with self._lock:
            self.manifest_heads += 1

    def to_json(self) -> dict[str, object]:
        with self._lock:
            return {
                "host": self.host,
                "manifestGets": self.manifest_gets,
                "manifestHeads": self.manifest_heads,
                "quota": self.last.to_json() if self.last is not None else None,
            }
