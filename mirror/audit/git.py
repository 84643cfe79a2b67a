"""The Git server compared with the journal: every ref the imports pushed at the object they left it on, and no
ref the journal never pushed in the repositories it knows.

See docs/audit.md ("What is compared").
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from mirror.audit.drift import REF_MISSING, REF_MOVED, REF_UNEXPECTED, Drift
from mirror.audit.expected import Expected
from mirror.audit.targets import GitTarget
from mirror.git.refs import PEELED_SUFFIX, RemoteRefs


def check_git(
    expected: Expected,
    target: GitTarget,
    *,
    jobs: int,
    only_journaled: bool,
    report: Callable[[Iterator[Drift]], None],
) -> int:
    """Compare, reporting drift as it is found; returns how many refs were checked."""
    remotes = target.refs_of(expected.git_repositories, jobs)
    report(_ref_drift(expected, remotes))
    if not only_journaled and expected.complete:
        report(_unexpected_refs(expected, remotes))
    return len(expected.refs)


def _ref_drift(expected: Expected, remotes: dict[str, RemoteRefs | None]) -> Iterator[Drift]:
    for (url, ref), commit in sorted(expected.refs.items()):
        remote = remotes[url]
        now = remote.get(ref) if remote is not None else None
        if now is None:
            detail = "" if remote is not None else "the repository is gone"
            yield Drift(f"{url} {ref}", REF_MISSING, expected=commit, detail=detail)
        elif now != commit and now not in expected.tolerated_refs.get((url, ref), ()):
            yield Drift(f"{url} {ref}", REF_MOVED, expected=commit, found=now)


def _unexpected_refs(expected: Expected, remotes: dict[str, RemoteRefs | None]) -> Iterator[Drift]:
    for url, remote in sorted(remotes.items()):
        for ref, found in sorted((remote or {}).items()):
            if ref == "HEAD" or ref.endswith(PEELED_SUFFIX):
                continue
            if (url, ref) not in expected.refs and (url, ref) not in expected.tolerated_refs:
                yield Drift(f"{url} {ref}", REF_UNEXPECTED, found=found)
