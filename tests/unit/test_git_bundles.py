"""Git bundles end to end on local repositories: collect, check in quarantine, push; and hostile bundles."""

from __future__ import annotations

import binascii
import hashlib
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from mirror.cli import _fail
from mirror.credentials import Credentials
from mirror.errors import BundleFormatError, SourceNotFoundError, TransferError, UsageError, VerificationError
from mirror.git.bundles import (
    BundleInfo,
    RefConflictError,
    StagedRepo,
    check_and_stage,
    create_bundle,
    inspect_bundle,
    plan_push,
    push_planned,
    push_staged,
)
from mirror.git.refs import RemoteRefs, remote_refs, resolve_ref
from mirror.git.runner import Transport

FILE = Transport(allow_file=True)


def git_env(home: Path) -> dict[str, str]:
    return {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.invalid",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.invalid",
    }


def git(*args: str, cwd: Path, input: bytes | None = None) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, env=git_env(cwd), input=input, capture_output=True, check=True)
    return done.stdout.decode().strip()


def refs_of(repo: Path) -> dict[str, str]:
    out = git("for-each-ref", "--format=%(objectname) %(refname)", cwd=repo)
    return {name: oid for oid, name in (line.split(" ", 1) for line in out.splitlines())}


@dataclass
class Upstream:
    path: Path

    @property
    def url(self) -> str:
        return self.path.resolve().as_uri()

    def git(self, *args: str) -> str:
        return git(*args, cwd=self.path)

    def commit(self, message: str) -> str:
        self.git("commit", "-q", "--allow-empty", "-m", message)
        return self.git("rev-parse", "HEAD")

    def rev(self, ref: str) -> str:
        return self.git("rev-parse", ref)


@pytest.fixture
def upstream(tmp_path: Path) -> Upstream:
    """main: c1 (v1.0.0) - c2 (v1.1.0, annotated) - c3; feature: c1 - f1 (v1.0.1); refs/pull/7/head = f1."""
    path = tmp_path / "upstream"
    path.mkdir()
    up = Upstream(path)
    up.git("init", "-q", "-b", "main")
    up.commit("c1")
    up.git("tag", "v1.0.0")
    up.commit("c2")
    up.git("tag", "-a", "-m", "release 1.1.0", "v1.1.0")
    up.commit("c3")
    up.git("checkout", "-q", "-b", "feature", "v1.0.0")
    up.commit("f1")
    up.git("tag", "-a", "-m", "patch", "v1.0.1")
    up.git("update-ref", "refs/pull/7/head", "HEAD")
    up.git("checkout", "-q", "main")
    return up


