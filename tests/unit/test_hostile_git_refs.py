"""An upstream that advertises ref names git refuses: they are left out and reported, the source still travels."""

from __future__ import annotations

from pathlib import Path

from mirror.collector.run import collect
from mirror.git.refs import parse_ls_remote
from mirror.progress import Progress
from tests.support.hostile import HostileServer
from tests.support.hostile.dumbgit import bare_repository, dumb_git, head_commit

OID = "a" * 40


def test_ls_remote_output_keeps_valid_refs_and_sets_aside_names_git_refuses() -> None:
    refs = parse_ls_remote(
        f"{OID}\tHEAD\n{OID}\trefs/heads/main\n{OID}\trefs/tags/v1\n{OID}\trefs/tags/v1^{{}}\n"
        f"{OID}\trefs/heads/bad..name\n{OID}\trefs/tags/v2.lock\n{OID}\trefs/tags/with space\n"
    )
    assert sorted(refs) == ["HEAD", "refs/heads/main", "refs/tags/v1", "refs/tags/v1^{}"]
    assert refs.invalid == ("refs/heads/bad..name", "refs/tags/v2.lock", "refs/tags/with space")


def test_a_tag_name_git_refuses_does_not_break_the_whole_source(tmp_path: Path) -> None:
    bare = bare_repository(tmp_path, tags=("v1.0.0", "v1.1.0"))
    commit = head_commit(bare)
    hostile = dumb_git(bare, lambda text: text + f"{commit}\trefs/tags/v1.5.0.lock\n{commit}\trefs/heads/a..b\n")
    with HostileServer(hostile) as server:
        manifest = tmp_path / "m.yaml"
        manifest.write_text(
            "apiVersion: mirror/v1\nkind: MirrorSet\nmetadata: {name: t}\nspec:\n  git:\n"
            f'    - {{name: r, url: "{server.url}/repo.git", ref: {{semver: ">=1.0.0"}}}}\n'
        )
        progress = Progress(quiet=True)
        result = collect([manifest], tmp_path / "out", progress=progress)
    [git] = [a for a in result.inventory.artifacts if a.kind == "git"]
    assert sorted(git.extra["heads"]) == ["refs/tags/v1.0.0", "refs/tags/v1.1.0"]
    assert any("v1.5.0.lock" in w and "a..b" in w for w in progress.warnings)
