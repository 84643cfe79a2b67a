"""The relocation commit: on top of the carried upstream commit, the endpoint edits only, reproducible byte for byte."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from mirror.git.relocate import relocation_commit

FLEET = {
    "clusters/prod/sources.yaml": "# upstream\nkind: GitRepository\nspec:\n  url: https://github.com/x/apps\n",
    "apps/deploy.yaml": "kind: Deployment\n",
    "README.md": "url: https://github.com/x/apps\n",
}


def _git(repo: Path, *args: str, env: dict[str, str] | None = None) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, env=env
    ).stdout.strip()


def _upstream(path: Path, files: dict[str, str] = FLEET) -> tuple[Path, str]:
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True)
    for name, text in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "Upstream",
        "GIT_AUTHOR_EMAIL": "up@example.com",
        "GIT_COMMITTER_NAME": "Upstream",
        "GIT_COMMITTER_EMAIL": "up@example.com",
        "GIT_COMMITTER_DATE": "1700000000 +0100",
        "GIT_AUTHOR_DATE": "1600000000 +0000",
    }
    _git(path, "add", "-A", env=env)
    _git(path, "commit", "-qm", "upstream", env=env)
    return path, _git(path, "rev-parse", "HEAD")


def _point_inside(path: str, text: str) -> str:
    if not path.endswith(".yaml"):
        raise AssertionError(f"{path}: only YAML files are offered for edits")
    return text.replace("https://github.com/x/apps", "https://git.internal/x/apps.git")


@pytest.fixture
def upstream(tmp_path: Path) -> tuple[Path, str]:
    return _upstream(tmp_path / "up")


def test_the_relocation_commit_sits_on_the_upstream_commit_with_mirrors_identity_and_the_upstream_date(upstream):
    repo, commit = upstream
    relocated, _ = relocation_commit(repo / ".git", commit, _point_inside)
    assert _git(repo, "rev-parse", f"{relocated}^") == commit
    assert _git(repo, "log", "-1", "--format=%an <%ae> %at|%cn <%ce> %ct %cd", "--date=raw", relocated) == (
        "mirror <mirror@localhost> 1700000000|mirror <mirror@localhost> 1700000000 1700000000 +0100"
    )


def test_the_relocation_diff_is_exactly_the_edited_lines(upstream):
    repo, commit = upstream
    relocated, edited = relocation_commit(repo / ".git", commit, _point_inside)
    assert edited == ["clusters/prod/sources.yaml"]
    diff = _git(repo, "diff", "--unified=0", "--no-color", commit, relocated)
    changed = [line for line in diff.splitlines() if line[:1] in "+-" and line[:3] not in ("+++", "---")]
    assert changed == ["-  url: https://github.com/x/apps", "+  url: https://git.internal/x/apps.git"]
    assert _git(repo, "show", f"{relocated}:README.md") == "url: https://github.com/x/apps"


def test_the_same_upstream_commit_and_edits_give_the_same_commit_id_in_another_repository(upstream, tmp_path):
    repo, commit = upstream
    other = tmp_path / "other.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(repo), str(other)], check=True)
    first, _ = relocation_commit(repo / ".git", commit, _point_inside)
    assert relocation_commit(other, commit, _point_inside)[0] == first


def test_a_commit_without_anything_to_edit_still_gets_a_relocation_commit_with_the_same_tree(upstream):
    repo, commit = upstream
    relocated, edited = relocation_commit(repo / ".git", commit, lambda path, text: text)
    assert edited == []
    assert _git(repo, "rev-parse", f"{relocated}^{{tree}}") == _git(repo, "rev-parse", f"{commit}^{{tree}}")
    assert _git(repo, "rev-parse", f"{relocated}^") == commit


def test_an_executable_yaml_file_keeps_its_mode(tmp_path):
    repo, _ = _upstream(tmp_path / "up")
    (repo / "clusters/prod/sources.yaml").chmod(0o755)
    _git(repo, "-c", "user.name=u", "-c", "user.email=u@x", "commit", "-qam", "exec")
    commit = _git(repo, "rev-parse", "HEAD")
    relocated, _ = relocation_commit(repo / ".git", commit, _point_inside)
    assert _git(repo, "ls-tree", relocated, "clusters/prod/sources.yaml").startswith("100755 blob ")


def test_with_containing_only_the_yaml_files_holding_that_text_are_offered_for_edits(upstream):
    repo, commit = upstream
    offered: list[str] = []

    def edit(path: str, text: str) -> str:
        offered.append(path)
        return text

    relocation_commit(repo / ".git", commit, edit, containing="kind: GitRepository")
    assert offered == ["clusters/prod/sources.yaml"]
