"""Bounded concurrency for network and hashing work: worker threads fed lazily, whose first failure stops the rest."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sized
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def run_parallel(items: Iterable[T], work: Callable[[T], R], jobs: int) -> list[R]:
    """Apply `work` to every item with at most `jobs` threads; results keep the items' order.

    Each worker takes the next item from `items` when it is free, so at most `jobs` items are taken and not yet
    finished: 200,000 files cost 200,000 results, not 200,000 queued tasks. On the first failure, nothing more is
    taken, the (at most `jobs`) running items are waited for, and the failure is raised. On KeyboardInterrupt
    (SIGINT, and SIGTERM as cli.main turns it into one), nothing more is taken and nothing is waited for.

    The workers take items themselves rather than being handed them one by one (a ThreadPoolExecutor and
    wait(FIRST_COMPLETED)): the caller's thread is not woken for every item, which cost a GIL hand-over and a
    condition variable per item, a tenth of a collect's CPU. hashlib and socket IO release the GIL, so threads
    give real parallelism for this tool's work.
    """
    if jobs <= 1:
        return [work(item) for item in items]
    workers = min(jobs, len(items)) if isinstance(items, Sized) else jobs
    if workers == 0:
        return []
    source = iter(items)
    lock = threading.Lock()
    results: list[R] = []
    failures: list[BaseException] = []
    stopped = False

    def take() -> tuple[int, T] | None:
        with lock:
            if failures or stopped:
                return None
            try:
                item = next(source)
            except StopIteration:
                return None
            except BaseException as error:  # the iterable's own failure, raised in the caller's thread below
                failures.append(error)
                return None
            if stopped:  # interrupted while the iterable was giving this item
                return None
            results.append(None)  # type: ignore[arg-type]  # filled in when done, in the items' order
            return len(results) - 1, item

    def worker() -> None:
        while (taken := take()) is not None:
            index, item = taken
            try:
                result = work(item)
            except BaseException as error:
                with lock:
                    failures.append(error)
                return
            with lock:
                results[index] = result

    threads = [threading.Thread(target=worker, name=f"mirror_{n}") for n in range(workers)]
    try:
        for thread in threads:  # an interrupt may land between two starts: those started take nothing more
            thread.start()
        for thread in threads:
            thread.join()
    except BaseException:  # KeyboardInterrupt: the running items are left to end by themselves
        # Not under the lock: a worker waiting in next(source) holds it, and the interrupt must not wait for it.
        stopped = True
        raise
    if failures:
        raise failures[0]
    return results
