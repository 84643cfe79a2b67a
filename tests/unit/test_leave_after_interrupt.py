"""After a signal, the CLI waits a moment for worker threads and leaves without joining those that hang."""

from __future__ import annotations

import threading

import pytest

from mirror import cli


def test_a_worker_thread_still_starting_when_the_signal_lands_does_not_crash_the_exit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A thread pool spawning a worker at the moment of SIGTERM: the thread is listed but cannot be joined yet.
    starting = threading.Thread(target=lambda: None)
    monkeypatch.setattr(cli.threading, "enumerate", lambda: [threading.main_thread(), starting])
    cli._leave_after_interrupt(130)  # returns: nothing left alive to wait for