def bare(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    git("init", "-q", "--bare", str(path), cwd=tmp_path)
    return path


def collect(up: Upstream, spec: dict[str, str] | None, dest: Path, **kwargs: object) -> BundleInfo:
    refs = remote_refs(up.url, transport=FILE)
    resolved = resolve_ref(refs, spec, url=up.url)
    return create_bundle(up.url, resolved, dest, refs=refs, transport=FILE, **kwargs)  # type: ignore[arg-type]


def stage(bundle: Path, heads: dict[str, str], quarantine: Path, target: Path | None = None) -> StagedRepo:
    url = target.resolve().as_uri() if target is not None else None
    return check_and_stage(bundle, heads, quarantine_dir=quarantine, existing_repo_url=url, transport=FILE)


# --- collect ------------------------------------------------------------------------------------------------


def test_round_trip_keeps_commit_ids_and_only_the_expected_refs(upstream: Upstream, tmp_path: Path) -> None:
    info = collect(upstream, {"branch": "main"}, tmp_path / "out" / "repo.bundle")
    expected = {
        "refs/heads/main": upstream.rev("main"),
        "refs/tags/v1.0.0": upstream.rev("v1.0.0"),
        "refs/tags/v1.1.0": upstream.rev("refs/tags/v1.1.0"),  # the annotated tag object itself
    }
    assert info.heads == expected  # not feature, not v1.0.1 (feature's), not refs/pull
    assert info.prerequisites == []
    assert info.path is not None and info.path.exists()
    assert info.sha256 == hashlib.sha256(info.path.read_bytes()).hexdigest()
    assert info.size == info.path.stat().st_size
    assert inspect_bundle(info.path).heads == expected
    assert not list(info.path.parent.glob(".mirror-git-*")) and not list(info.path.parent.glob("*.partial"))

    staged = stage(info.path, info.heads, tmp_path / "quarantine")
    target = bare(tmp_path, "target.git")
    result = push_staged(staged, target.resolve().as_uri(), credentials=None, transport=FILE)
    assert {r: o.outcome for r, o in result.refs.items()} == dict.fromkeys(expected, "created")
    assert refs_of(target) == expected
    # The same objects, byte for byte: the commit and tag ids are those of the upstream.
    assert git("cat-file", "-p", "refs/tags/v1.1.0", cwd=target) == upstream.git("cat-file", "-p", "refs/tags/v1.1.0")
    assert git("rev-list", "main", cwd=target) == upstream.git("rev-list", "main")
    staged.discard()
    assert not staged.path.exists()


def test_tag_ref_carries_the_tag_and_the_tags_in_its_history(upstream: Upstream, tmp_path: Path) -> None:
    info = collect(upstream, {"tag": "v1.1.0"}, tmp_path / "t.bundle")
    assert info.resolved.commit == upstream.rev("v1.1.0^{commit}")
    assert info.heads == {
        "refs/tags/v1.1.0": upstream.rev("refs/tags/v1.1.0"),
        "refs/tags/v1.0.0": upstream.rev("v1.0.0"),
    }


def test_semver_and_name_refs(upstream: Upstream, tmp_path: Path) -> None:
    info = collect(upstream, {"semver": "~1.0"}, tmp_path / "s.bundle")
    assert info.resolved.name == "refs/tags/v1.0.1"
    assert set(info.heads) == {"refs/tags/v1.0.1", "refs/tags/v1.0.0"}
    info = collect(upstream, {"name": "refs/pull/7/head"}, tmp_path / "n.bundle")
    assert set(info.heads) == {"refs/pull/7/head", "refs/tags/v1.0.0", "refs/tags/v1.0.1"}
    assert info.heads["refs/pull/7/head"] == upstream.rev("feature")


def test_default_ref_is_the_remote_head(upstream: Upstream, tmp_path: Path) -> None:
    info = collect(upstream, None, tmp_path / "h.bundle")
    assert info.resolved.default_branch
    assert "refs/heads/main" in info.heads


def test_commit_is_carried_on_the_branches_that_hold_it(upstream: Upstream, tmp_path: Path) -> None:
    # On main (the default branch) and not only there: the default branch is preferred.
    info = collect(upstream, {"commit": upstream.rev("v1.0.0")}, tmp_path / "c1.bundle")
    assert {r for r in info.heads if r.startswith("refs/heads/")} == {"refs/heads/main"}
    # Only on feature.
    f1 = upstream.rev("feature")
    info = collect(upstream, {"commit": f1}, tmp_path / "c2.bundle")
    assert info.heads == {
        "refs/heads/feature": f1,
        "refs/tags/v1.0.0": upstream.rev("v1.0.0"),
        "refs/tags/v1.0.1": upstream.rev("refs/tags/v1.0.1"),
    }
    # With a branch, as Flux allows: the branch is carried, and must contain the commit.
    info = collect(upstream, {"commit": upstream.rev("v1.0.0"), "branch": "feature"}, tmp_path / "c3.bundle")
    assert "refs/heads/feature" in info.heads
    with pytest.raises(SourceNotFoundError, match=f"commit {upstream.rev('main')} is not on refs/heads/feature"):
        collect(upstream, {"commit": upstream.rev("main"), "branch": "feature"}, tmp_path / "c4.bundle")


def test_commit_on_no_branch_is_refused(upstream: Upstream, tmp_path: Path) -> None:
    loose = upstream.git("commit-tree", upstream.rev("main^{tree}"), "-m", "nowhere")
    upstream.git("update-ref", "refs/pull/9/head", loose)  # reachable, but from no branch
    with pytest.raises(SourceNotFoundError) as caught:
        collect(upstream, {"commit": loose}, tmp_path / "x.bundle")
    assert caught.value.exit_code == 2
    assert loose in str(caught.value)
    assert not (tmp_path / "x.bundle").exists()


def test_ref_that_moved_after_listing_is_a_transfer_error(upstream: Upstream, tmp_path: Path) -> None:
    refs = remote_refs(upstream.url, transport=FILE)
    resolved = resolve_ref(refs, {"branch": "main"})
    upstream.commit("c4")
    with pytest.raises(TransferError) as caught:
        create_bundle(upstream.url, resolved, tmp_path / "m.bundle", refs=refs, transport=FILE)
    assert caught.value.exit_code == 4
    assert "refs/heads/main changed" in str(caught.value)


# --- incremental ----------------------------------------------------------------------------------------------


def test_incremental_bundle_applies_on_a_target_that_has_the_base(upstream: Upstream, tmp_path: Path) -> None:
    target = bare(tmp_path, "target.git")
    full = collect(upstream, {"branch": "main"}, tmp_path / "full.bundle")
    assert full.path is not None
    push_staged(
        stage(full.path, full.heads, tmp_path / "q1"), target.resolve().as_uri(), credentials=None, transport=FILE
    )

    base = upstream.rev("main")
    c4 = upstream.commit("c4")
    upstream.git("tag", "v1.2.0")
    # The previous bundle's heads as the base: commits and the annotated tag object.
    inc = collect(upstream, {"branch": "main"}, tmp_path / "inc.bundle", base_commits=sorted(full.heads.values()))
    assert inc.prerequisites == [base]
    assert inc.heads == {"refs/heads/main": c4, "refs/tags/v1.2.0": c4}
    assert inc.unchanged == {
        "refs/tags/v1.0.0": upstream.rev("v1.0.0"),
        "refs/tags/v1.1.0": upstream.rev("refs/tags/v1.1.0"),
    }
    assert inc.size < full.size
    assert inc.path is not None
    # With commits only, git keeps the annotated tag (its object is not excluded); importing it changes nothing.
    commits_only = collect(upstream, {"branch": "main"}, tmp_path / "inc2.bundle", base_commits=[base])
    assert set(commits_only.heads) == {"refs/heads/main", "refs/tags/v1.2.0", "refs/tags/v1.1.0"}

    staged = stage(inc.path, inc.heads, tmp_path / "q2", target)
    assert staged.prerequisites == [base]
    result = push_staged(staged, target.resolve().as_uri(), credentials=None, transport=FILE)
    assert result.refs["refs/heads/main"].outcome == "updated"
    assert result.refs["refs/tags/v1.2.0"].outcome == "created"
    assert refs_of(target)["refs/heads/main"] == c4
    assert not any(r.startswith("refs/mirror-target/") for r in refs_of(target))
    assert git("fsck", "--strict", cwd=target) == ""


def test_incremental_bundle_is_refused_when_the_target_lacks_the_base(upstream: Upstream, tmp_path: Path) -> None:
    base = upstream.rev("main")
    upstream.commit("c4")
    inc = collect(upstream, {"branch": "main"}, tmp_path / "inc.bundle", base_commits=[base])
    assert inc.path is not None and inc.prerequisites == [base]
    empty = bare(tmp_path, "empty.git")
    for target in (empty, tmp_path / "does-not-exist.git", None):
        quarantine = tmp_path / f"q-{target.name if target else 'none'}"
        with pytest.raises(VerificationError) as caught:
            stage(inc.path, inc.heads, quarantine, target)
        assert caught.value.exit_code == 3
        assert base in str(caught.value)
        assert not quarantine.exists()
    assert refs_of(empty) == {}


def test_nothing_new_since_the_base_writes_no_bundle(upstream: Upstream, tmp_path: Path) -> None:
    previous = [upstream.rev("main"), upstream.rev("refs/tags/v1.1.0")]
    info = collect(upstream, {"branch": "main"}, tmp_path / "none.bundle", base_commits=previous)
    assert not info.written and info.path is None
    assert set(info.unchanged) == {"refs/heads/main", "refs/tags/v1.0.0", "refs/tags/v1.1.0"}
    assert not (tmp_path / "none.bundle").exists()
    assert not list(tmp_path.glob("*.partial"))


def test_unknown_base_commits_are_ignored_and_bad_ones_refused(upstream: Upstream, tmp_path: Path) -> None:
    info = collect(upstream, {"branch": "main"}, tmp_path / "b.bundle", base_commits=["f" * 40])
    assert info.prerequisites == []
    with pytest.raises(UsageError, match="not a full 40-hex"):
        collect(upstream, {"branch": "main"}, tmp_path / "b2.bundle", base_commits=["HEAD"])


# --- hostile bundles ------------------------------------------------------------------------------------------


def hand_made_bundle(up: Upstream, path: Path, *revs: str) -> dict[str, str]:
    up.git("bundle", "create", str(path), *revs)
    out = git("bundle", "list-heads", str(path), cwd=up.path)
    return {name: oid for oid, name in (line.split(" ", 1) for line in out.splitlines())}


def test_extra_ref_is_refused(upstream: Upstream, tmp_path: Path) -> None:
    bundle = tmp_path / "extra.bundle"
    heads = hand_made_bundle(upstream, bundle, "refs/heads/main", "refs/heads/feature")
    expected = {"refs/heads/main": heads["refs/heads/main"]}
    with pytest.raises(VerificationError) as caught:
        stage(bundle, expected, tmp_path / "q")
    assert caught.value.exit_code == 3
    assert "refs/heads/feature" in str(caught.value)
    assert [p.code for p in caught.value.problems] == ["git-ref-unexpected"]
    assert not (tmp_path / "q").exists()


def test_missing_ref_and_ref_pointing_elsewhere_are_refused(upstream: Upstream, tmp_path: Path) -> None:
    bundle = tmp_path / "b.bundle"
    heads = hand_made_bundle(upstream, bundle, "refs/heads/main")
    elsewhere = {"refs/heads/main": upstream.rev("feature")}
    with pytest.raises(VerificationError) as caught:
        stage(bundle, elsewhere, tmp_path / "q1")
    assert [p.code for p in caught.value.problems] == ["git-ref-mismatch"]
    more = {**heads, "refs/tags/v1.0.0": upstream.rev("v1.0.0")}
    with pytest.raises(VerificationError) as caught:
        stage(bundle, more, tmp_path / "q2")
    assert [p.code for p in caught.value.problems] == ["git-ref-missing"]


@pytest.mark.parametrize("keep", [0.5, 0.95])
def test_truncated_bundle_is_refused(upstream: Upstream, tmp_path: Path, keep: float) -> None:
    bundle = tmp_path / "b.bundle"
    heads = hand_made_bundle(upstream, bundle, "refs/heads/main")
    data = bundle.read_bytes()
    bundle.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(VerificationError) as caught:
        stage(bundle, heads, tmp_path / "q")
    assert caught.value.exit_code == 3
    assert not (tmp_path / "q").exists()


def test_altered_pack_byte_is_refused(upstream: Upstream, tmp_path: Path) -> None:
    bundle = tmp_path / "b.bundle"
    heads = hand_made_bundle(upstream, bundle, "refs/heads/main")
    data = bytearray(bundle.read_bytes())
    data[-30] ^= 0xFF
    bundle.write_bytes(bytes(data))
    with pytest.raises(BundleFormatError, match="checksum"):
        inspect_bundle(bundle)
    with pytest.raises(VerificationError) as caught:
        stage(bundle, heads, tmp_path / "q")
    assert caught.value.exit_code == 3


def test_partial_and_foreign_bundles_are_refused(upstream: Upstream, tmp_path: Path) -> None:
    bundle = tmp_path / "b.bundle"
    heads = hand_made_bundle(upstream, bundle, "refs/heads/main")
    data = bundle.read_bytes()
    pack = data[data.index(b"\n\nPACK") + 2 :]
    oid = heads["refs/heads/main"].encode()
    cases = {
        "partial bundle": b"# v3 git bundle\n@object-format=sha1\n@filter=blob:none\n" + oid + b" refs/heads/main\n\n",
        "object format": b"# v3 git bundle\n@object-format=sha256\n" + oid + b" refs/heads/main\n\n",
        "unknown capabilities": b"# v3 git bundle\n@surprise\n" + oid + b" refs/heads/main\n\n",
        "listed twice": b"# v2 git bundle\n" + oid + b" refs/heads/main\n" + oid + b" refs/heads/main\n\n",
        "malformed ref line": b"# v2 git bundle\n" + oid + b" HEAD\n\n",
        "not a git bundle": b"# v9 git bundle\n" + oid + b" refs/heads/main\n\n",
    }
    for needle, header in cases.items():
        bundle.write_bytes(header + pack)
        with pytest.raises(BundleFormatError, match=needle):
            inspect_bundle(bundle)
    bundle.write_bytes(b"# v2 git bundle\n" + oid + b" refs/heads/main\n\n")
    with pytest.raises(BundleFormatError, match="no pack data"):
        inspect_bundle(bundle)


def corrupt_commit(up: Upstream, entries: bytes) -> str:
    """A commit on refs/heads/bad whose tree is `entries`, written without git's own checks."""
    tree = git("hash-object", "-t", "tree", "-w", "--literally", "--stdin", cwd=up.path, input=entries)
    commit = up.git("commit-tree", tree, "-m", "bad tree")
    up.git("update-ref", "refs/heads/bad", commit)
    return commit


@pytest.mark.parametrize(
    ("kind", "finding"),
    [("duplicate", "duplicateEntries"), ("mode", "zeroPaddedFilemode"), ("name", "hasDotgit")],
)
def test_corrupt_object_in_the_pack_is_refused_by_fsck(
    upstream: Upstream, tmp_path: Path, kind: str, finding: str
) -> None:
    blob = binascii.unhexlify(git("hash-object", "-w", "--stdin", cwd=upstream.path, input=b"hello\n"))
    entries = {
        "duplicate": b"100644 a\0" + blob + b"100644 a\0" + blob,
        "mode": b"0100644 a\0" + blob,
        "name": b"100644 .GIT\0" + blob,
    }[kind]
    corrupt_commit(upstream, entries)
    bundle = tmp_path / "bad.bundle"
    heads = hand_made_bundle(upstream, bundle, "refs/heads/bad")
    with pytest.raises(VerificationError) as caught:
        stage(bundle, heads, tmp_path / "q")
    assert caught.value.exit_code == 3
    assert "fsck" in str(caught.value) and finding in str(caught.value)
    assert not (tmp_path / "q").exists()


def test_quarantine_must_be_new(upstream: Upstream, tmp_path: Path) -> None:
    bundle = tmp_path / "b.bundle"
    heads = hand_made_bundle(upstream, bundle, "refs/heads/main")
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "something").write_text("x")
    with pytest.raises(UsageError, match="new or empty"):
        stage(bundle, heads, busy)
    assert (busy / "something").exists()


