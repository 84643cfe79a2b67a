"""Which bundles `mirror restore` accepts, and in which order, read from the journal alone (docs/day-two.md,
"Restore")."""

from __future__ import annotations

from pathlib import Path

import pytest

from mirror.errors import UsageError, VerificationError
from mirror.importer.restore_chain import BundleHead, plan_chain
from tests.support.prunejournals import TARGET, digest, entries, night, write_nights


def head(n: int, base: int | None = None, *, git: bool = False) -> BundleHead:
    return BundleHead(
        f"/archive/night-{n}.tar",
        digest(f"inventory {n}"),
        f"night-{n}",
        None if base is None else digest(f"inventory {base}"),
        git,
    )


@pytest.fixture
def three_nights(tmp_path: Path) -> Path:
    """Night 1 full, nights 2 and 3 incremental, each on the one before; imported in order."""
    return write_nights(tmp_path, [night(n, []) for n in (1, 2, 3)])


def test_the_chain_is_restored_in_the_order_it_was_first_imported_whatever_order_it_is_given(
    three_nights: Path,
) -> None:
    chain = plan_chain([head(3, 2), head(1), head(2, 1)], entries(three_nights), git=False)
    assert [link.head.bundle_id for link in chain] == ["night-1", "night-2", "night-3"]
    assert [link.restores for link in chain] == [1, 2, 3]


def test_a_later_full_bundle_starts_a_chain_that_needs_nothing_before_it(tmp_path: Path) -> None:
    state_file = write_nights(tmp_path, [night(n, []) for n in (1, 2, 3, 4)])
    chain = plan_chain([head(3), head(4, 3)], entries(state_file), git=False)
    assert [link.head.bundle_id for link in chain] == ["night-3", "night-4"]


def test_a_bundle_the_journal_does_not_list_as_imported_is_refused(three_nights: Path) -> None:
    with pytest.raises(VerificationError) as refused:
        plan_chain([head(1), head(2, 1), head(3, 2), head(7, 3)], entries(three_nights), git=False)
    assert [p.code for p in refused.value.problems] == ["RESTORE_NOT_IMPORTED"]
    assert "night-7" in refused.value.problems[0].message


def test_a_refused_or_partial_attempt_is_not_an_import_to_restore(tmp_path: Path) -> None:
    state_file = write_nights(tmp_path, [night(1, []), night(2, [], result="partial")])
    with pytest.raises(VerificationError) as refused:
        plan_chain([head(1), head(2, 1)], entries(state_file), git=False)
    assert [p.code for p in refused.value.problems] == ["RESTORE_NOT_IMPORTED"]


def test_an_incremental_bundle_without_its_base_is_refused_naming_it(three_nights: Path) -> None:
    with pytest.raises(UsageError) as refused:
        plan_chain([head(1), head(3, 2)], entries(three_nights), git=False)
    codes = [p.code for p in refused.value.problems]  # type: ignore[union-attr]
    assert "RESTORE_BASE_MISSING" in codes
    assert any(digest("inventory 2") in str(p) for p in refused.value.problems)


def test_leaving_out_a_bundle_imported_after_the_first_one_given_is_refused(three_nights: Path) -> None:
    with pytest.raises(UsageError) as refused:
        plan_chain([head(1), head(2, 1)], entries(three_nights), git=False)
    [problem] = refused.value.problems
    assert problem.code == "RESTORE_INCOMPLETE" and "night-3" in problem.message  # type: ignore[union-attr]


def test_bundles_imported_to_another_target_are_not_required(tmp_path: Path) -> None:
    state_file = write_nights(tmp_path, [night(1, []), night(2, [], registry="https://other.test"), night(3, [])])
    chain = plan_chain([head(1), head(3)], entries(state_file), git=False)
    assert [link.head.bundle_id for link in chain] == ["night-1", "night-3"]


def test_the_same_bundle_given_twice_is_refused(three_nights: Path) -> None:
    with pytest.raises(UsageError) as refused:
        plan_chain([head(1), head(1), head(2, 1), head(3, 2)], entries(three_nights), git=False)
    assert [p.code for p in refused.value.problems] == ["RESTORE_DUPLICATE"]  # type: ignore[union-attr]


def test_git_sources_without_a_git_target_are_refused(three_nights: Path) -> None:
    with pytest.raises(UsageError) as refused:
        plan_chain([head(1, git=True), head(2, 1), head(3, 2)], entries(three_nights), git=False)
    assert [p.code for p in refused.value.problems] == ["RESTORE_GIT_NEEDED"]  # type: ignore[union-attr]


def test_a_chain_restored_before_is_restored_again_in_its_first_order_repeating_its_latest_entries(
    tmp_path: Path,
) -> None:
    state_file = write_nights(tmp_path, [night(1, []), night(2, [])])
    restored = [{**night(n, [], registry="https://new.test"), "result": "restored", "restores": n} for n in (1, 2)]
    write_nights(tmp_path, restored, kind="restore")
    chain = plan_chain([head(2, 1), head(1)], entries(state_file), git=False)
    assert [(link.head.bundle_id, link.restores) for link in chain] == [("night-1", 3), ("night-2", 4)]
    assert {link.target for link in chain} == {TARGET}  # where it was first imported
