"""The import journal's chain and head: written, checked whole, and every kind of damage found (docs/journal.md)."""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import replace
from pathlib import Path

import pytest

from mirror.limits import DEFAULT_LIMITS
from mirror.trust.journal import JournalError, journal_file_for
from mirror.trust.journal_read import check_journal
from mirror.trust.journal_write import open_journal
from mirror.trust.lock import state_lock
from mirror.trust.state import CollectorRecord, JournalHead, TrustState, load_state, save_state
from tests.support.journals import append_entry, import_fields, lines, rewrite, write_journal


def codes(state_file: Path) -> list[str]:
    return [p.code for p in check_journal(state_file).problems]


# --- written -----------------------------------------------------------------------------------------------


def test_each_entry_is_one_canonical_json_line_chained_to_the_previous_line(tmp_path: Path) -> None:
    state_file = write_journal(tmp_path, 3)
    written = lines(state_file)
    assert len(written) == 3
    for number, line in enumerate(written, 1):
        entry = json.loads(line)
        assert line == json.dumps(entry, sort_keys=True, separators=(",", ":")).encode() + b"\n"
        assert (entry["v"], entry["seq"], entry["kind"]) == (1, number, "import")
    assert json.loads(written[0])["prev"] is None
    for before, line in itertools.pairwise(written):
        assert json.loads(line)["prev"] == "sha256:" + hashlib.sha256(before).hexdigest()  # `sha256sum` of it


def test_the_state_file_records_the_head_entry_count_and_last_line_hash(tmp_path: Path) -> None:
    state_file = write_journal(tmp_path, 2)
    head = load_state(state_file).journal
    assert head == JournalHead(2, hashlib.sha256(lines(state_file)[-1]).hexdigest())
    assert json.loads(state_file.read_bytes())["journal"] == {"entries": 2, "sha256": head.sha256}


def test_a_journal_as_written_checks_clean(tmp_path: Path) -> None:
    state_file = write_journal(tmp_path, 3)
    check = check_journal(state_file)
    assert check.problems == [] and check.notes == []
    assert check.entries == 3


def test_no_state_and_no_journal_is_a_fresh_installation_whose_first_entry_has_no_previous(tmp_path: Path) -> None:
    state_file = tmp_path / "state.json"
    assert check_journal(state_file).problems == []
    append_entry(state_file, 1)
    [line] = lines(state_file)
    assert json.loads(line)["prev"] is None and json.loads(line)["seq"] == 1


def test_appending_never_rewrites_earlier_lines(tmp_path: Path) -> None:
    state_file = write_journal(tmp_path, 2)
    before = journal_file_for(state_file).read_bytes()
    append_entry(state_file, 3)
    assert journal_file_for(state_file).read_bytes().startswith(before)


# --- damage ------------------------------------------------------------------------------------------------


def test_the_last_line_removed_is_truncation(tmp_path: Path) -> None:
    state_file = write_journal(tmp_path, 3)
    rewrite(state_file, lines(state_file)[:-1])
    assert codes(state_file) == ["JOURNAL_TRUNCATED"]


def test_an_emptied_journal_is_truncation(tmp_path: Path) -> None:
    state_file = write_journal(tmp_path, 2)
    rewrite(state_file, [])
    assert codes(state_file) == ["JOURNAL_TRUNCATED"]


def test_a_deleted_journal_is_missing(tmp_path: Path) -> None:
    state_file = write_journal(tmp_path, 2)
    journal_file_for(state_file).unlink()
    assert codes(state_file) == ["JOURNAL_MISSING"]


def test_an_edited_earlier_entry_breaks_the_chain(tmp_path: Path) -> None:
    state_file = write_journal(tmp_path, 3)
    written = lines(state_file)
    written[0] = written[0].replace(b'"night-1"', b'"night-X"')
    rewrite(state_file, written)
    assert codes(state_file) == ["JOURNAL_CHAIN_BROKEN"]
    assert "entry 2" in check_journal(state_file).problems[0].message


