"""Git sources: collected as git bundles from a real `git http-backend`, imported into another, ids unchanged."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import pytest

from mirror.bundle.inventory import parse_inventory
from tests.support.gitrepos import GitError, add_commit, ls_remote, make_upstream_repo, rewrite_branch
from tests.support.mirrorsets import mirrorset


@pytest.fixture
def git_env(services, internal_env) -> dict[str, str]:
    return {**internal_env, "MIRROR_GIT_USERNAME": services.git_user, "MIRROR_GIT_PASSWORD": services.git_password}


@pytest.fixture
def repo(services) -> dict:
    """A repository of this test's own, so history can be rewritten without disturbing others."""
    return make_upstream_repo(services, f"t{uuid.uuid4().hex[:8]}/fleet")


def _manifest(tmp_path: Path, git: list[dict]) -> Path:
    document = mirrorset([])
    document["spec"]["git"] = git
    path = tmp_path / f"git-{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(json.dumps(document))
    return path


def _collect(mirror_cli, tmp_path: Path, git: list[dict], out: str = "b") -> Path:
    bundle = tmp_path / out
    result = mirror_cli("collect", _manifest(tmp_path, git), "-o", bundle, "-q")
    assert result.exit_code == 0, result.stderr
    return bundle


def _import(mirror_cli, bundle: Path, services, internal_url: str, git_base: str, env: dict, *extra: str):
    return mirror_cli(
        "import",
        bundle,
        "--registry",
        internal_url,
        "--git",
        git_base,
        "--allow-unsigned",
        "--ca-file",
        services.ca_file,
        "--json",
        "-q",
        *extra,
        env=env,
    )


def _internal_refs(services, path: str) -> dict[str, str]:
    try:
        return ls_remote(f"{services.git_internal}/{path}", services, auth=True)
    except GitError as exc:
        if "not found" in str(exc):
            return {}
        raise


def test_branch_and_its_tags_land_with_the_same_commit_ids(
    tmp_path, mirror_cli, services, git_env, internal_url, target_prefix, repo
):
    bundle = _collect(mirror_cli, tmp_path, [{"name": "fleet", "url": repo["url"], "ref": {"branch": "main"}}])
    result = _import(mirror_cli, bundle, services, internal_url, f"{services.git_internal}/{target_prefix}", git_env)
    assert result.exit_code == 0, result.stderr
    landed = _internal_refs(services, f"{target_prefix}/{repo['name']}.git")
    assert landed["refs/heads/main"] == repo["heads"]["main"]
    for tag, commit in repo["tags"].items():
        assert landed.get(f"refs/tags/{tag}^{{}}", landed.get(f"refs/tags/{tag}")) == commit, tag
    assert "refs/heads/dev" not in landed  # only the resolved ref and the tags reachable from it


def test_inventory_records_the_resolved_commit_and_refs(tmp_path, mirror_cli, repo):
    bundle = _collect(mirror_cli, tmp_path, [{"name": "fleet", "url": repo["url"], "ref": {"tag": "v1.1.0"}}])
    [artifact] = parse_inventory((bundle / "inventory.json").read_bytes()).artifacts
    assert (artifact.kind, artifact.source) == ("git", repo["url"])
    assert artifact.extra["commit"] == repo["tags"]["v1.1.0"]
    assert artifact.extra["refName"] == "refs/tags/v1.1.0"
    assert (bundle / "blobs" / "sha256" / artifact.digest[7:]).stat().st_size == artifact.size


def test_semver_ref_picks_the_newest_matching_tag(tmp_path, mirror_cli, repo):
    bundle = _collect(
        mirror_cli, tmp_path, [{"name": "fleet", "url": repo["url"], "ref": {"semver": ">=1.0.0 <2.0.0"}}]
    )
    [artifact] = parse_inventory((bundle / "inventory.json").read_bytes()).artifacts
    assert artifact.extra["refName"] == "refs/tags/v1.1.0"


