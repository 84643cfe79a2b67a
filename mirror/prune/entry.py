"""A prune run as its journal entry: what it kept and deleted, appended once its outcome is known, whatever it is.

See docs/journal.md ("prune: one prune run") and docs/day-two.md ("The journal entry").
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from mirror.errors import Interrupted, MirrorError, Problem, cap_problems
from mirror.limits import Limits
from mirror.prune.check import Decision
from mirror.trust.journal_write import JournalWriter


@dataclass
class PruneAttempt:
    """The run as its journal entry says it: filled in as it goes."""

    target: str
    limits: Limits
    kept: list[str] = field(default_factory=list)
    deleted: list[Decision] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, decision: Decision) -> None:
        with self.lock:
            self.deleted.append(decision)

    def fields(self, error: BaseException | None) -> dict[str, Any]:
        if error is None:
            result = "pruned"
        elif self.deleted:
            result = "partial"
        else:
            result = "refused" if _is_refusal(error) else "failed"
        problems = getattr(error, "problems", None) or []
        limit = self.limits.max_problems
        message = None
        if error is not None:
            text = "interrupted" if isinstance(error, KeyboardInterrupt) else str(getattr(error, "message", error))
            chars = self.limits.max_journal_message_chars
            message = text if len(text) <= chars else text[: chars - 3] + "..."
        return {
            "result": result,
            "exitCode": _exit_code(error),
            "registry": self.target,
            "kept": self.kept,
            "deleted": [
                {"repository": d.candidate.repository, "digest": d.candidate.digest, "tags": list(d.tags)}
                for d in self.deleted
            ],
            "problems": [p.code for p in cap_problems((p for p in problems if isinstance(p, Problem)), limit)],
            "message": message,
        }


def _is_refusal(error: BaseException) -> bool:
    return isinstance(error, MirrorError) and error.exit_code in (2, 3)


def _exit_code(error: BaseException | None) -> int:
    if error is None:
        return 0
    if isinstance(error, MirrorError):
        return error.exit_code
    return Interrupted.exit_code if isinstance(error, KeyboardInterrupt) else 1


@contextlib.contextmanager
def journaled(
    writer: JournalWriter, attempt: PruneAttempt, report: Callable[[int], None], warn: Callable[[str], None]
) -> Iterator[None]:
    """One `prune` entry once the outcome is known, whatever it is; a failed append never hides the failure."""
    try:
        yield
    except BaseException as error:
        try:
            writer.append("prune", attempt.fields(error))
        except (MirrorError, ValueError, OSError) as failed:
            warn(f"this prune's journal entry could not be written: {failed}")
        raise
    report(writer.append("prune", attempt.fields(None)).seq)
