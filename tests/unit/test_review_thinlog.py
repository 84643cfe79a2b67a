"""Commits read from an incremental git bundle alone (its thin pack), with local repositories and bundles."""

from __future__ import annotations

import hashlib
import os
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from mirror.bundle.reader import DirectoryBundle
from mirror.errors import BundleFormatError
from mirror.limits import DEFAULT_LIMITS
from mirror.review.thinlog import CarriedCommits


def git(repo: Path, *args: str, input: bytes | None = None) -> str:
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(repo),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.invalid",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.invalid",
    }
    done = subprocess.run(["git", *args], cwd=repo, env=env, input=input, capture_output=True, check=True)
    return done.stdout.decode().strip()


class Repo:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir()
        git(path, "init", "-q", "-b", "main")
        self.count = 0

    def commit(self, subject: str, file: str = "values.yaml") -> str:
        # Each commit changes a file, so that the pack holds trees and blobs deltified against the base's.
        self.count += 1
        (self.path / file).write_text("".join(f"line {n}\n" for n in range(300)) + f"{self.count}\n")
        git(self.path, "add", file)
        git(self.path, "commit", "-q", "-m", subject, "-m", "a body that is not part of the subject")
        return git(self.path, "rev-parse", "HEAD")

    def bundle(self, target: Path, *revs: str) -> bytes:
        git(self.path, "bundle", "create", "-q", str(target), *revs)
        return target.read_bytes()


def mirror_bundle(tmp_path: Path, raw: bytes, name: str = "night") -> tuple[DirectoryBundle, str]:
    """A directory bundle holding `raw` as a blob, and the blob's digest."""
    digest = hashlib.sha256(raw).hexdigest()
    blobs = tmp_path / name / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    (blobs / digest).write_bytes(raw)
    return DirectoryBundle(tmp_path / name), f"sha256:{digest}"


def carried(tmp_path: Path, raw: bytes) -> CarriedCommits:
    reader, digest = mirror_bundle(tmp_path, raw)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    return CarriedCommits(scratch, reader, digest)


@pytest.fixture
def chain(tmp_path: Path) -> tuple[Repo, list[str]]:
    """main: c1 - c2 (night 1's tip) - c3 - c4 (night 2's tip)."""
    repo = Repo(tmp_path / "upstream")
    return repo, [repo.commit(f"c{n}") for n in range(1, 5)]


def test_the_range_an_incremental_bundle_carries_is_listed_newest_first_with_subjects(tmp_path, chain) -> None:
    repo, tips = chain
    commits = carried(tmp_path, repo.bundle(tmp_path / "inc.bundle", "main", f"^{tips[1]}"))
    log = commits.log(tips[1], tips[3])
    assert [(c.id, c.subject) for c in log.commits] == [(tips[3], "c4"), (tips[2], "c3")]
    assert (log.total, log.dropped, log.note) == (2, 0, "")


def test_a_range_that_starts_inside_the_bundle_lists_only_the_commits_after_the_old_one(tmp_path, chain) -> None:
    repo, tips = chain
    commits = carried(tmp_path, repo.bundle(tmp_path / "inc.bundle", "main", f"^{tips[0]}"))
    log = commits.log(tips[2], tips[3])
    assert [c.subject for c in log.commits] == ["c4"] and log.total == 1 and log.note == ""


def test_a_range_older_than_the_bundle_lists_what_it_carries_and_names_the_prerequisite(tmp_path, chain) -> None:
    repo, tips = chain
    commits = carried(tmp_path, repo.bundle(tmp_path / "inc.bundle", "main", f"^{tips[1]}"))
    log = commits.log(tips[0], tips[3])
    assert [c.subject for c in log.commits] == ["c4", "c3"] and log.total == 2
    assert log.note.startswith("only the 2 commit(s)") and f"(first {tips[1]})" in log.note


def test_a_merge_lists_both_sides_down_to_the_old_commit(tmp_path, chain) -> None:
    repo, tips = chain
    git(repo.path, "checkout", "-q", "-b", "side", tips[3])
    side = repo.commit("side", "side.yaml")
    git(repo.path, "checkout", "-q", "main")
    main = repo.commit("main")
    git(repo.path, "merge", "-q", "--no-ff", "-m", "merge side", "side")
    merge = git(repo.path, "rev-parse", "HEAD")
    commits = carried(tmp_path, repo.bundle(tmp_path / "inc.bundle", "main", f"^{tips[3]}"))
    log = commits.log(tips[3], merge)
    assert log.commits[0].subject == "merge side"
    assert {c.id for c in log.commits} == {merge, side, main} and log.total == 3 and log.note == ""


def test_at_most_the_cap_is_listed_and_the_total_counts_every_commit(tmp_path) -> None:
    repo = Repo(tmp_path / "upstream")
    base = repo.commit("base")
    MAX_COMMITS = DEFAULT_LIMITS.review_max_commits
    for n in range(MAX_COMMITS + 5):
        git(repo.path, "commit", "-q", "--allow-empty", "-m", f"n{n}")
    tip = git(repo.path, "rev-parse", "HEAD")
    log = carried(tmp_path, repo.bundle(tmp_path / "inc.bundle", "main", f"^{base}")).log(base, tip)
    assert len(log.commits) == MAX_COMMITS and log.total == MAX_COMMITS + 5
    assert log.commits[0].subject == f"n{MAX_COMMITS + 4}" and log.note == ""