def test_importing_the_same_git_bundle_again_changes_nothing(
    tmp_path, mirror_cli, services, git_env, internal_url, target_prefix, repo
):
    bundle = _collect(mirror_cli, tmp_path, [{"name": "fleet", "url": repo["url"], "ref": {"branch": "main"}}])
    base = f"{services.git_internal}/{target_prefix}"
    assert _import(mirror_cli, bundle, services, internal_url, base, git_env).exit_code == 0
    again = _import(mirror_cli, bundle, services, internal_url, base, git_env)
    assert again.exit_code == 0, again.stderr
    [landed] = again.json()["git"]
    assert {r["outcome"] for r in landed["refs"].values()} == {"unchanged"}


def test_rewritten_upstream_history_is_refused_unless_forced(
    tmp_path, mirror_cli, services, git_env, internal_url, target_prefix, repo
):
    base = f"{services.git_internal}/{target_prefix}"
    source = [{"name": "fleet", "url": repo["url"], "ref": {"branch": "main"}}]
    assert (
        _import(
            mirror_cli, _collect(mirror_cli, tmp_path, source, "first"), services, internal_url, base, git_env
        ).exit_code
        == 0
    )
    rewritten = rewrite_branch(services, repo["name"], "main", {"changed.txt": "rewritten"})
    second = _collect(mirror_cli, tmp_path, source, "second")
    refused = _import(mirror_cli, second, services, internal_url, base, git_env)
    assert refused.exit_code == 2
    assert "refs/heads/main" in refused.stderr and "--force-git" in refused.stderr
    internal = f"{target_prefix}/{repo['name']}.git"
    assert _internal_refs(services, internal)["refs/heads/main"] == repo["heads"]["main"]
    forced = _import(mirror_cli, second, services, internal_url, base, git_env, "--force-git")
    assert forced.exit_code == 0, forced.stderr
    assert _internal_refs(services, internal)["refs/heads/main"] == rewritten["new"]


def test_bundle_without_a_git_target_is_refused_before_anything_is_written(
    tmp_path, mirror_cli, services, internal_env, internal_url, repo, written_repositories
):
    bundle = _collect(mirror_cli, tmp_path, [{"name": "fleet", "url": repo["url"]}])
    result = mirror_cli(
        "import",
        bundle,
        "--registry",
        internal_url,
        "--allow-unsigned",
        "--ca-file",
        services.ca_file,
        env=internal_env,
    )
    assert result.exit_code == 2
    assert "--git" in result.stderr


def test_refs_differing_from_the_inventory_are_refused_and_nothing_is_pushed(
    tmp_path, mirror_cli, services, git_env, internal_url, target_prefix, repo, written_repositories
):
    bundle = _collect(mirror_cli, tmp_path, [{"name": "fleet", "url": repo["url"], "ref": {"branch": "main"}}])
    inventory = json.loads((bundle / "inventory.json").read_text())
    [artifact] = inventory["artifacts"]
    artifact["heads"]["refs/heads/main"] = repo["heads"]["dev"]  # the bundle does not hold what it claims
    (bundle / "inventory.json").write_text(json.dumps(inventory))
    result = _import(mirror_cli, bundle, services, internal_url, f"{services.git_internal}/{target_prefix}", git_env)
    assert result.exit_code == 3
    assert "refs/heads/main" in result.stderr
    assert _internal_refs(services, f"{target_prefix}/{repo['name']}.git") == {}
    assert written_repositories() == []