def test_an_edited_last_entry_no_longer_matches_the_head(tmp_path: Path) -> None:
    state_file = write_journal(tmp_path, 3)
    written = lines(state_file)
    written[2] = written[2].replace(b'"night-3"', b'"night-X"')
    rewrite(state_file, written)
    assert codes(state_file) == ["JOURNAL_HEAD_MISMATCH"]


def test_an_inserted_line_breaks_the_chain(tmp_path: Path) -> None:
    state_file = write_journal(tmp_path, 3)
    written = lines(state_file)
    rewrite(state_file, [written[0], written[0], *written[1:]])
    assert codes(state_file) == ["JOURNAL_CHAIN_BROKEN"]


def test_two_swapped_lines_break_the_chain(tmp_path: Path) -> None:
    state_file = write_journal(tmp_path, 3)
    written = lines(state_file)
    rewrite(state_file, [written[1], written[0], written[2]])
    assert codes(state_file) == ["JOURNAL_CHAIN_BROKEN"]


def test_a_line_removed_from_the_middle_breaks_the_chain(tmp_path: Path) -> None:
    state_file = write_journal(tmp_path, 3)
    written = lines(state_file)
    rewrite(state_file, [written[0], written[2]])
    assert "JOURNAL_CHAIN_BROKEN" in codes(state_file)


def test_a_state_file_without_its_head_beside_a_journal_is_found(tmp_path: Path) -> None:
    state_file = write_journal(tmp_path, 2)
    body = json.loads(state_file.read_bytes())
    del body["journal"]
    state_file.write_text(json.dumps(body))
    assert codes(state_file) == ["JOURNAL_HEAD_MISSING"]


def test_a_deleted_state_file_beside_a_journal_is_found(tmp_path: Path) -> None:
    """Deleting the state file resets rollback protection: with a journal beside it, that no longer goes unseen."""
    state_file = write_journal(tmp_path, 2)
    state_file.unlink()
    assert codes(state_file) == ["JOURNAL_HEAD_MISSING"]


def test_an_edited_head_hash_is_found(tmp_path: Path) -> None:
    state_file = write_journal(tmp_path, 2)
    state = load_state(state_file)
    state.journal = JournalHead(2, "0" * 64)
    save_state(state_file, state)
    assert codes(state_file) == ["JOURNAL_HEAD_MISMATCH"]


def test_a_head_counting_more_entries_than_the_journal_has_is_truncation(tmp_path: Path) -> None:
    state_file = write_journal(tmp_path, 2)
    state = load_state(state_file)
    assert state.journal is not None
    state.journal = JournalHead(5, state.journal.sha256)
    save_state(state_file, state)
    assert codes(state_file) == ["JOURNAL_TRUNCATED"]


def test_a_journal_that_is_a_symbolic_link_is_refused(tmp_path: Path) -> None:
    state_file = write_journal(tmp_path, 1)
    journal = journal_file_for(state_file)
    journal.rename(tmp_path / "elsewhere")
    journal.symlink_to(tmp_path / "elsewhere")
    assert codes(state_file) == ["JOURNAL_ENTRY_INVALID"]


def test_a_malformed_head_in_the_state_file_is_a_usage_error(tmp_path: Path) -> None:
    state_file = write_journal(tmp_path, 1)
    body = json.loads(state_file.read_bytes())
    body["journal"] = {"entries": "1", "sha256": "x"}
    state_file.write_text(json.dumps(body))
    with pytest.raises(Exception, match="unreadable") as caught:
        check_journal(state_file)
    assert getattr(caught.value, "exit_code", None) == 2


# --- the writer refuses to continue a damaged journal ---------------------------------------------------------


def test_the_writer_refuses_a_damaged_journal_and_appends_nothing(tmp_path: Path) -> None:
    state_file = write_journal(tmp_path, 3)
    rewrite(state_file, lines(state_file)[:-1])
    before = journal_file_for(state_file).read_bytes(), state_file.read_bytes()
    with state_lock(state_file), pytest.raises(JournalError) as refused:
        open_journal(state_file, limits=DEFAULT_LIMITS, importers=None, signer=None)
    assert refused.value.exit_code == 3
    assert [p.code for p in refused.value.problems] == ["JOURNAL_TRUNCATED"]
    assert (journal_file_for(state_file).read_bytes(), state_file.read_bytes()) == before


