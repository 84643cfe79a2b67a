"""Every reference of a run that the upstream does not have, gathered and reported together.

A collect resolves Git refs, Flux fleets, charts, OCI artifacts and images; one missing tag used to stop it at
the first, so a user fixed one reference per run. Each resolution step hands its SourceNotFoundError (and a
fleet its FluxResolutionError problems) to one `Unresolved`, goes on with what it can, and the run ends with a
single UnresolvedReferences (exit 2, whatever the source kind) listing every problem in a stable order, each
naming the object and file (or manifest field) that needed it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import TypeVar

from mirror.errors import SourceNotFoundError, UsageError

__all__ = ["Unresolved", "UnresolvedReferences"]

T = TypeVar("T")
R = TypeVar("R")


class UnresolvedReferences(UsageError):
    """References that could not be resolved; `problems` lists each one, sorted."""

    def __init__(self, problems: Iterable[str]) -> None:
        listed = sorted(dict.fromkeys(problems))
        super().__init__(
            f"{len(listed)} reference(s) could not be resolved",
            hint="fix or remove each reference listed; nothing was written",
        )
        self.problems = listed

    def __str__(self) -> str:
        return self.message + ":\n" + "\n".join(f"  - {p}" for p in self.problems)


class Unresolved:
    """A thread-safe list of problems, filled while the run goes on."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._problems: list[str] = []

    def add(self, problem: str, origin: str | None = None) -> None:
        text = problem if origin is None or problem.startswith(origin) else f"{origin}: {problem}"
        with self._lock:
            self._problems.append(text)

    def extend(self, problems: Iterable[str]) -> None:
        with self._lock:
            self._problems.extend(problems)

    def attempt(self, work: Callable[[T], R], origin: Callable[[T], str] | None = None) -> Callable[[T], R | None]:
        """`work`, with a SourceNotFoundError recorded (under the item's origin) and None returned instead."""

        def run(item: T) -> R | None:
            try:
                return work(item)
            except SourceNotFoundError as exc:
                self.add(exc.message, origin(item) if origin else None)
                return None

        return run

    def __bool__(self) -> bool:
        with self._lock:
            return bool(self._problems)

    def check(self) -> None:
        """Raise UnresolvedReferences when anything was recorded."""
        with self._lock:
            problems = list(self._problems)
        if problems:
            raise UnresolvedReferences(problems)
