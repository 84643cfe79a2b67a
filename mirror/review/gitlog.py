"""The commits between two states of a Git source, read from the git bundles two mirror bundles carry.

See docs/review.md ("Commits of a moved ref").
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from mirror.bundle.inventory import blob_path
from mirror.bundle.reader import BundleReader, opened
from mirror.errors import BundleFormatError, MirrorError
from mirror.git.refs import is_object_id
from mirror.git.runner import Transport, run_git
from mirror.limits import DEFAULT_LIMITS

_CHUNK = 1024 * 1024
_TRANSPORT = Transport(allow_file=True)


@dataclass(frozen=True)
class Commit:
    id: str
    subject: str


@dataclass
class RefLog:
    commits: list[Commit] = field(default_factory=list)
    total: int = 0  # commits in OLD..NEW, all of them
    dropped: int = 0  # commits in NEW..OLD: history the new state no longer has (a rewrite)
    note: str = ""


class GitHistory:
    """A scratch repository holding the fetched refs of old and new git bundles, under two namespaces."""

    def __init__(self, directory: Path) -> None:
        self.repo = directory / "review.git"
        self.scratch = directory
        run_git(["init", "--bare", "--quiet", "--template=", str(self.repo)], network=False)

    def add(self, reader: BundleReader, digest: str, heads: dict[str, str], namespace: str) -> None:
        """Fetch a git bundle's heads into refs/<namespace>/...; raises MirrorError when it cannot."""
        copy = self.scratch / f"{namespace}-{digest.removeprefix('sha256:')}.bundle"
        copy_blob(reader, digest, copy)
        refspecs = [f"+{ref}:refs/{namespace}/{ref.removeprefix('refs/')}" for ref in sorted(heads)]
        try:
            run_git(
                ["fetch", "--no-tags", "--no-write-fetch-head", "--quiet", "--stdin", "--", str(copy)],
                git_dir=self.repo,
                input="\n".join(refspecs) + "\n",
                transport=_TRANSPORT,
                network=False,
                timeout=DEFAULT_LIMITS.review_git_timeout_s,
                what=f"read the git bundle {digest}",
            )
        finally:
            copy.unlink(missing_ok=True)

    def log(self, old: str, new: str) -> RefLog:
        result = RefLog()
        if not (is_object_id(old) and is_object_id(new)):  # read from an untrusted inventory
            result.note = "the inventory names a ref by something that is not a commit id"
            return result
        count = run_git(
            ["rev-list", "--count", "--end-of-options", f"{old}..{new}"], git_dir=self.repo, check=False, network=False
        )
        if count.returncode != 0:
            result.note = "the commits are not both in the bundles (an incremental chain without its base?)"
            return result
        result.total = int(count.stdout.strip() or 0)
        dropped = run_git(
            ["rev-list", "--count", "--end-of-options", f"{new}..{old}"], git_dir=self.repo, check=False, network=False
        )
        result.dropped = int(dropped.stdout.strip() or 0) if dropped.returncode == 0 else 0
        done = run_git(
            [
                "log",
                f"--max-count={DEFAULT_LIMITS.review_max_commits}",
                "--format=%H%x09%<(200,trunc)%s",  # subjects from an untrusted bundle: bounded
                "--end-of-options",
                f"{old}..{new}",
                "--",
            ],
            git_dir=self.repo,
            check=False,
            network=False,
        )
        for line in done.stdout.splitlines():
            commit, _, subject = line.partition("\t")
            result.commits.append(Commit(commit, subject.rstrip()))  # git pads the truncated column
        return result


def copy_blob(reader: BundleReader, digest: str, target: Path) -> None:
    """Copy a blob out of a bundle, hashing while copying; BundleFormatError when it is not what its digest says."""
    hasher = hashlib.sha256()
    with opened(reader, blob_path(digest)) as source, open(target, "wb") as sink:
        while chunk := source.read(_CHUNK):
            hasher.update(chunk)
            sink.write(chunk)
    if "sha256:" + hasher.hexdigest() != digest:
        target.unlink(missing_ok=True)
        raise BundleFormatError(
            f"{reader.location}: {blob_path(digest)} does not match its digest",
            hint="the bundle is damaged or altered; mirror verify names every file that is",
        )


@contextmanager
def git_history() -> Iterator[GitHistory]:
    scratch = Path(tempfile.mkdtemp(prefix="mirror-review-git-"))
    try:
        yield GitHistory(scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def history_error(exc: MirrorError) -> str:
    return f"commits not read: {exc.message.splitlines()[0]}"