def _corrupt_repository(services, name: str) -> str:
    """A repository whose tip commit has a tree with two entries of the same name: fsck --strict refuses it."""
    path = services.git_upstream_dir / f"{name}.git"
    env = {
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "GIT_CONFIG_NOSYSTEM": "1",
        "PATH": "/usr/bin:/bin",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }

    def git(*args: str, data: bytes | None = None) -> str:
        return (
            subprocess.run(["git", *args], cwd=path, env=env, input=data, capture_output=True, check=True)
            .stdout.decode()
            .strip()
        )

    path.mkdir(parents=True)
    git("init", "-q", "--bare")
    blob = git("hash-object", "-w", "--stdin", data=b"same\n")
    raw = bytes.fromhex(blob)
    tree = git(
        "hash-object",
        "-w",
        "--literally",
        "-t",
        "tree",
        "--stdin",
        data=b"100644 a.txt\0" + raw + b"100644 a.txt\0" + raw,
    )
    commit = git("commit-tree", tree, "-m", "duplicate entries", data=None)
    git("update-ref", "refs/heads/main", commit)
    git("symbolic-ref", "HEAD", "refs/heads/main")
    return commit


def test_objects_that_fail_fsck_are_refused_in_quarantine(
    tmp_path, mirror_cli, services, git_env, internal_url, target_prefix
):
    name = f"t{uuid.uuid4().hex[:8]}/corrupt"
    _corrupt_repository(services, name)
    url = f"{services.git_upstream}/{name}.git"
    collected = mirror_cli("collect", _manifest(tmp_path, [{"name": "bad", "url": url}]), "-o", tmp_path / "b", "-q")
    assert collected.exit_code == 0, collected.stderr  # the connected side carries it; the high side must refuse
    result = _import(
        mirror_cli, tmp_path / "b", services, internal_url, f"{services.git_internal}/{target_prefix}", git_env
    )
    assert result.exit_code == 3
    assert "fsck" in result.stderr.lower()
    assert _internal_refs(services, f"{target_prefix}/{name}.git") == {}


def test_git_sources_travel_in_tar_bundles_too(
    tmp_path, mirror_cli, services, git_env, internal_url, target_prefix, repo
):
    bundle = _collect(mirror_cli, tmp_path, [{"name": "fleet", "url": repo["url"], "ref": {"branch": "main"}}], "b.tar")
    result = _import(mirror_cli, bundle, services, internal_url, f"{services.git_internal}/{target_prefix}", git_env)
    assert result.exit_code == 0, result.stderr
    assert _internal_refs(services, f"{target_prefix}/{repo['name']}.git")["refs/heads/main"] == repo["heads"]["main"]


def test_incremental_git_bundle_needs_its_base_on_the_target(
    tmp_path, mirror_cli, services, git_env, internal_url, target_prefix, repo
):
    from mirror.credentials import Credentials
    from mirror.errors import VerificationError
    from mirror.git.bundles import check_and_stage, create_bundle
    from mirror.git.refs import remote_refs, resolve_ref

    credentials = Credentials(services.git_user, services.git_password)
    base = f"{services.git_internal}/{target_prefix}"
    source = [{"name": "fleet", "url": repo["url"], "ref": {"branch": "main"}}]
    assert (
        _import(mirror_cli, _collect(mirror_cli, tmp_path, source), services, internal_url, base, git_env).exit_code
        == 0
    )
    old_tip = repo["heads"]["main"]
    add_commit(services, repo["name"], "main", {"next.txt": "night two"})
    refs = remote_refs(repo["url"])
    resolved = resolve_ref(refs, {"branch": "main"})
    info = create_bundle(repo["url"], resolved, tmp_path / "inc.bundle", base_commits=[old_tip], refs=refs)
    assert info.prerequisites == [old_tip]

    with_base = check_and_stage(
        info.path,
        info.heads,
        quarantine_dir=tmp_path / "q1",
        existing_repo_url=f"{base}/{repo['name']}.git",
        credentials=credentials,
    )
    assert with_base.heads["refs/heads/main"] == resolved.commit
    with_base.discard()
    with pytest.raises(VerificationError) as refused:
        check_and_stage(
            info.path,
            info.heads,
            quarantine_dir=tmp_path / "q2",
            existing_repo_url=f"{base}/elsewhere/{repo['name']}.git",
            credentials=credentials,
        )
    assert refused.value.exit_code == 3
    assert old_tip in str(refused.value)