# --- push -----------------------------------------------------------------------------------------------------


@pytest.fixture
def imported(upstream: Upstream, tmp_path: Path) -> tuple[Path, BundleInfo]:
    """A target that holds the main bundle, and that bundle."""
    target = bare(tmp_path, "target.git")
    info = collect(upstream, {"branch": "main"}, tmp_path / "main.bundle")
    assert info.path is not None
    push_staged(
        stage(info.path, info.heads, tmp_path / "q0"), target.resolve().as_uri(), credentials=None, transport=FILE
    )
    return target, info


def test_diverged_branch_is_refused_unless_forced(upstream: Upstream, tmp_path: Path, imported: tuple) -> None:
    target, _ = imported
    # Someone committed on the internal branch; upstream moved on separately.
    work = tmp_path / "work"
    git("clone", "-q", "-b", "main", str(target), str(work), cwd=tmp_path)
    git("commit", "-q", "--allow-empty", "-m", "internal", cwd=work)
    git("push", "-q", "origin", "main", cwd=work)
    internal = refs_of(target)["refs/heads/main"]
    upstream.commit("c4")
    info = collect(upstream, {"branch": "main"}, tmp_path / "next.bundle")
    assert info.path is not None
    staged = stage(info.path, info.heads, tmp_path / "q1")
    before = refs_of(target)
    with pytest.raises(RefConflictError) as caught:
        push_staged(staged, target.resolve().as_uri(), credentials=None, transport=FILE)
    assert caught.value.exit_code == 2
    assert caught.value.refs == ["refs/heads/main"]
    assert "refs/heads/main" in str(caught.value)
    assert "has commits the bundle" in str(caught.value)
    assert "--force-git" in (caught.value.hint or "")
    assert refs_of(target) == before  # nothing written, not even the unrelated refs
    result = push_staged(staged, target.resolve().as_uri(), credentials=None, force=True, transport=FILE)
    assert result.refs["refs/heads/main"].outcome == "forced"
    assert result.refs["refs/heads/main"].old == internal
    assert refs_of(target)["refs/heads/main"] == upstream.rev("main")


