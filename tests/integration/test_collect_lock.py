"""collect --lock with charts (an HTTP repository on nginx) and Git sources (git http-backend): the chart at the
locked version and digest, the Git source at the locked commit, or a refusal before any image blob is fetched."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import pytest

from mirror.bundle.inventory import parse_inventory
from tests.support.charts import seed_charts
from tests.support.gitrepos import add_commit, make_upstream_repo, move_tag, rewrite_branch
from tests.support.mirrorsets import mirrorset
from tests.support.services import CHARTS_ADDRESS2, UPSTREAM_REGISTRY


@pytest.fixture(scope="module")
def repo_url(services, upstream_images) -> str:  # upstream_images: the charts name them
    return seed_charts(services)["repo"]["url"]


def _manifest(tmp_path: Path, charts: list[dict] = (), git: list[dict] = ()) -> Path:
    document = mirrorset([])
    document["spec"]["charts"] = list(charts)
    document["spec"]["git"] = list(git)
    document["spec"]["allowedHosts"] = [CHARTS_ADDRESS2]
    path = tmp_path / f"lock-{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(json.dumps(document))
    return path


def _resolved(mirror_cli, manifest: Path) -> dict:
    result = mirror_cli("resolve", manifest, "--json")
    assert result.exit_code == 0, result.stderr
    return result.json()


def _write(tmp_path: Path, lock: dict) -> Path:
    path = tmp_path / f"lock-{uuid.uuid4().hex[:6]}.json"
    path.write_text(json.dumps(lock))
    return path


def _chart_lock(mirror_cli, tmp_path: Path, repo_url: str, version: str) -> dict:
    """The lock of the chart `app` at `version`, as resolve printed it for a MirrorSet asking for that version."""
    return _resolved(mirror_cli, _manifest(tmp_path, [{"name": "app", "repo": repo_url, "version": version}]))


def test_a_chart_is_collected_at_the_locked_version_not_the_newest(tmp_path, mirror_cli, repo_url) -> None:
    lock = _chart_lock(mirror_cli, tmp_path, repo_url, "1.1.0")
    manifest = _manifest(tmp_path, [{"name": "app", "repo": repo_url, "version": ">=1.0.0"}])  # newest: 2.0.0
    bundle = tmp_path / "bundle"
    result = mirror_cli("collect", manifest, "--lock", _write(tmp_path, lock), "-o", bundle, "--no-cache", "-q")
    assert result.exit_code == 0, result.stderr
    [chart] = [a for a in parse_inventory((bundle / "inventory.json").read_bytes()).artifacts if a.kind == "chart"]
    assert (chart.extra["version"], chart.digest) == ("1.1.0", lock["artifacts"][0]["digest"])


def test_a_chart_version_with_other_content_upstream_exits_4(tmp_path, mirror_cli, repo_url) -> None:
    lock = _chart_lock(mirror_cli, tmp_path, repo_url, "1.1.0")
    lock["artifacts"][0]["digest"] = "sha256:" + "0" * 64  # what upstream served when the lock was made
    manifest = _manifest(tmp_path, [{"name": "app", "repo": repo_url, "version": ">=1.0.0"}])
    result = mirror_cli("collect", manifest, "--lock", _write(tmp_path, lock), "-o", tmp_path / "b", "--no-cache")
    assert result.exit_code == 4
    assert "[LOCK_DIGEST_CHANGED]" in result.stderr
    assert not (tmp_path / "b").exists()


def test_a_locked_chart_version_outside_the_constraint_is_refused_before_any_request(
    tmp_path, mirror_cli, repo_url
) -> None:
    lock = _chart_lock(mirror_cli, tmp_path, repo_url, "1.1.0")
    manifest = _manifest(tmp_path, [{"name": "app", "repo": repo_url, "version": ">=2.0.0"}])
    result = mirror_cli("collect", manifest, "--lock", _write(tmp_path, lock), "-o", tmp_path / "b", "--no-cache")
    assert result.exit_code == 2
    assert "[LOCK_MISMATCH]" in result.stderr and "nothing was contacted" in result.stderr


def test_a_git_source_is_collected_at_the_locked_commit(tmp_path, mirror_cli, services) -> None:
    repo = make_upstream_repo(services, f"t{uuid.uuid4().hex[:8]}/locked")
    manifest = _manifest(tmp_path, git=[{"name": "fleet", "url": repo["url"], "ref": {"branch": "main"}}])
    lock = _resolved(mirror_cli, manifest)
    bundle = tmp_path / "bundle"
    result = mirror_cli("collect", manifest, "--lock", _write(tmp_path, lock), "-o", bundle, "--no-cache", "-q")
    assert result.exit_code == 0, result.stderr
    [git] = [a for a in parse_inventory((bundle / "inventory.json").read_bytes()).artifacts if a.kind == "git"]
    assert git.extra["commit"] == lock["artifacts"][0]["commit"]


def _git_artifact(bundle: Path):
    [git] = [a for a in parse_inventory((bundle / "inventory.json").read_bytes()).artifacts if a.kind == "git"]
    return git


def test_a_branch_moved_since_the_lock_is_carried_at_the_locked_commit(tmp_path, mirror_cli, services) -> None:
    repo = make_upstream_repo(services, f"t{uuid.uuid4().hex[:8]}/moving")
    manifest = _manifest(tmp_path, git=[{"name": "fleet", "url": repo["url"], "ref": {"branch": "main"}}])
    lock = _resolved(mirror_cli, manifest)
    locked = lock["artifacts"][0]["commit"]
    moved = add_commit(services, repo["name"], "main", {"new.txt": "after the lock\n"})
    bundle = tmp_path / "bundle"
    result = mirror_cli("collect", manifest, "--lock", _write(tmp_path, lock), "-o", bundle, "--no-cache", "-q")
    assert result.exit_code == 0, result.stderr
    git = _git_artifact(bundle)
    assert git.extra["commit"] == locked
    assert git.extra["heads"]["refs/heads/main"] == locked
    listed = subprocess.run(
        ["git", "bundle", "list-heads", bundle / "blobs" / "sha256" / git.digest.removeprefix("sha256:")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert f"{locked} refs/heads/main" in listed and moved not in listed


def test_a_branch_rewritten_since_the_lock_exits_2_naming_the_locked_commit(tmp_path, mirror_cli, services) -> None:
    repo = make_upstream_repo(services, f"t{uuid.uuid4().hex[:8]}/rewritten")
    manifest = _manifest(tmp_path, git=[{"name": "fleet", "url": repo["url"], "ref": {"branch": "main"}}])
    lock = _resolved(mirror_cli, manifest)
    rewrite_branch(services, repo["name"], "main")
    result = mirror_cli("collect", manifest, "--lock", _write(tmp_path, lock), "-o", tmp_path / "b", "--no-cache")
    assert result.exit_code == 2
    assert f"the locked commit {lock['artifacts'][0]['commit']} is no longer in the history" in result.stderr
    assert not (tmp_path / "b").exists()


def test_a_tag_moved_since_the_lock_is_refused_naming_both_commits(tmp_path, mirror_cli, services) -> None:
    repo = make_upstream_repo(services, f"t{uuid.uuid4().hex[:8]}/tagged")
    [tag, *_] = sorted(t for t, commit in repo["tags"].items() if commit != repo["heads"]["main"])
    manifest = _manifest(tmp_path, git=[{"name": "fleet", "url": repo["url"], "ref": {"tag": tag}}])
    lock = _resolved(mirror_cli, manifest)
    moved = move_tag(services, repo["name"], tag, repo["heads"]["main"])
    result = mirror_cli("collect", manifest, "--lock", _write(tmp_path, lock), "-o", tmp_path / "b", "--no-cache")
    assert result.exit_code == 2
    assert "[LOCK_MISMATCH]" in result.stderr
    assert lock["artifacts"][0]["commit"] in result.stderr and moved in result.stderr


def _annotated(tmp_path: Path, repo_url: str) -> Path:
    """A MirrorSet of the chart whose artifacthub.io/images annotation names images of the upstream registry."""
    path = _manifest(tmp_path, [{"name": "annotated", "repo": repo_url, "images": True}])
    document = json.loads(path.read_text())
    document["spec"]["registries"] = {UPSTREAM_REGISTRY: {"plainHTTP": True}}
    path.write_text(json.dumps(document))
    return path


def test_images_a_chart_uses_are_collected_by_their_locked_digests(tmp_path, mirror_cli, repo_url) -> None:
    manifest = _annotated(tmp_path, repo_url)
    lock = _resolved(mirror_cli, manifest)
    found = {a["source"]: a["digest"] for a in lock["artifacts"] if a["kind"] == "image"}
    assert found and all(a["via"] == "chart" for a in lock["artifacts"] if a["kind"] == "image")
    bundle = tmp_path / "bundle"
    result = mirror_cli("collect", manifest, "--lock", _write(tmp_path, lock), "-o", bundle, "--no-cache", "-q")
    assert result.exit_code == 0, result.stderr
    inventory = parse_inventory((bundle / "inventory.json").read_bytes())
    assert {a.source: a.digest for a in inventory.artifacts if a.kind == "image"} == found


def test_an_image_a_chart_uses_that_the_lock_lacks_is_refused_before_any_image_is_resolved(
    tmp_path, mirror_cli, repo_url
) -> None:
    manifest = _annotated(tmp_path, repo_url)
    lock = _resolved(mirror_cli, manifest)
    [dropped, *_] = [a for a in lock["artifacts"] if a["kind"] == "image"]
    lock["artifacts"].remove(dropped)
    stray = {**dropped, "source": dropped["source"].rsplit(":", 1)[0] + ":not-used"}
    lock["artifacts"].append(stray)
    result = mirror_cli("collect", manifest, "--lock", _write(tmp_path, lock), "-o", tmp_path / "b", "--no-cache")
    assert result.exit_code == 2
    assert f"[LOCK_MISSING] image {dropped['source']}" in result.stderr
    assert "[LOCK_UNEXPECTED]" in result.stderr and ":not-used" in result.stderr
    assert "no image was resolved" in result.stderr


@pytest.fixture
def served(services) -> tuple[str, Path]:
    """A fresh directory under the nginx document root, and its URL."""
    name = f"lockfiles-{uuid.uuid4().hex[:8]}"
    directory = services.charts_dir / name
    directory.mkdir()
    return f"{services.charts_url}/{name}", directory


def _file_set(tmp_path: Path, url: str) -> Path:
    document = mirrorset([])
    document["spec"]["files"] = [{"url": url, "sha256": "trust-on-first-use"}]
    path = tmp_path / f"files-{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(json.dumps(document))
    return path


def test_a_file_trusted_on_first_use_is_collected_with_the_locked_bytes(tmp_path, mirror_cli, served) -> None:
    url, directory = served
    (directory / "install.sh").write_bytes(b"echo reviewed\n")
    manifest = _file_set(tmp_path, f"{url}/install.sh")
    lock = _resolved(mirror_cli, manifest)
    bundle = tmp_path / "bundle"
    result = mirror_cli("collect", manifest, "--lock", _write(tmp_path, lock), "-o", bundle, "--no-cache", "-q")
    assert result.exit_code == 0, result.stderr
    [file] = [a for a in parse_inventory((bundle / "inventory.json").read_bytes()).artifacts if a.kind == "file"]
    assert f"sha256:{file.extra['fileSha256']}" == lock["artifacts"][0]["digest"]


def test_a_file_upstream_changed_since_the_lock_exits_4(tmp_path, mirror_cli, served) -> None:
    url, directory = served
    (directory / "install.sh").write_bytes(b"echo reviewed\n")
    manifest = _file_set(tmp_path, f"{url}/install.sh")
    lock = _resolved(mirror_cli, manifest)
    (directory / "install.sh").write_bytes(b"echo something else\n")
    result = mirror_cli("collect", manifest, "--lock", _write(tmp_path, lock), "-o", tmp_path / "b", "--no-cache")
    assert result.exit_code == 4, result.stderr
    assert lock["artifacts"][0]["digest"].removeprefix("sha256:") in result.stderr
    assert not (tmp_path / "b").exists()


def test_a_file_changed_since_the_lock_names_the_lock_as_the_pin_and_says_to_resolve_again(
    tmp_path, mirror_cli, served
) -> None:
    url, directory = served
    (directory / "install.sh").write_bytes(b"echo reviewed\n")
    manifest = _file_set(tmp_path, f"{url}/install.sh")
    lock_file = _write(tmp_path, _resolved(mirror_cli, manifest))
    (directory / "install.sh").write_bytes(b"echo something else\n")
    result = mirror_cli("collect", manifest, "--lock", lock_file, "-o", tmp_path / "b", "--no-cache")
    assert result.exit_code == 4, result.stderr
    assert "spec.files[0] pins" not in result.stderr
    assert f"the lock ({Path(lock_file).name}" in result.stderr
    assert "mirror resolve --json" in result.stderr
    assert "update sha256" not in result.stderr
