"""The review's git log takes commit ids read from an untrusted inventory: nothing else reaches git."""

from __future__ import annotations

from pathlib import Path

from mirror.bundle.inventory import ArtifactRecord
from mirror.review.diff import _heads
from mirror.review.gitlog import git_history

OID = "a" * 40


def test_a_ref_value_that_git_would_read_as_an_option_is_not_logged_and_writes_nothing(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep me\n")
    with git_history() as history:
        result = history.log(f"--output={victim}", OID)
    assert result.commits == [] and result.total == 0
    assert "not a commit id" in result.note
    assert victim.read_text() == "keep me\n"


def test_inventory_heads_keep_only_full_commit_ids() -> None:
    record = ArtifactRecord(
        "git",
        "https://git.example/fleet.git",
        "sha256:" + "0" * 64,
        "application/x-git-bundle",
        1,
        {"heads": {"refs/heads/main": OID, "refs/heads/evil": "--output=/tmp/x", "refs/tags/short": "abc123"}},
    )
    assert _heads(record) == {"refs/heads/main": OID}
