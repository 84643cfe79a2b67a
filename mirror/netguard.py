"""Every network transfer of a run finishes in bounded time, and all of them stop at once when the run is told to.

See docs/collector.md ("Bounded time").
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import signal
import socket
import subprocess
import threading
import time
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from mirror.errors import SlowTransferError
from mirror.limits import Limits
from mirror.registry.retry import retry_slow as retry_slow  # the policy lives with the other retry rules

if TYPE_CHECKING:
    import httpx

# How long one blocking socket operation may wait before the pace and the cancellation are looked at again.
_SLICE_S = 0.5
# Written at a time: each piece first polls for room (~11 us; a 2 GB upload in 64 KiB pieces paid 0.5 s of CPU).
_WRITE_PIECE = 256 * 1024


class Cancelled(KeyboardInterrupt):
    """The run was told to stop (SIGTERM, Ctrl-C): raised in every thread at its next network operation."""


_cancelled = threading.Event()
_lock = threading.RLock()  # re-entrant: cancel() runs in a signal handler, maybe inside a holder of it
_sockets: weakref.WeakSet[Guarded] = weakref.WeakSet()
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


# -- sockets ---------------------------------------------------------------------------------------------------


class Guarded(Protocol):
    """What cancel() needs of an open connection (mirror.httptransport's)."""

    def shut_down(self) -> None: ...


def watch(connection: Guarded) -> None:
    """Let cancel() shut `connection` down; at once if the run is already stopping."""
    with _lock:
        _sockets.add(connection)
    if _cancelled.is_set():
        connection.shut_down()


def unwatch(connection: Guarded) -> None:
    with _lock:
        _sockets.discard(connection)


class Channel(Protocol):
    """A socket, a TLS socket, or TLS inside a proxy's TLS session: what receive() and send() use of it."""

    def settimeout(self, value: float | None, /) -> None: ...

    def gettimeout(self) -> float | None: ...

    def recv_into(self, buffer: Any, /) -> int: ...

    def sendall(self, data: Any, /) -> Any: ...

    def fileno(self) -> int: ...


def receive(channel: Channel, buffer: Any, timeout: float | None) -> int:
    """channel.recv_into(buffer), kept to the thread's pace and to cancel(): each wait lasts at most a slice, then
    the pace and the cancellation are looked at. TimeoutError once `timeout` passes with nothing received."""
    until = None if timeout is None else time.monotonic() + timeout
    meter = _meter()
    while True:
        check_cancelled()
        wait = _SLICE_S if meter is None else meter.wait_s()
        if until is not None:
            left = until - time.monotonic()
            if left <= 0:  # a zero timeout would make the socket non-blocking, not wait
                raise TimeoutError("timed out")
            wait = min(wait, left)
        _bound_wait(channel, wait)
        try:
            count = channel.recv_into(buffer)
        except TimeoutError:
            check_cancelled()
            if meter is not None:
                meter.check()
            continue
        except OSError:
            check_cancelled()  # a socket that cancel() shut down
            raise
        check_cancelled()
        if meter is not None:
            meter.moved(count)
        return count


def send(channel: Channel, data: bytes | memoryview, timeout: float | None) -> None:
    """channel.sendall(data) in pieces, so that the pace and cancel() are looked at while a large body goes out:
    before each piece, the wait for room in the socket's buffer (a peer that stopped reading) lasts at most a
    slice at a time. TimeoutError once `timeout` passes without room for a piece."""
    view = memoryview(data)
    for start in range(0, len(view), _WRITE_PIECE):
        check_cancelled()
        piece = view[start : start + _WRITE_PIECE]
        _writable(channel, timeout)
        if channel.gettimeout() != timeout:
            channel.settimeout(timeout)
        try:
            channel.sendall(piece)
        except OSError:
            check_cancelled()
            raise
        meter = _meter()
        if meter is not None:
            meter.moved(len(piece))


def _bound_wait(channel: Channel, wait: float) -> None:
    """Let the channel's next blocking operation wait at most `wait`, leaving the timeout in place when it already
    does and is not much shorter (a read would then wake up for nothing): each settimeout() of a socket is a system
    call (ioctl FIONBIO), one per read otherwise, and each hands the GIL to the other workers."""
    current = channel.gettimeout()
    if current is None or not wait / 2 <= current <= wait:
        channel.settimeout(wait)


def connect(sock: socket.socket, address: Any, timeout: float | None) -> None:
    """sock.connect(address), kept to the thread's pace and to cancel() as receive() is (a handshake to a host that
    never answers waits out the whole connect timeout otherwise). TimeoutError once `timeout` passes."""
    check_cancelled()
    sock.setblocking(False)
    code = sock.connect_ex(address)
    if code not in (0, errno.EINPROGRESS):
        raise OSError(code, os.strerror(code))
    if code:
        _wait_for(sock, select.POLLOUT, timeout)
        code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code:
            raise OSError(code, os.strerror(code))
    sock.settimeout(timeout)


def _writable(channel: Channel, timeout: float | None) -> None:
    _wait_for(channel, select.POLLOUT, timeout)


def _wait_for(channel: Any, event: int, timeout: float | None) -> None:
    """Until `channel` is ready for `event` (or in error), a slice at a time: the pace and cancel() looked at
    between them. TimeoutError once `timeout` passes."""
    until = None if timeout is None else time.monotonic() + timeout
    meter = _meter()
    poller = select.poll()
    poller.register(channel.fileno(), event)
    while True:
        check_cancelled()
        wait = _SLICE_S if meter is None else meter.wait_s()
        if until is not None:
            left = until - time.monotonic()
            if left <= 0:
                raise TimeoutError("timed out")
            wait = min(wait, left)
        if poller.poll(wait * 1000):  # ready, or an error that the next operation reports
            return
        check_cancelled()
        if meter is not None:
            meter.check()


def guarded_transport(**options: Any) -> httpx.BaseTransport:
    """An httpx transport (options as httpx.HTTPTransport's: verify, proxy, limits, trust_env) whose sockets keep
    to the pace and cancel() (mirror.httptransport)."""
    from mirror.httptransport import GuardedTransport  # it builds on this module

    return GuardedTransport(**options)