def test_tag_on_another_object_is_refused_unless_forced(upstream: Upstream, tmp_path: Path, imported: tuple) -> None:
    target, info = imported
    git("tag", "-f", "v1.0.0", "main", cwd=target)  # the internal tag was moved
    assert info.path is not None
    staged = stage(info.path, info.heads, tmp_path / "q1")
    with pytest.raises(RefConflictError) as caught:
        push_staged(staged, target.resolve().as_uri(), credentials=None, transport=FILE)
    assert caught.value.refs == ["refs/tags/v1.0.0"]
    result = push_staged(staged, target.resolve().as_uri(), credentials=None, force=True, transport=FILE)
    assert result.refs["refs/tags/v1.0.0"].outcome == "forced"
    assert result.refs["refs/heads/main"].outcome == "unchanged"
    assert refs_of(target)["refs/tags/v1.0.0"] == upstream.rev("v1.0.0")


def test_plan_push_finds_the_conflict_and_writes_nothing(upstream: Upstream, tmp_path: Path, imported: tuple) -> None:
    target, info = imported
    git("tag", "-f", "v1.0.0", "main", cwd=target)
    before = refs_of(target)
    assert info.path is not None
    plan = plan_push(
        stage(info.path, info.heads, tmp_path / "q1"), target.resolve().as_uri(), credentials=None, transport=FILE
    )
    assert [p.code for p in plan.conflicts] == ["git-tag-exists"]
    assert plan.refs["refs/tags/v1.0.0"].old == before["refs/tags/v1.0.0"]
    assert refs_of(target) == before


