"""The one exception hierarchy of mirror; each class carries the exit code of the contract.

    MirrorError                     exit 1  unexpected internal error
    ├── UsageError                  exit 2  bad input or usage: names the file, field and what was expected
    │   ├── ManifestError                   a MirrorSet that does not parse or validate
    │   ├── ReferenceError_                 an image reference that does not parse
    │   └── SourceNotFoundError             the manifest names something the upstream does not have
    ├── VerificationError           exit 3  a bundle or document that cannot be proven intact; nothing written
    │   ├── IntegrityError                  file sizes and digests disagree with the inventory
    │   ├── BundleFormatError               a bundle, tar member or inventory that is malformed or unsafe
    │   └── InvalidDocumentError            a manifest or index that is ambiguous, malformed or unsupported
    ├── TransferError               exit 4  network or transfer failure after retries; a re-run resumes
    │   ├── UnreachableError                the host could not be reached
    │   ├── SlowTransferError               a transfer slower than the speed floor, or past its deadline
    │   ├── RegistryHTTPError               the registry answered with an error status
    │   ├── RateLimitedError                a pull quota nearly spent, or a Retry-After beyond the ceiling
    │   └── DigestMismatchError             a remote sent bytes (or a digest) other than the ones asked for
    ├── DriftError                  exit 5  `audit`: the targets differ from what the import journal says was imported
    └── Interrupted                 exit 130 Ctrl-C or SIGTERM; what a run had not finished is left undone

The library raises; only cli.py turns these into exit codes. Messages name the file, field or reference,
and `hint` says what the user can do next.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from mirror.limits import DEFAULT_LIMITS


class MirrorError(Exception):
    """`problems`: the things a refusal lists (hosts, files, refs), which the command line prints each on a line
    of its own, escaped; a message never holds a newline (it would be shown as \\x0a)."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None, problems: Iterable[Problem | str] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.problems: Sequence[Problem | str] = list(problems)

    def __str__(self) -> str:
        if not self.problems:
            return self.message
        return self.message + "\n" + "\n".join(f"  - {p}" for p in self.problems)

    def one_line(self) -> str:
        """The message and its problems on one line: for a refusal listed as one problem of another."""
        return "; ".join([self.message, *(str(p) for p in self.problems)])

    def to_json(self) -> dict[str, object]:
        """The error as scripts see it, in a JSON log line and a run report alike: the one mapping of both."""
        entry: dict[str, object] = {"exitCode": self.exit_code, "error": type(self).__name__, "message": self.message}
        if self.hint:
            entry["hint"] = self.hint
        problems = getattr(self, "problems", None)
        if problems:
            entry["problems"] = [p.to_json() if isinstance(p, Problem) else {"message": str(p)} for p in problems]
        return entry


class UsageError(MirrorError):
    exit_code = 2


class ManifestError(UsageError):
    """A manifest that does not validate, located by file and field path (e.g. `spec.images[2].ref`)."""

    def __init__(self, path: str, field: str, problem: str, *, hint: str | None = None) -> None:
        location = f"{path}: {field}" if field else path
        super().__init__(f"{location}: {problem}", hint=hint)
        self.path = path
        self.field = field
        self.problem = problem


class ReferenceError_(UsageError):
    """An image reference that does not follow the distribution grammar."""


class SourceNotFoundError(UsageError):
    """The upstream answered that the named image, tag or digest does not exist."""


PROBLEMS_OMITTED = "PROBLEMS_OMITTED"


