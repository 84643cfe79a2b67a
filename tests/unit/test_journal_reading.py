"""The reading API that audit and prune build on: entries streamed in order, and the bundles imported."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from mirror.limits import DEFAULT_LIMITS
from mirror.trust.journal import JournalError, journal_file_for
from mirror.trust.journal_read import LandedImage, LandedRef, imported_bundles, iter_entries
from mirror.trust.journal_write import open_journal
from mirror.trust.lock import state_lock
from tests.support.journals import REGISTRY, hexdigest, import_fields, lines, rewrite, write_journal


def test_entries_come_in_order_with_their_number_kind_time_and_body(tmp_path: Path) -> None:
    state_file = write_journal(tmp_path, 3)
    entries = list(iter_entries(journal_file_for(state_file)))
    assert [e.seq for e in entries] == [1, 2, 3]
    assert {e.kind for e in entries} == {"import"}
    assert all(e.time.tzinfo == dt.UTC for e in entries)
    assert entries[1].body["bundleId"] == "night-2"
    assert entries[2].prev == "sha256:" + entries[1].sha256


def test_reading_stops_at_the_first_broken_link(tmp_path: Path) -> None:
    state_file = write_journal(tmp_path, 3)
    written = lines(state_file)
    rewrite(state_file, [written[0], written[2]])
    seen = []
    with pytest.raises(JournalError) as broken:
        for entry in iter_entries(journal_file_for(state_file)):
            seen.append(entry.seq)
    assert seen == [1]
    assert [p.code for p in broken.value.problems] == ["JOURNAL_CHAIN_BROKEN"]
    assert broken.value.exit_code == 3


def test_an_incomplete_last_line_is_not_an_entry(tmp_path: Path) -> None:
    state_file = write_journal(tmp_path, 2)
    with journal_file_for(state_file).open("ab") as journal:
        journal.write(b'{"v":1')
    assert [e.seq for e in iter_entries(journal_file_for(state_file))] == [1, 2]


def test_a_missing_journal_has_no_entries(tmp_path: Path) -> None:
    assert list(iter_entries(tmp_path / "state.json.journal")) == []


def test_imported_bundles_lists_what_each_import_landed(tmp_path: Path) -> None:
    state_file = write_journal(tmp_path, 2)
    first, second = imported_bundles(iter_entries(journal_file_for(state_file)))
    assert (first.seq, first.bundle_id, second.bundle_id) == (1, "night-1", "night-2")
    assert first.inventory == f"sha256:{hexdigest('inventory 1')}" and first.sequence == 1
    assert first.registry == REGISTRY and first.git == "https://git.test/base"
    image = f"sha256:{hexdigest('image 1')}"
    assert first.images == (
        LandedImage("mirror/team/app", "1.0", image, tuple(sorted([image, f"sha256:{hexdigest('child 1')}"]))),
    )
    assert [m.digest for m in first.attached] == [f"sha256:{hexdigest('sig 1')}"]
    assert second.refs == (LandedRef("https://git.test/base/fleet.git", "refs/heads/main", hexdigest("commit 2")[:40]),)


def test_imported_bundles_skips_refused_and_partial_attempts_and_keeps_the_latest_import_of_each_bundle(
    tmp_path: Path,
) -> None:
    state_file = tmp_path / "state.json"
    with state_lock(state_file):
        writer = open_journal(state_file, limits=DEFAULT_LIMITS, importers=None, signer=None)
        writer.append("import", import_fields(1))
        writer.append("import", import_fields(2, result="partial"))
        writer.append("import", import_fields(3, result="refused"))
        writer.append("import", import_fields(2))
        writer.append("import", import_fields(1))  # the same bundle again
    bundles = imported_bundles(iter_entries(journal_file_for(state_file)))
    assert [(b.seq, b.bundle_id) for b in bundles] == [(4, "night-2"), (5, "night-1")]


def test_a_restored_entry_is_the_latest_import_of_its_bundle(tmp_path: Path) -> None:
    state_file = write_journal(tmp_path, 2)
    restored = {**import_fields(1), "result": "restored", "restores": 1, "registry": "https://new.test/mirror"}
    with state_lock(state_file):
        open_journal(state_file, limits=DEFAULT_LIMITS, importers=None, signer=None).append("restore", restored)
    bundles = imported_bundles(iter_entries(journal_file_for(state_file)))
    assert [(b.seq, b.bundle_id, b.registry) for b in bundles] == [
        (2, "night-2", REGISTRY),
        (3, "night-1", "https://new.test/mirror"),
    ]


def test_a_restore_entry_without_the_entry_it_repeats_is_not_an_entry_of_the_format(tmp_path: Path) -> None:
    state_file = write_journal(tmp_path, 1)
    with state_lock(state_file), pytest.raises(ValueError, match="restores"):
        open_journal(state_file, limits=DEFAULT_LIMITS, importers=None, signer=None).append(
            "restore", {**import_fields(1), "result": "restored"}
        )
