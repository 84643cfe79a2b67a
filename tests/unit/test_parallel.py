"""run_parallel: at most jobs items in flight, results in the items' order, and nothing queued runs after a failure
or an interrupt."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator

import pytest

from mirror.parallel import run_parallel


class Recorder:
    """A work function that records how many items were handed to the pool and not yet finished."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.lock = threading.Lock()
        self.pulled = 0  # items taken from the iterable
        self.finished = 0
        self.most_outstanding = 0  # items pulled but not finished, at worst
        self.started: list[int] = []

    def items(self, count: int) -> Iterator[int]:
        for i in range(count):
            with self.lock:
                self.pulled += 1
                self.most_outstanding = max(self.most_outstanding, self.pulled - self.finished)
            yield i

    def work(self, item: int) -> int:
        with self.lock:
            self.started.append(item)
        if self.delay:
            time.sleep(self.delay)
        with self.lock:
            self.finished += 1
        return item * 2


def test_results_keep_the_items_order():
    recorder = Recorder()
    assert run_parallel(recorder.items(500), recorder.work, 4) == [i * 2 for i in range(500)]


def test_at_most_jobs_items_are_taken_and_not_finished():
    """Each worker takes its next item when it is free: nothing waits in a queue."""
    recorder = Recorder(delay=0.001)
    run_parallel(recorder.items(2_000), recorder.work, 4)
    assert recorder.finished == 2_000
    assert recorder.most_outstanding <= 4


def test_no_more_threads_than_items():
    names: set[str] = set()
    lock = threading.Lock()

    def work(item: int) -> int:
        with lock:
            names.add(threading.current_thread().name)
        time.sleep(0.05)
        return item

    assert run_parallel([1, 2], work, 8) == [1, 2]
    assert len(names) <= 2


def test_a_failing_iterable_fails_the_run():
    def items() -> Iterator[int]:
        yield 1
        raise OSError("listing failed")

    with pytest.raises(OSError, match="listing failed"):
        run_parallel(items(), lambda x: x, 4)


def test_items_are_pulled_lazily_from_a_generator():
    recorder = Recorder(delay=0.05)
    thread = threading.Thread(target=run_parallel, args=(recorder.items(10_000), recorder.work, 2))
    thread.start()
    time.sleep(0.3)
    pulled = recorder.pulled
    with recorder.lock:
        recorder.delay = 0  # let the rest finish quickly
    thread.join()
    assert pulled < 100


def test_the_first_failure_stops_everything_not_yet_started():
    started: list[int] = []

    def work(item: int) -> int:
        started.append(item)
        if item == 3:
            raise ValueError("item 3 failed")
        time.sleep(0.01)
        return item

    with pytest.raises(ValueError, match="item 3 failed"):
        run_parallel(range(10_000), work, 4)
    assert len(started) < 50


def test_an_interrupt_cancels_the_queue_at_once_without_waiting_for_it():
    """SIGTERM becomes KeyboardInterrupt in the main thread: queued items must not run afterwards."""
    started: list[int] = []
    release = threading.Event()
    threading.Timer(4, release.set).start()  # the running items end by themselves after 4 s

    def work(item: int) -> int:
        started.append(item)
        release.wait()
        return item

    main = threading.main_thread().ident
    assert main is not None
    threading.Timer(0.2, signal.pthread_kill, (main, signal.SIGINT)).start()
    began = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        run_parallel(range(10_000), work, 4)
    assert time.monotonic() - began < 2  # neither the running items nor the queue were waited for
    running_then = len(started)
    release.set()
    time.sleep(0.3)
    assert running_then <= 4
    assert len(started) == running_then  # nothing queued started after the interrupt


def test_one_job_runs_in_the_callers_thread_in_order():
    seen: list[str] = []
    assert run_parallel(["a", "b"], lambda x: seen.append(threading.current_thread().name) or x, 1) == ["a", "b"]
    assert set(seen) == {threading.current_thread().name}


def test_an_interrupt_while_the_workers_start_stops_the_ones_already_started(monkeypatch):
    """SIGINT may land between two Thread.start calls: the workers already running take nothing more."""
    started: list[int] = []
    real_start = threading.Thread.start
    starts = 0

    def start_then_interrupted(thread: threading.Thread) -> None:
        nonlocal starts
        starts += 1
        if starts == 2:
            raise KeyboardInterrupt
        real_start(thread)

    def work(item: int) -> int:
        started.append(item)
        time.sleep(0.01)
        return item

    monkeypatch.setattr(threading.Thread, "start", start_then_interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_parallel(range(200), work, 4)
    time.sleep(0.3)
    assert len(started) <= 2  # the item the first worker held when the interrupt landed, at most


def test_an_interrupt_is_not_held_up_by_an_iterable_slow_to_give_its_next_item():
    """A worker waiting on the iterable's next item holds the run's lock: the interrupt must not wait for it."""
    release = threading.Event()
    threading.Timer(4, release.set).start()

    def items() -> Iterator[int]:
        yield 0
        release.wait()  # a slow listing, a slow disk
        yield 1

    main = threading.main_thread().ident
    assert main is not None
    threading.Timer(0.3, signal.pthread_kill, (main, signal.SIGINT)).start()
    started: list[int] = []
    began = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        run_parallel(items(), started.append, 2)
    waited = time.monotonic() - began
    release.set()
    time.sleep(0.3)
    assert waited < 2
    assert started == [0]  # the item the iterable gave after the interrupt is not started