# --- recovery from a crash -----------------------------------------------------------------------------------


def _record(state_file: Path, n: int) -> None:
    """What an import records in the trust state before its first write (record_import): bundle n's collector."""
    fields = import_fields(n)
    state = load_state(state_file)
    for key in fields["collectors"]:
        state.collectors[key] = CollectorRecord(fields["sequence"], fields["inventory"].removeprefix("sha256:"))
    save_state(state_file, state)


def _append_without_head(state_file: Path, n: int) -> None:
    """What a crash between the journal's fsync and the state file's replacement leaves: the bundle recorded in
    the state (before the import's first write), its entry appended, the head not yet moved."""
    _record(state_file, n)
    saved = state_file.read_bytes()
    append_entry(state_file, n)
    state_file.write_bytes(saved)


def _append_restore_without_head(state_file: Path, n: int, restores: int) -> None:
    """A `restore` entry of bundle n appended, the state file left as it was (what a crash leaves, or a forger
    who can write the journal alone)."""
    saved = state_file.read_bytes()
    with state_lock(state_file):
        writer = open_journal(state_file, limits=DEFAULT_LIMITS, importers=None, signer=None)
        writer.append("restore", {**import_fields(n), "result": "restored", "restores": restores})
    state_file.write_bytes(saved)


def test_a_restore_beyond_the_head_repeating_an_import_of_its_bundle_is_a_crash_and_accepted(tmp_path: Path) -> None:
    state_file = write_journal(tmp_path, 2)
    _append_restore_without_head(state_file, 1, restores=1)
    assert codes(state_file) == []


def test_a_restore_beyond_the_head_of_a_bundle_never_imported_is_refused(tmp_path: Path) -> None:
    state_file = write_journal(tmp_path, 2)
    _append_restore_without_head(state_file, 9, restores=1)  # bundle 9: no entry ever imported it
    assert codes(state_file) == ["JOURNAL_HEAD_MISMATCH"]


def test_a_state_file_one_import_older_than_the_journal_is_no_crash_and_is_refused(tmp_path: Path) -> None:
    state_file = write_journal(tmp_path, 2)
    _record(state_file, 2)
    older = state_file.read_bytes()  # a backup of the state taken after import 2
    _record(state_file, 3)
    append_entry(state_file, 3)
    state_file.write_bytes(older)  # put back: its rollback record no longer knows bundle 3
    assert codes(state_file) == ["JOURNAL_HEAD_MISMATCH"]


def test_an_entry_beyond_the_head_left_by_a_crash_is_accepted_and_said(tmp_path: Path) -> None:
    state_file = write_journal(tmp_path, 2)
    _append_without_head(state_file, 3)
    check = check_journal(state_file)
    assert check.problems == []
    assert check.entries == 3 and len(check.notes) == 1 and "entry 3" in check.notes[0]


def test_the_next_append_moves_the_head_past_the_entry_a_crash_left(tmp_path: Path) -> None:
    state_file = write_journal(tmp_path, 2)
    _append_without_head(state_file, 3)
    warnings: list[str] = []
    append_entry(state_file, 4, warnings=warnings)
    assert check_journal(state_file).problems == [] and check_journal(state_file).entries == 4
    assert load_state(state_file).journal == JournalHead(4, hashlib.sha256(lines(state_file)[-1]).hexdigest())
    assert any("entry 3" in w for w in warnings)
    assert any("entry 3" in note for note in json.loads(lines(state_file)[-1])["notes"])


