"""The commits an incremental git bundle carries, read from that bundle alone (its pack is thin).

See docs/review.md ("Commits of a moved ref").
"""

from __future__ import annotations

import heapq
from pathlib import Path

from mirror.bundle.reader import BundleReader
from mirror.git.bundles import parse_header
from mirror.git.refs import is_object_id
from mirror.git.runner import redact, run_git
from mirror.limits import DEFAULT_LIMITS
from mirror.review.gitlog import Commit, RefLog, copy_blob

_LIMITS = DEFAULT_LIMITS


class CarriedCommits:
    """The whole commits of one git bundle, unpacked into a scratch repository, with their parents and dates."""

    def __init__(self, scratch: Path, reader: BundleReader, digest: str) -> None:
        self.digest = digest
        self.location = reader.location
        name = digest.removeprefix("sha256:")
        self.repo = scratch / f"carried-{name}.git"
        copy = scratch / f"carried-{name}.bundle"
        copy_blob(reader, digest, copy)
        try:
            # Unbuffered: the descriptor git inherits must stand exactly at the pack's first byte.
            with open(copy, "rb", buffering=0) as handle:
                header = parse_header(handle, f"{reader.location}: the git bundle {digest}")
                handle.seek(header.pack_offset)
                run_git(["init", "--bare", "--quiet", "--template=", str(self.repo)], network=False)
                unpacked = run_git(
                    ["unpack-objects", "-r", "-q"],
                    git_dir=self.repo,
                    stdin=handle,
                    check=False,
                    network=False,
                    timeout=_LIMITS.review_git_timeout_s,
                )
        finally:
            copy.unlink(missing_ok=True)
        self.prerequisites = set(header.prerequisites)
        # Deltas against the base's objects are expected; anything else git said is kept for the note.
        said = redact(unpacked.stderr.strip())
        self.unpack_problem = "" if unpacked.returncode == 0 or "unresolved deltas" in said else said[-300:]
        self.sizes = self._commit_sizes()
        self.parents: dict[str, list[str]] = {}
        self.dates: dict[str, int] = {}
        self._read_parents()

    def _git(self, args: list[str], input: str | None = None) -> str:
        done = run_git(
            args,
            git_dir=self.repo,
            input=input,
            network=False,
            timeout=_LIMITS.review_git_timeout_s,
            what=f"read the commits of the git bundle {self.digest} in {self.location}",
        )
        return done.stdout

    def _commit_sizes(self) -> dict[str, int]:
        listing = self._git(
            ["cat-file", "--batch-all-objects", "--batch-check=%(objectname) %(objecttype) %(objectsize)"]
        )
        sizes = {}
        for line in listing.splitlines():
            oid, kind, size = [*line.split(" "), "", ""][:3]
            if kind == "commit" and is_object_id(oid) and size.isdigit():
                sizes[oid] = int(size)
        return sizes

    def _read_parents(self) -> None:
        if not self.sizes:
            return
        # --no-walk reads each commit on its own: a parent the pack lacks is named, never opened.
        listing = self._git(["log", "--no-walk=unsorted", "--format=%H %ct %P", "--stdin"], "\n".join(self.sizes))
        for line in listing.splitlines():
            oid, date, *parents = line.split(" ")
            if oid in self.sizes and date.isdigit() and all(is_object_id(p) for p in parents):
                self.parents[oid] = parents
                self.dates[oid] = int(date)

    def _subjects(self, commits: list[str]) -> dict[str, str]:
        # A larger commit is walked (its parents are read) but its subject is not shown.
        small = [c for c in commits if self.sizes.get(c, 0) <= _LIMITS.review_max_commit_bytes]
        subjects = {c: f"(a commit of {self.sizes.get(c, 0)} bytes: its subject is not shown)" for c in commits}
        if small:
            listing = self._git(["log", "--no-walk=unsorted", "--format=%H%x00%s%x00", "--stdin"], "\n".join(small))
            fields = listing.split("\x00")
            for index in range(0, len(fields) - 1, 2):
                oid = fields[index].strip()
                if oid in subjects:
                    subjects[oid] = fields[index + 1]
        return subjects

    def _ancestors_carried(self, commit: str) -> tuple[set[str], set[str]]:
        """The carried commits `commit` reaches, and the prerequisites where that history leaves the bundle."""
        inside, boundary, todo = set(), set(), [commit]
        while todo:
            current = todo.pop()
            if current in inside or current in boundary:
                continue
            if current in self.prerequisites:
                boundary.add(current)
            elif current in self.parents:
                inside.add(current)
                todo += self.parents[current]
        return inside, boundary

    def log(self, old: str, new: str) -> RefLog:
        """old..new as far as this bundle carries it, newest first; the note says when that is not all of it."""
        result = RefLog()
        where = f"the git bundle {self.digest} in {self.location}"
        if new not in self.parents:
            if new in self.prerequisites:
                result.note = f"the new commit is not in {where}: its base chain carries it (the ref moved back?)"
            else:
                result.note = f"commits not read: the new commit is not among the commits {where} yields whole"
                if self.unpack_problem:
                    result.note += f" (git: {self.unpack_problem})"
            return result
        # What old already reaches inside the bundle is not in old..new; where that history leaves the bundle,
        # the walk may stop too, and still be complete.
        behind, known_old = self._ancestors_carried(old)
        known_old.add(old)
        order = 0
        queue = [(-self.dates[new], order, new)]
        seen = {new}
        listed: list[str] = []
        stopped: set[str] = set()
        unreadable: set[str] = set()
        while queue:
            _, _, commit = heapq.heappop(queue)
            if commit in behind or commit in known_old:
                continue
            if commit in self.prerequisites:
                stopped.add(commit)
                continue
            if commit not in self.parents:
                unreadable.add(commit)
                continue
            listed.append(commit)
            for parent in self.parents[commit]:
                if parent not in seen:
                    seen.add(parent)
                    order += 1
                    heapq.heappush(queue, (-self.dates.get(parent, 0), order, parent))
        subjects = self._subjects(listed[: _LIMITS.review_max_commits])
        result.commits = [Commit(c, subjects[c]) for c in listed[: _LIMITS.review_max_commits]]
        result.total = len(listed)
        if unreadable:
            result.note = (
                f"{len(listed)} commit(s) read from {where} alone; the rest could not be read: "
                f"{len(unreadable)} commit(s) (first {min(unreadable)}) are not stored whole in it "
                "(a delta against an object it does not carry)"
            )
        elif stopped:
            first = min(stopped)
            result.note = (
                f"only the {len(listed)} commit(s) {where} carries are listed: the walk from the new commit "
                f"stopped at {len(stopped)} prerequisite commit(s) (first {first}), not at the old commit; the "
                "earlier commits of the range, if any, are in the git bundles of the chain before it"
            )
        return result