def test_a_forced_push_is_refused_when_the_target_moved_after_the_plan(
    upstream: Upstream, tmp_path: Path, imported: tuple
) -> None:
    target, info = imported
    git("tag", "-f", "v1.0.0", "main", cwd=target)
    assert info.path is not None
    plan = plan_push(
        stage(info.path, info.heads, tmp_path / "q1"), target.resolve().as_uri(), credentials=None, transport=FILE
    )
    git("tag", "-f", "v1.0.0", upstream.rev("v1.1.0^{commit}"), cwd=target)  # someone moved it again meanwhile
    moved = refs_of(target)
    with pytest.raises(RefConflictError):
        push_planned(plan, credentials=None, force=True, transport=FILE)
    assert refs_of(target) == moved  # the lease held: what the plan did not see is not overwritten


def test_push_never_deletes_and_reports_unchanged(upstream: Upstream, tmp_path: Path, imported: tuple) -> None:
    target, info = imported
    git("branch", "internal-only", "main", cwd=target)
    assert info.path is not None
    result = push_staged(
        stage(info.path, info.heads, tmp_path / "q1"), target.resolve().as_uri(), credentials=None, transport=FILE
    )
    assert {o.outcome for o in result.refs.values()} == {"unchanged"}
    assert "refs/heads/internal-only" in refs_of(target)


