"""mirror.netguard: a request keeps to its pace even when the server never answers, and cancel() stops every
transfer and git process of the process at once (the SIGTERM and Ctrl-C path)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from mirror import netguard
from mirror.errors import SlowTransferError
from mirror.git.runner import run_git
from mirror.netguard import Cancelled, Pace, guarded_transport, paced
from tests.support.hostile import Answer, HostileServer, wait_until


@pytest.fixture
def silent() -> Iterator[HostileServer]:
    """A server that accepts a request, then says nothing for a minute."""
    with HostileServer(lambda _: Answer(200, {}, b"late", delay_s=60)) as server:
        yield server


@pytest.fixture(autouse=True)
def fresh_run() -> Iterator[None]:
    netguard.reset()
    yield
    netguard.reset()


def _in_thread(call: Callable[[], Any]) -> tuple[threading.Thread, dict[str, BaseException]]:
    outcome: dict[str, BaseException] = {}

    def run() -> None:
        try:
            call()
        except BaseException as exc:  # the test inspects it
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def _get(url: str) -> None:
    with httpx.Client(transport=guarded_transport(), timeout=120, trust_env=False) as client:
        client.get(url)


def test_a_deadline_cuts_a_server_that_never_sends_its_status_line(silent: HostileServer) -> None:
    started = time.monotonic()
    pace = Pace("index of example", min_bytes_per_s=1, window_s=60, deadline_s=1)
    with pytest.raises(SlowTransferError, match=r"index of example: not complete after 1 s") as raised, paced(pace):
        _get(silent.url)
    assert not raised.value.retryable
    assert time.monotonic() - started < 10


def test_a_speed_floor_cuts_a_server_that_never_sends_its_status_line(silent: HostileServer) -> None:
    started = time.monotonic()
    pace = Pace("blob of example", min_bytes_per_s=1024, window_s=1)  # the request itself is a few hundred bytes
    with (
        pytest.raises(SlowTransferError, match=r"blob of example: \d+ bytes in 1 s, slower than 1024") as raised,
        paced(pace),
    ):
        _get(silent.url)
    assert raised.value.retryable
    assert time.monotonic() - started < 10


@pytest.fixture
def dripping_tls() -> Iterator[str]:
    """A TCP server that reads the ClientHello, then answers with a TLS record one byte every 0.2 s."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        with contextlib.suppress(OSError):
            connection, _ = listener.accept()
            with connection:
                connection.recv(65536)
                for byte in b"\x16\x03\x03\x3f\xff" + b"\x00" * 16000:
                    if stop.wait(0.2):
                        return
                    connection.sendall(bytes([byte]))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{listener.getsockname()[1]}/"
    stop.set()
    listener.close()


def test_a_dripping_tls_handshake_is_bounded_by_the_connect_timeout(dripping_tls: str) -> None:
    # CPython applies the socket timeout to the whole handshake, not to each of its reads.
    started = time.monotonic()
    with (
        pytest.raises(httpx.ConnectTimeout),
        httpx.Client(transport=guarded_transport(), timeout=httpx.Timeout(60, connect=2), trust_env=False) as client,
    ):
        client.get(dripping_tls)
    assert time.monotonic() - started < 15


def test_cancel_wakes_a_request_blocked_on_a_silent_server(silent: HostileServer) -> None:
    thread, outcome = _in_thread(lambda: _get(silent.url))
    assert wait_until(lambda: len(silent.requests) == 1)
    netguard.cancel()
    thread.join(5)
    assert not thread.is_alive(), "the request still runs 5 s after cancel()"
    assert isinstance(outcome.get("error"), Cancelled)


def test_no_request_starts_after_cancel(silent: HostileServer) -> None:
    netguard.cancel()
    with pytest.raises(Cancelled):
        _get(silent.url)
    assert silent.requests == []


def test_cancel_kills_a_running_git(silent: HostileServer) -> None:
    thread, outcome = _in_thread(lambda: run_git(["ls-remote", f"{silent.url}/repo.git"]))
    assert wait_until(lambda: len(silent.requests) == 1, timeout_s=10)
    netguard.cancel()
    thread.join(5)
    assert not thread.is_alive(), "git still runs 5 s after cancel()"
    assert isinstance(outcome.get("error"), Cancelled)


def test_a_retry_pause_ends_at_cancel() -> None:
    thread, outcome = _in_thread(lambda: netguard.sleep(60))
    netguard.cancel()
    thread.join(5)
    assert not thread.is_alive()
    assert isinstance(outcome.get("error"), Cancelled)
