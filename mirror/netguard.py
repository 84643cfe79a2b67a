"""Every network transfer of a run finishes in bounded time, and all of them stop at once when the run is told to.

See docs/collector.md ("Bounded time").
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx

from mirror.errors import SlowTransferError
from mirror.limits import Limits
from mirror.registry.retry import retry_slow as retry_slow  # the policy lives with the other retry rules

# How long one blocking socket operation may wait before the pace and the cancellation are looked at again.
_SLICE_S = 0.5
_WRITE_PIECE = 64 * 1024


class Cancelled(KeyboardInterrupt):
    """The run was told to stop (SIGTERM, Ctrl-C): raised in every thread at its next network operation."""


_cancelled = threading.Event()
_lock = threading.RLock()  # re-entrant: cancel() runs in a signal handler, maybe inside a holder of it
_sockets: weakref.WeakSet[_GuardedStream] = weakref.WeakSet()
_processes: set[subprocess.Popen[bytes]] = set()


def cancel() -> None:
    """Stop every transfer of the process now: sockets shut down, git process groups killed, no new ones."""
    _cancelled.set()
    with _lock:
        streams, processes = list(_sockets), list(_processes)
    for stream in streams:
        stream.shut_down()
    for process in processes:
        kill_group(process)


def cancelled() -> bool:
    return _cancelled.is_set()


def reset() -> None:
    """Forget an earlier cancel(): for a new run in the same process (tests)."""
    _cancelled.clear()


def check_cancelled() -> None:
    if _cancelled.is_set():
        raise Cancelled()


def sleep(seconds: float) -> None:
    """time.sleep that a cancel() ends at once (retry pauses may last up to a minute)."""
    if _cancelled.wait(seconds):
        raise Cancelled()


def kill_group(process: subprocess.Popen[bytes]) -> None:
    """Kill a process started with start_new_session=True, and everything it started (its process group)."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(OSError):
            process.kill()


@contextlib.contextmanager
def registered(process: subprocess.Popen[bytes]) -> Iterator[None]:
    """Keep `process` where cancel() finds it while it runs; killed at once if the run is already stopping."""
    with _lock:
        _processes.add(process)
    try:
        if _cancelled.is_set():
            kill_group(process)
        yield
    finally:
        with _lock:
            _processes.discard(process)


# -- pace ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pace:
    """How fast a transfer must go. `what` names the artifact and the host, for the error message."""

    what: str
    min_bytes_per_s: float
    window_s: float
    deadline_s: float | None = None

    @classmethod
    def document(cls, what: str, limits: Limits) -> Pace:
        """A small document: whole within the deadline, and above the speed floor meanwhile."""
        return cls(what, limits.min_bytes_per_s, limits.speed_window_s, limits.document_deadline_s)

    @classmethod
    def stream(cls, what: str, limits: Limits) -> Pace:
        """A streamed body (a blob, a chart, an upload): only the speed floor; its size bounds its time."""
        return cls(what, limits.min_bytes_per_s, limits.speed_window_s)


class _Meter:
    """The pace of one request on one thread: bytes moved per window, time since the start."""

    def __init__(self, pace: Pace, outer: _Meter | None) -> None:
        self.pace = pace
        self.outer = outer  # a request inside another one (a token fetched for a manifest): its bytes count too
        self.started = self.window_started = time.monotonic()
        self.window_bytes = 0

    def moved(self, count: int) -> None:
        meter: _Meter | None = self
        while meter is not None:
            meter.window_bytes += count
            meter = meter.outer
        self.check()

    def check(self) -> None:
        now = time.monotonic()
        pace = self.pace
        if pace.deadline_s is not None and now - self.started > pace.deadline_s:
            raise SlowTransferError(
                f"{pace.what}: not complete after {pace.deadline_s:g} s; stopped",
                retryable=False,
                hint="the upstream answers too slowly; try again later, or raise Limits.document_deadline_s",
            )
        if now - self.window_started >= pace.window_s:
            if self.window_bytes < pace.min_bytes_per_s * pace.window_s:
                raise SlowTransferError(
                    f"{pace.what}: {self.window_bytes} bytes in {now - self.window_started:.0f} s, slower than "
                    f"{pace.min_bytes_per_s:g} bytes/s; stopped",
                    retryable=True,
                    hint="the upstream stalls or drips; a re-run resumes (Limits.min_bytes_per_s and "
                    "speed_window_s set the floor)",
                )
            self.window_started, self.window_bytes = now, 0

    def wait_s(self) -> float:
        """How long a blocking operation may wait before the pace must be looked at again."""
        now = time.monotonic()
        until = self.window_started + self.pace.window_s - now
        if self.pace.deadline_s is not None:
            until = min(until, self.started + self.pace.deadline_s - now)
        return max(0.01, min(_SLICE_S, until))