def test_push_reports_what_to_do_about_head(upstream: Upstream, tmp_path: Path) -> None:
    target = bare(tmp_path, "target.git")
    git("symbolic-ref", "HEAD", "refs/heads/master", cwd=target)
    info = collect(upstream, {"tag": "v1.0.0"}, tmp_path / "t.bundle")
    assert info.path is not None
    result = push_staged(
        stage(info.path, info.heads, tmp_path / "q"), target.resolve().as_uri(), credentials=None, transport=FILE
    )
    assert result.notes == []  # no branch was pushed: nothing for HEAD to point to
    info = collect(upstream, {"branch": "feature"}, tmp_path / "f.bundle")
    assert info.path is not None
    result = push_staged(
        stage(info.path, info.heads, tmp_path / "q2"), target.resolve().as_uri(), credentials=None, transport=FILE
    )
    assert len(result.notes) == 1 and "default branch" in result.notes[0] and "feature" in result.notes[0]


def test_push_to_a_missing_repository_is_a_usage_error(upstream: Upstream, tmp_path: Path) -> None:
    info = collect(upstream, {"tag": "v1.0.0"}, tmp_path / "t.bundle")
    assert info.path is not None
    staged = stage(info.path, info.heads, tmp_path / "q")
    with pytest.raises(UsageError) as caught:
        push_staged(staged, (tmp_path / "nope.git").resolve().as_uri(), credentials=None, transport=FILE)
    assert caught.value.exit_code == 2
    assert "create the repository" in (caught.value.hint or "")


def test_credentials_in_target_url_are_refused_and_never_shown(upstream: Upstream, tmp_path: Path) -> None:
    info = collect(upstream, {"tag": "v1.0.0"}, tmp_path / "t.bundle")
    assert info.path is not None
    staged = stage(info.path, info.heads, tmp_path / "q")
    for call in (
        lambda: push_staged(staged, "https://robot:t0ken-XYZ@git.internal/r.git", credentials=None),
        lambda: check_and_stage(
            info.path, info.heads, quarantine_dir=tmp_path / "q2", existing_repo_url="https://robot:t0ken-XYZ@h/r.git"
        ),
    ):
        with pytest.raises(UsageError) as caught:
            call()
        assert "t0ken-XYZ" not in str(caught.value)


