"""The collector's sequence record: one number per collect, never reused, kept beside the key or elsewhere."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mirror.errors import UsageError
from mirror.trust.sign import reserve_sequence, sequence_file


def test_sequences_count_up_from_one_beside_the_key(tmp_path: Path) -> None:
    key = tmp_path / "collector.key"
    assert [reserve_sequence(key) for _ in range(3)] == [1, 2, 3]
    assert json.loads(sequence_file(key).read_text()) == {"sequence": 3}
    assert sequence_file(key) == tmp_path / "collector.state.json"


def test_an_explicit_sequence_moves_the_record_forward_but_never_back(tmp_path: Path) -> None:
    key = tmp_path / "collector.key"
    assert reserve_sequence(key, 10) == 10
    assert reserve_sequence(key, 4) == 4
    assert reserve_sequence(key) == 11


def test_a_state_file_elsewhere_is_used_instead_of_the_keys_directory(tmp_path: Path) -> None:
    key = tmp_path / "secret" / "collector.key"  # the directory need not exist, as with a read-only mount
    state = tmp_path / "state" / "nightly.json"
    state.parent.mkdir()
    assert reserve_sequence(key, state_file=state) == 1
    assert reserve_sequence(key, state_file=state) == 2
    assert json.loads(state.read_text()) == {"sequence": 2}
    assert not (tmp_path / "secret").exists()


def test_an_unwritable_record_is_a_usage_error_naming_the_file_and_the_flag(tmp_path: Path) -> None:
    key = tmp_path / "missing-dir" / "collector.key"
    with pytest.raises(UsageError) as caught:
        reserve_sequence(key)
    assert str(tmp_path / "missing-dir" / "collector.state.json") in str(caught.value)
    assert "--state-file" in (caught.value.hint or "")


def test_an_unreadable_record_is_refused_rather_than_restarted(tmp_path: Path) -> None:
    key = tmp_path / "collector.key"
    sequence_file(key).write_text("{not json")
    with pytest.raises(UsageError, match="unreadable collector state"):
        reserve_sequence(key)
    assert sequence_file(key).read_text() == "{not json"


def test_a_deeply_nested_sequence_record_is_a_usage_error(tmp_path: Path) -> None:
    key = tmp_path / "collector.key"
    sequence_file(key).write_text('{"sequence": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(UsageError, match="unreadable collector state"):
        reserve_sequence(key)