def test_two_entries_beyond_the_head_are_no_crash_and_are_refused(tmp_path: Path) -> None:
    state_file = write_journal(tmp_path, 2)
    saved = state_file.read_bytes()
    append_entry(state_file, 3)
    append_entry(state_file, 4)
    state_file.write_bytes(saved)
    assert codes(state_file) == ["JOURNAL_HEAD_MISMATCH"]


def test_an_incomplete_last_line_beyond_the_head_is_cut_off_by_the_next_writer(tmp_path: Path) -> None:
    state_file = write_journal(tmp_path, 2)
    whole = journal_file_for(state_file).read_bytes()
    with journal_file_for(state_file).open("ab") as journal:
        journal.write(b'{"v":1,"seq":3,"pr')  # a write cut short by a crash
    check = check_journal(state_file)
    assert check.problems == [] and check.entries == 2 and "incomplete" in check.notes[0]
    warnings: list[str] = []
    append_entry(state_file, 3, warnings=warnings)
    assert check_journal(state_file).problems == [] and check_journal(state_file).entries == 3
    assert b"".join(lines(state_file)[:-1]) == whole and warnings


def test_an_incomplete_line_where_the_head_expects_an_entry_is_truncation(tmp_path: Path) -> None:
    state_file = write_journal(tmp_path, 3)
    written = lines(state_file)
    rewrite(state_file, [*written[:2], written[2][:-10]])
    assert codes(state_file) == ["JOURNAL_TRUNCATED"]


def test_the_check_changes_nothing_even_when_a_crash_left_something_to_repair(tmp_path: Path) -> None:
    state_file = write_journal(tmp_path, 2)
    _append_without_head(state_file, 3)
    with journal_file_for(state_file).open("ab") as journal:
        journal.write(b"{")
    before = journal_file_for(state_file).read_bytes(), state_file.read_bytes()
    check_journal(state_file)
    assert (journal_file_for(state_file).read_bytes(), state_file.read_bytes()) == before


# --- a state file that predates the journal --------------------------------------------------------------------


def test_a_state_file_that_predates_the_journal_is_adopted_once_with_an_entry_saying_so(tmp_path: Path) -> None:
    state_file = tmp_path / "state.json"
    state_file.write_text(json.dumps({"collectors": {"c" * 64: {"sequence": 7, "inventory": "d" * 64}}}))
    assert check_journal(state_file).problems == [] and check_journal(state_file).adopt
    warnings: list[str] = []
    append_entry(state_file, 8, warnings=warnings)
    append_entry(state_file, 9, warnings=warnings)
    adopt, first, second = (json.loads(line) for line in lines(state_file))
    assert adopt["kind"] == "adopt" and adopt["prev"] is None
    assert adopt["state"]["collectors"] == {"c" * 64: {"sequence": 7, "inventory": "d" * 64}}
    assert (first["kind"], first["seq"], second["seq"]) == ("import", 2, 3)
    assert len([w for w in warnings if "predates" in w]) == 1
    assert load_state(state_file).collectors == {"c" * 64: CollectorRecord(7, "d" * 64)}


def test_an_empty_journal_file_and_no_head_is_a_journal_not_yet_started(tmp_path: Path) -> None:
    state_file = tmp_path / "state.json"
    save_state(state_file, TrustState())
    journal_file_for(state_file).write_bytes(b"")
    assert check_journal(state_file).problems == []


# --- hostile lines -------------------------------------------------------------------------------------------


def _replace_last(state_file: Path, line: bytes) -> None:
    written = lines(state_file)
    rewrite(state_file, [*written[:-1], line])
    state = load_state(state_file)
    state.journal = JournalHead(len(written), hashlib.sha256(line).hexdigest())  # a head that agrees
    save_state(state_file, state)


def _entry(state_file: Path, **changes: object) -> dict[str, object]:
    entry = json.loads(lines(state_file)[-1])
    entry.update(changes)
    return entry


def _canonical(entry: dict[str, object]) -> bytes:
    return json.dumps(entry, sort_keys=True, separators=(",", ":")).encode() + b"\n"