_local = threading.local()


def _meter() -> _Meter | None:
    return getattr(_local, "meter", None)


@contextlib.contextmanager
def paced(pace: Pace) -> Iterator[None]:
    """Hold every socket operation of this thread, inside the block, to `pace` (nested: the inner one)."""
    check_cancelled()
    outer = _meter()
    _local.meter = _Meter(pace, outer)
    try:
        yield
    finally:
        _local.meter = outer


# -- the network backend ---------------------------------------------------------------------------------------


class _GuardedStream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner
        with _lock:
            _sockets.add(self)
        if _cancelled.is_set():
            self.shut_down()

    def shut_down(self) -> None:
        sock = self._inner.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        until = None if timeout is None else time.monotonic() + timeout
        while True:
            check_cancelled()
            meter = _meter()
            wait = _SLICE_S if meter is None else meter.wait_s()
            if until is not None:
                left = until - time.monotonic()
                if left <= 0:  # a zero timeout would make the socket non-blocking, not wait
                    raise httpcore.ReadTimeout("timed out")
                wait = min(wait, left)
            try:
                data = self._inner.read(max_bytes, wait)
            except httpcore.ReadTimeout:
                check_cancelled()
                if meter is not None:
                    meter.check()
                continue
            except httpcore.NetworkError:
                check_cancelled()  # a socket that cancel() shut down
                raise
            check_cancelled()
            if meter is not None:
                meter.moved(len(data))
            return data

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        # In pieces, so that the pace is looked at while a large body goes out.
        view = memoryview(buffer)
        for start in range(0, len(view), _WRITE_PIECE):
            check_cancelled()
            piece = buffer if len(view) <= _WRITE_PIECE else bytes(view[start : start + _WRITE_PIECE])
            try:
                self._inner.write(piece, timeout)
            except httpcore.NetworkError:
                check_cancelled()
                raise
            meter = _meter()
            if meter is not None:
                meter.moved(len(piece))

    def close(self) -> None:
        with _lock:
            _sockets.discard(self)
        self._inner.close()

    def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        check_cancelled()
        # CPython bounds the whole handshake by `timeout` (the connect timeout), not each read of it: a server
        # that drips its certificate is cut there.
        tls = self._inner.start_tls(ssl_context, server_hostname, timeout)
        with _lock:
            _sockets.discard(self)
        return _GuardedStream(tls)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _GuardedBackend(httpcore.NetworkBackend):
    def __init__(self, inner: httpcore.NetworkBackend) -> None:
        self._inner = inner

    def connect_tcp(self, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
        check_cancelled()
        return _GuardedStream(self._inner.connect_tcp(*args, **kwargs))

    def connect_unix_socket(self, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
        check_cancelled()
        return _GuardedStream(self._inner.connect_unix_socket(*args, **kwargs))

    def sleep(self, seconds: float) -> None:
        sleep(seconds)


def guarded_transport(**options: Any) -> httpx.HTTPTransport:
    """An httpx transport (same options as httpx.HTTPTransport) whose sockets keep to the pace and cancel()."""
    transport = httpx.HTTPTransport(**options)
    pool = transport._pool
    if not isinstance(pool, httpcore.ConnectionPool) or not hasattr(pool, "_network_backend"):
        raise RuntimeError("this httpx/httpcore version does not let mirror guard its sockets")
    pool._network_backend = _GuardedBackend(pool._network_backend)
    return transport
