"""Bounded concurrency for network work: a thread pool whose first failure stops what has not started."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def run_parallel(items: Iterable[T], work: Callable[[T], R], jobs: int) -> list[R]:
    """Apply `work` to every item with at most `jobs` threads; results keep the items' order.

    hashlib and socket IO release the GIL, so threads give real parallelism for this tool's work.
    """
    items = list(items)
    if jobs <= 1 or len(items) <= 1:
        return [work(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(jobs, len(items)), thread_name_prefix="mirror") as pool:
        futures: list[Future[R]] = [pool.submit(work, item) for item in items]
        done, pending = wait(futures, return_when=FIRST_EXCEPTION)
        failed = next((f for f in futures if f in done and f.exception() is not None), None)
        if failed is not None:
            for future in pending:
                future.cancel()
            wait(pending)
            raise failed.exception()  # type: ignore[misc]
        return [f.result() for f in futures]