@pytest.mark.parametrize(
    "line",
    [
        b"not json\n",
        b"\n",
        b"[1,2,3]\n",
        b'{"v":1,"v":1}\n',
        b"\xff\xfe{}\n",
    ],
    ids=["not-json", "empty-line", "not-an-object", "duplicate-key", "not-utf8"],
)
def test_a_line_that_is_not_one_json_object_is_refused_cleanly(tmp_path: Path, line: bytes) -> None:
    state_file = write_journal(tmp_path, 2)
    _replace_last(state_file, line)
    assert codes(state_file) == ["JOURNAL_ENTRY_INVALID"]


def test_a_duplicate_key_in_an_otherwise_valid_entry_is_refused(tmp_path: Path) -> None:
    state_file = write_journal(tmp_path, 2)
    line = _canonical(_entry(state_file))
    _replace_last(state_file, line.replace(b'{"approvers"', b'{"approvers":[],"approvers"', 1))
    assert codes(state_file) == ["JOURNAL_ENTRY_INVALID"]


@pytest.mark.parametrize(
    "changes",
    [
        {"kind": "delete-everything"},
        {"surprise": 1},
        {"v": 2},
        {"seq": True},
        {"exitCode": 1.5},
        {"result": "maybe"},
        {"inventory": "md5:abc"},
        {"written": {"images": "all of them"}},
        {"notes": "not a list"},
    ],
    ids=["unknown-kind", "unknown-field", "version", "bool-seq", "float", "result", "inventory", "written", "notes"],
)
def test_an_entry_outside_the_format_is_refused(tmp_path: Path, changes: dict[str, object]) -> None:
    state_file = write_journal(tmp_path, 2)
    _replace_last(state_file, _canonical(_entry(state_file, **changes)))
    assert codes(state_file) == ["JOURNAL_ENTRY_INVALID"]


def test_a_valid_entry_in_another_spelling_than_the_canonical_one_is_refused(tmp_path: Path) -> None:
    state_file = write_journal(tmp_path, 2)
    _replace_last(state_file, json.dumps(_entry(state_file), indent=None).encode() + b"\n")
    assert codes(state_file) == ["JOURNAL_ENTRY_INVALID"]


def test_a_line_over_the_limit_is_refused(tmp_path: Path) -> None:
    small = replace(DEFAULT_LIMITS, max_journal_entry_bytes=4096)
    state_file = write_journal(tmp_path, 1, limits=small)
    with journal_file_for(state_file).open("ab") as journal:
        journal.write(b'{"x":"' + b"a" * (1024 * 1024) + b'"}\n')
    state = load_state(state_file)
    state.journal = JournalHead(2, "0" * 64)
    save_state(state_file, state)
    problems = check_journal(state_file, limits=small).problems
    assert [p.code for p in problems] == ["JOURNAL_ENTRY_INVALID"]
    assert "max_journal_entry_bytes" in problems[0].message


def test_an_import_entry_too_large_for_a_line_is_written_without_its_lists(tmp_path: Path) -> None:
    small = replace(DEFAULT_LIMITS, max_journal_entry_bytes=1500)
    state_file = tmp_path / "state.json"
    fields = import_fields(1)
    fields["written"]["images"] *= 50  # type: ignore[index]
    with state_lock(state_file):
        open_journal(state_file, limits=small, importers=None, signer=None).append("import", fields)
    [line] = lines(state_file)
    entry = json.loads(line)
    assert len(line) <= 1500 and entry["written"] is None
    assert "max_journal_entry_bytes" in entry["notes"][0]
    assert check_journal(state_file, limits=small).problems == []


def test_the_writer_refuses_fields_outside_the_kind_before_writing(tmp_path: Path) -> None:
    state_file = tmp_path / "state.json"
    with state_lock(state_file):
        writer = open_journal(state_file, limits=DEFAULT_LIMITS, importers=None, signer=None)
        with pytest.raises(ValueError, match="surprise"):
            writer.append("import", {**import_fields(1), "surprise": True})
    assert not journal_file_for(state_file).exists() or journal_file_for(state_file).read_bytes() == b""
