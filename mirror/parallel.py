"""Bounded concurrency for network and hashing work: a thread pool fed lazily, whose first failure stops the rest."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

IN_FLIGHT_PER_JOB = 2  # enough queued that no worker idles between two items, and no more


def run_parallel(items: Iterable[T], work: Callable[[T], R], jobs: int) -> list[R]:
    """Apply `work` to every item with at most `jobs` threads; results keep the items' order.

    Items are pulled from `items` only as workers free up, so at most 2 x jobs are submitted and not yet
    finished: 200,000 files cost 200,000 results, not 200,000 queued tasks. On the first failure, everything
    not yet started is cancelled, the (at most `jobs`) running items are waited for, and the failure is
    raised. On KeyboardInterrupt (SIGINT, and SIGTERM as cli.main turns it into one), everything not yet
    started is cancelled at once and nothing is waited for.

    hashlib and socket IO release the GIL, so threads give real parallelism for this tool's work.
    """
    if jobs <= 1:
        return [work(item) for item in items]
    results: list[R] = []
    in_flight: dict[Future[R], int] = {}

    def harvest(done: set[Future[R]]) -> None:
        for future in done:
            index = in_flight.pop(future)
            error = future.exception()
            if error is not None:
                raise error
            results[index] = future.result()

    pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="mirror")
    iterator = iter(items)
    try:
        while True:
            while len(in_flight) >= IN_FLIGHT_PER_JOB * jobs:
                harvest(wait(in_flight, return_when=FIRST_COMPLETED).done)
            try:
                item = next(iterator)
            except StopIteration:
                break
            results.append(None)  # type: ignore[arg-type]  # filled in by harvest, in the items' order
            in_flight[pool.submit(work, item)] = len(results) - 1
        while in_flight:
            harvest(wait(in_flight, return_when=FIRST_COMPLETED).done)
    except KeyboardInterrupt:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return results