def test_failing_push_with_a_password_does_not_show_it(upstream: Upstream, tmp_path: Path) -> None:
    info = collect(upstream, {"tag": "v1.0.0"}, tmp_path / "t.bundle")
    assert info.path is not None
    staged = stage(info.path, info.heads, tmp_path / "q")
    with pytest.raises(TransferError) as caught:
        push_staged(staged, "http://127.0.0.1:1/r.git", credentials=Credentials("robot", "pw-S3CRET"))
    assert caught.value.exit_code == 4
    assert "pw-S3CRET" not in str(caught.value)


# --- hooks ----------------------------------------------------------------------------------------------------


def test_hooks_from_templates_and_global_config_never_run(
    upstream: Upstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "HOOK-RAN"
    hooks = tmp_path / "evil-hooks"
    hooks.mkdir()
    for name in ("pre-push", "reference-transaction", "post-receive", "pre-receive", "post-checkout", "post-merge"):
        hook = hooks / name
        hook.write_text(f"#!/bin/sh\necho {name} >> '{marker}'\nexit 0\n")
        hook.chmod(0o755)
    template = tmp_path / "evil-template"
    template.mkdir()
    (template / "hooks").symlink_to(hooks)
    evil_config = tmp_path / "evil-gitconfig"
    evil_config.write_text(f"[core]\n\thooksPath = {hooks}\n[init]\n\ttemplateDir = {template}\n")

    # The trap works: plain git, with this environment, runs the hooks.
    sanity = tmp_path / "sanity.git"
    env = {**git_env(tmp_path), "GIT_TEMPLATE_DIR": str(template), "GIT_CONFIG_GLOBAL": str(evil_config)}
    subprocess.run(["git", "init", "-q", "--bare", str(sanity)], env=env, check=True)
    subprocess.run(
        ["git", "--git-dir", str(sanity), "fetch", "-q", str(upstream.path), "main:main"], env=env, check=True
    )
    assert marker.exists()
    marker.unlink()

    monkeypatch.setenv("GIT_TEMPLATE_DIR", str(template))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(evil_config))
    target = bare(tmp_path, "target.git")
    info = collect(upstream, {"branch": "main"}, tmp_path / "h.bundle")
    assert info.path is not None
    staged = stage(info.path, info.heads, tmp_path / "q")
    assert not (staged.path / "hooks").exists()
    push_staged(staged, target.resolve().as_uri(), credentials=None, transport=FILE)
    assert not marker.exists(), marker.read_text()


def test_refs_are_listed_from_the_quarantine_as_staged(upstream: Upstream, tmp_path: Path) -> None:
    info = collect(upstream, {"branch": "main"}, tmp_path / "m.bundle")
    assert info.path is not None
    staged = stage(info.path, info.heads, tmp_path / "q")
    assert refs_of(staged.path) == info.heads
    # Tampering with the staged repository between check and push is noticed.
    git("update-ref", "refs/heads/main", upstream.rev("v1.0.0"), cwd=staged.path)
    with pytest.raises(VerificationError, match="no longer holds"):
        push_staged(staged, bare(tmp_path, "t.git").resolve().as_uri(), credentials=None, transport=FILE)


def test_remote_refs_type_is_a_dict() -> None:
    assert isinstance(RemoteRefs(), dict)


def test_fsck_findings_are_printed_each_on_its_own_line(
    upstream: Upstream, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    blob = binascii.unhexlify(git("hash-object", "-w", "--stdin", cwd=upstream.path, input=b"hello\n"))
    corrupt_commit(upstream, b"0100644 .GIT\0" + blob + b"0100644 .GIT\0" + blob)
    bundle = tmp_path / "bad.bundle"
    heads = hand_made_bundle(upstream, bundle, "refs/heads/bad")
    with pytest.raises(VerificationError) as caught:
        stage(bundle, heads, tmp_path / "q")
    _fail(caught.value)
    lines = capsys.readouterr().err.splitlines()
    assert not [line for line in lines if "\\x0a" in line], lines
    assert len([line for line in lines if line.startswith("  - ")]) >= 2, lines