def test_a_new_commit_the_bundle_does_not_carry_is_said(tmp_path, chain) -> None:
    repo, tips = chain
    commits = carried(tmp_path, repo.bundle(tmp_path / "inc.bundle", "main", f"^{tips[1]}"))
    assert "moved back" in commits.log(tips[3], tips[1]).note
    log = commits.log(tips[1], "e" * 40)
    assert log.commits == [] and log.total == 0 and "the new commit is not among" in log.note


# --- a commit stored as a delta against an object the bundle lacks ---------------------------------------------


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _entry_header(kind: int, size: int) -> bytes:
    out = bytearray([(kind << 4) | (size & 0x0F) | (0x80 if size >> 4 else 0)])
    size >>= 4
    while size:
        out.append((size & 0x7F) | (0x80 if size >> 7 else 0))
        size >>= 7
    return bytes(out)


def _pack(entries: list[bytes]) -> bytes:
    body = b"PACK" + struct.pack(">II", 2, len(entries)) + b"".join(entries)
    return body + hashlib.sha1(body).digest()


def _whole(kind: int, data: bytes) -> bytes:
    return _entry_header(kind, len(data)) + zlib.compress(data)


def _ref_delta(base: str, base_size: int, data: bytes) -> bytes:
    """A delta that inserts `data` whole, against `base`: valid, but unresolvable without that object."""
    delta = bytearray(_varint(base_size) + _varint(len(data)))
    for start in range(0, len(data), 127):
        chunk = data[start : start + 127]
        delta += bytes([len(chunk)]) + chunk
    return _entry_header(7, len(delta)) + bytes.fromhex(base) + zlib.compress(bytes(delta))


def test_a_commit_stored_as_a_delta_against_a_missing_object_stops_the_walk_honestly(tmp_path, chain) -> None:
    """git deltifies commits only against commits of the same pack, so this pack is made by hand: c4 whole,
    c3 as a delta against c2 (the prerequisite, which the bundle does not carry)."""
    repo, tips = chain
    raw = {n: git(repo.path, "cat-file", "commit", tips[n]).encode() + b"\n" for n in (1, 2, 3)}
    assert hashlib.sha1(b"commit %d\x00" % len(raw[3]) + raw[3]).hexdigest() == tips[3]
    pack = _pack([_whole(1, raw[3]), _ref_delta(tips[1], len(raw[1]), raw[2])])
    bundle = f"# v2 git bundle\n-{tips[1]} c2\n{tips[3]} refs/heads/main\n\n".encode() + pack
    log = carried(tmp_path, bundle).log(tips[1], tips[3])
    assert [(c.id, c.subject) for c in log.commits] == [(tips[3], "c4")] and log.total == 1
    assert log.note.startswith("1 commit(s) read from") and "the rest could not be read" in log.note
    assert f"(first {tips[2]})" in log.note


def test_the_same_pack_with_the_commit_whole_is_read_to_the_old_commit(tmp_path, chain) -> None:
    repo, tips = chain
    raw = {n: git(repo.path, "cat-file", "commit", tips[n]).encode() + b"\n" for n in (2, 3)}
    pack = _pack([_whole(1, raw[3]), _whole(1, raw[2])])
    bundle = f"# v2 git bundle\n-{tips[1]} c2\n{tips[3]} refs/heads/main\n\n".encode() + pack
    log = carried(tmp_path, bundle).log(tips[1], tips[3])
    assert [c.subject for c in log.commits] == ["c4", "c3"] and log.note == ""


# --- untrusted input -------------------------------------------------------------------------------------------


def test_a_blob_that_does_not_match_its_digest_is_refused(tmp_path, chain) -> None:
    repo, tips = chain
    reader, digest = mirror_bundle(tmp_path, repo.bundle(tmp_path / "inc.bundle", "main", f"^{tips[1]}"))
    (tmp_path / "night" / "blobs" / "sha256" / digest.removeprefix("sha256:")).write_bytes(b"# v2 git bundle\n")
    (tmp_path / "scratch").mkdir()
    with pytest.raises(BundleFormatError, match="does not match its digest"):
        CarriedCommits(tmp_path / "scratch", reader, digest)
    assert list((tmp_path / "scratch").iterdir()) == []


def test_a_malformed_git_bundle_header_is_refused_naming_the_bundle(tmp_path) -> None:
    raw = b"# v2 git bundle\n-" + b"x" * 40 + b" bad\n" + b"b" * 40 + b" refs/heads/main\n\n" + _pack([])
    with pytest.raises(BundleFormatError, match="malformed prerequisite line") as raised:
        carried(tmp_path, raw)
    assert "the git bundle sha256:" in raised.value.message


def test_the_scratch_repository_has_no_hooks_directory(tmp_path, chain) -> None:
    """Made without a template, so no hook can exist in it (run_git also points core.hooksPath at /dev/null)."""
    repo, tips = chain
    commits = carried(tmp_path, repo.bundle(tmp_path / "inc.bundle", "main", f"^{tips[1]}"))
    assert not (commits.repo / "hooks").exists()
