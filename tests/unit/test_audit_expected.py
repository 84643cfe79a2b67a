"""The journal folded into what the targets should hold (mirror/audit/expected.py), on crafted journals; and the
Git comparison on refs as a server would list them (mirror/audit/git.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mirror.audit.drift import Drift
from mirror.audit.expected import Expected, fold
from mirror.audit.git import check_git
from mirror.git.refs import RemoteRefs
from mirror.limits import DEFAULT_LIMITS
from mirror.trust.journal import journal_file_for
from mirror.trust.journal_read import iter_entries
from mirror.trust.journal_write import open_journal
from mirror.trust.lock import state_lock
from tests.support.journals import REGISTRY, hexdigest, import_fields

APP = ("mirror/team/app", "1.0")
GIT = "https://git.test/base"
FLEET = "https://git.test/base/fleet.git"


def journal(tmp_path: Path, *entries: tuple[str, dict[str, Any]]) -> Path:
    tmp_path.mkdir(exist_ok=True)
    state_file = tmp_path / "state.json"
    with state_lock(state_file):
        writer = open_journal(state_file, limits=DEFAULT_LIMITS, importers=None, signer=None)
        for kind, fields in entries:
            writer.append(kind, fields)
    return state_file


def folded(state_file: Path, registry: str = REGISTRY, git: str | None = GIT) -> Expected:
    return fold(iter_entries(journal_file_for(state_file)), registry, git)


def image(n: int) -> str:
    return f"sha256:{hexdigest(f'image {n}')}"


def prune(deleted: list[dict[str, Any]] | None, kept: list[int], result: str = "pruned") -> dict[str, Any]:
    return {
        "result": result,
        "exitCode": 0 if result == "pruned" else 4,
        "registry": REGISTRY,
        "kept": [f"sha256:{hexdigest(f'inventory {n}')}" for n in kept],
        "deleted": deleted,
        "problems": [],
        "message": None,
    }


def test_a_later_import_moves_the_tag_and_both_images_stay_expected(tmp_path: Path) -> None:
    one, two = import_fields(1, tag="1.0"), import_fields(2, tag="1.0")
    expected = folded(journal(tmp_path, ("import", one), ("import", two)))
    assert expected.tags[APP] == image(2)
    assert {("mirror/team/app", image(1)), ("mirror/team/app", image(2))} <= set(expected.manifests)
    assert [b.bundle_id for b in expected.bundles.values()] == ["night-1", "night-2"]


def test_a_restore_of_an_earlier_bundle_moves_its_tags_back_and_holds_it_again(tmp_path: Path) -> None:
    deleted = [{"repository": "mirror/team/app", "digest": image(1), "tags": []}]
    restored = {**import_fields(1, tag="1.0"), "result": "restored", "restores": 1}
    entries = [
        ("import", import_fields(1, tag="1.0")),
        ("import", import_fields(2, tag="1.0")),
        ("prune", prune(deleted, [2])),
        ("restore", restored),
    ]
    expected = folded(journal(tmp_path, *entries))
    assert expected.tags[APP] == image(1) and ("mirror/team/app", image(1)) in expected.manifests
    assert [b.bundle_id for b in expected.bundles.values()] == ["night-2", "night-1"]


def test_refused_and_failed_imports_expect_nothing(tmp_path: Path) -> None:
    expected = folded(journal(tmp_path, ("import", import_fields(1, result="refused"))))
    assert expected.tags == {} and expected.bundles == {} and expected.refs == {}


def test_a_partial_import_tolerates_its_tags_without_holding_its_bundle(tmp_path: Path) -> None:
    partial = import_fields(2, result="partial", tag="1.0")
    expected = folded(journal(tmp_path, ("import", import_fields(1, tag="1.0")), ("import", partial)))
    assert expected.tags[APP] == image(1) and expected.tolerated_tags[APP] == {image(2)}
    assert [b.bundle_id for b in expected.bundles.values()] == ["night-1"]
    assert any("partial import of bundle night-2" in note for note in expected.notes)


def test_a_prune_removes_what_it_deleted_and_the_bundles_it_did_not_keep(tmp_path: Path) -> None:
    deleted = [{"repository": "mirror/team/app", "digest": image(1), "tags": ["1.0"]}]
    entries = [("import", import_fields(1, tag="1.0")), ("import", import_fields(2)), ("prune", prune(deleted, [2]))]
    expected = folded(journal(tmp_path, *entries))
    assert APP not in expected.tags and ("mirror/team/app", image(1)) not in expected.manifests
    assert expected.tags[("mirror/team/app", "2.0")] == image(2)
    assert [b.bundle_id for b in expected.bundles.values()] == ["night-2"]
    assert "mirror/team/app" in expected.repositories


def test_a_prune_that_did_not_list_its_deletions_expects_what_the_kept_bundles_wrote(tmp_path: Path) -> None:
    entries = [("import", import_fields(1, tag="1.0")), ("import", import_fields(2)), ("prune", prune(None, [2]))]
    expected = folded(journal(tmp_path, *entries))
    assert set(expected.tags) == {("mirror/team/app", "2.0")}
    assert any("did not list what it deleted" in note for note in expected.notes)


def test_imports_into_another_registry_are_not_expected_here(tmp_path: Path) -> None:
    elsewhere = {**import_fields(1), "registry": "https://other.test"}
    expected = folded(journal(tmp_path, ("import", elsewhere), ("import", import_fields(2))))
    assert set(expected.tags) == {("mirror/team/app", "2.0")}
    assert expected.other_registries == {"https://other.test"}


def test_an_entry_that_did_not_list_its_writes_turns_off_the_search_for_unexpected_things(tmp_path: Path) -> None:
    unlisted = {**import_fields(1), "written": None}
    expected = folded(journal(tmp_path, ("import", unlisted)))
    assert expected.complete is False and expected.tags == {}


def test_refs_follow_the_latest_import_into_the_audited_git_base(tmp_path: Path) -> None:
    expected = folded(journal(tmp_path, ("import", import_fields(1)), ("import", import_fields(2))))
    assert expected.refs == {(FLEET, "refs/heads/main"): hexdigest("commit 2")[:40]}
    assert folded(journal(tmp_path / "x", ("import", import_fields(1))), git=None).refs == {}


class _Server:
    """Stands in for GitTarget: the refs each repository lists (None: no such repository)."""

    def __init__(self, refs: dict[str, dict[str, str] | None]) -> None:
        self.listed = {url: None if r is None else RemoteRefs(r) for url, r in refs.items()}

    def refs_of(self, urls: Any, jobs: int) -> dict[str, RemoteRefs | None]:
        return {url: self.listed.get(url) for url in urls}


def git_drift(expected: Expected, refs: dict[str, dict[str, str] | None]) -> list[tuple[str, str]]:
    found: list[Drift] = []

    def report(drift: Iterator[Drift]) -> None:
        found.extend(drift)

    check_git(expected, _Server(refs), jobs=1, only_journaled=False, report=report)  # type: ignore[arg-type]
    return [(d.code, d.subject) for d in sorted(found)]


def test_git_refs_where_the_journal_left_them_are_clean(tmp_path: Path) -> None:
    expected = folded(journal(tmp_path, ("import", import_fields(1))))
    commit = hexdigest("commit 1")[:40]
    assert git_drift(expected, {FLEET: {"HEAD": commit, "refs/heads/main": commit}}) == []


def test_a_force_pushed_branch_is_ref_moved_and_a_pushed_one_ref_unexpected(tmp_path: Path) -> None:
    expected = folded(journal(tmp_path, ("import", import_fields(1))))
    other = hexdigest("rewritten")[:40]
    refs = {FLEET: {"refs/heads/main": other, "refs/tags/v9": other, "refs/tags/v9^{}": other}}
    assert git_drift(expected, refs) == [
        ("REF_MOVED", f"{FLEET} refs/heads/main"),
        ("REF_UNEXPECTED", f"{FLEET} refs/tags/v9"),
    ]


def test_a_deleted_repository_is_ref_missing(tmp_path: Path) -> None:
    expected = folded(journal(tmp_path, ("import", import_fields(1))))
    assert git_drift(expected, {FLEET: None}) == [("REF_MISSING", f"{FLEET} refs/heads/main")]


def test_the_crafted_journal_is_what_the_reader_reads(tmp_path: Path) -> None:
    state_file = journal(tmp_path, ("import", import_fields(1)))
    assert json.loads(journal_file_for(state_file).read_bytes())["kind"] == "import"