@dataclass(frozen=True)
class Problem:
    """One failed check: a stable code for scripts, and a message naming the file, key or reference.

    A summary (code PROBLEMS_OMITTED, made by `cap_problems`) stands for the problems left out of a list, and
    `omitted` holds how many of each code it stands for.
    """

    code: str
    message: str
    omitted: tuple[tuple[str, int], ...] = ()

    @property
    def count(self) -> int:
        """How many problems this one stands for: 1, or the number a summary left out."""
        return sum(n for _, n in self.omitted) if self.omitted else 1

    def __str__(self) -> str:
        return f"[{self.code}] {self.message}"

    def to_json(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


def _summary(omitted: Counter[str]) -> Problem:
    kinds = ", ".join(f"{code} x{count:,}" for code, count in sorted(omitted.items(), key=lambda i: (-i[1], i[0])))
    total = sum(omitted.values())
    return Problem(
        PROBLEMS_OMITTED,
        f"... and {total:,} more problem(s) of these kinds: {kinds}",
        tuple(sorted(omitted.items())),
    )


def cap_problems(problems: Iterable[Problem], limit: int = DEFAULT_LIMITS.max_problems) -> list[Problem]:
    """The first `limit` problems, then one summary counting the rest by code; the one place lists are capped.

    ASCII only: a cron job's stdout may not be UTF-8. Takes any iterable, so a producer can pass a generator
    and never hold more than `limit` problems. Summaries already in the input are merged into the new one, so
    capping twice loses no count.
    """
    kept: list[Problem] = []
    omitted: Counter[str] = Counter()
    for problem in problems:
        if problem.omitted:
            omitted.update(dict(problem.omitted))
        elif len(kept) < limit:
            kept.append(problem)
        else:
            omitted[problem.code] += 1
    return [*kept, _summary(omitted)] if omitted else kept


def problem_count(problems: Iterable[Problem]) -> int:
    """How many problems a (possibly capped) list stands for."""
    return sum(p.count for p in problems)


class VerificationError(MirrorError):
    exit_code = 3
    problems: list[Problem]

    def __init__(self, message: str, *, problems: list[Problem] | None = None, hint: str | None = None) -> None:
        # Every refusal passes here: however many problems were found, at most max_problems lines are shown.
        super().__init__(message, hint=hint, problems=cap_problems(problems or []))


class IntegrityError(VerificationError):
    pass


class BundleFormatError(VerificationError):
    pass


class InvalidDocumentError(VerificationError):
    pass


class TransferError(MirrorError):
    exit_code = 4

    def needed_for(self, artifact: str, by: str = "") -> None:
        """Name the artifact whose transfer failed, and what needed it (a MirrorSet field, a chart, a Flux
        object), unless the message names them already: a failure passes several callers on its way up."""
        name = artifact not in self.message
        cause = bool(by) and by not in self.message
        if name and cause:
            self.message += f"; needed for {artifact} ({by})"
        elif name:
            self.message += f"; needed for {artifact}"
        elif cause:
            self.message += f"; needed by {by}"
        self.args = (self.message,)


@contextmanager
def needed_for(artifact: str, by: str = "") -> Iterator[None]:
    """Within the block, a TransferError names `artifact` and what needed it (see TransferError.needed_for)."""
    try:
        yield
    except TransferError as error:
        error.needed_for(artifact, by)
        raise


class UnreachableError(TransferError):
    pass


class SlowTransferError(TransferError):
    """A transfer moved less than the speed floor, or a document was not whole by its deadline (Limits).

    `retryable`: a speed floor is retried like a broken transfer (a blob resumes where it stopped), a missed
    deadline is not (the same upstream would take as long again).
    """

    def __init__(self, message: str, *, retryable: bool, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.retryable = retryable


class RegistryHTTPError(TransferError):
    def __init__(
        self,
        message: str,
        *,
        status: int,
        codes: tuple[str, ...] = (),
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.status = status
        self.codes = codes


class DigestMismatchError(TransferError):
    pass


class RateLimitedError(TransferError):
    """A registry's pull quota is nearly spent (`ratelimit-remaining` below Limits.min_ratelimit_remaining), or it
    asked to wait longer than Limits.retry_after_max_s; `rate_limit` is what scripts read: host, remaining,
    limit, window_s, retry_after_s (what the registry said; None where it did not)."""

    def __init__(self, message: str, *, rate_limit: dict[str, object], hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.rate_limit = rate_limit

    def to_json(self) -> dict[str, object]:
        return {**super().to_json(), "rateLimit": dict(self.rate_limit)}


class DriftError(MirrorError):
    """`mirror audit` found the targets other than the journal says they were left: a tag moved or side-loaded, a
    manifest or blob missing, a Git ref rewritten. The drift itself is the audit's report (docs/audit.md)."""

    exit_code = 5


class Interrupted(MirrorError):
    """Stands for a KeyboardInterrupt (Ctrl-C, or SIGTERM turned into one) where errors are shown or reported."""

    exit_code = 130
