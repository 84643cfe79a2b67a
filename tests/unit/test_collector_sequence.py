"""The collector's sequence record: one number per collect, never reused, kept beside the key or elsewhere."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mirror.errors import UsageError
from mirror.trust.keys import generate
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


def _empty_mirrorset(tmp_path: Path) -> Path:
    path = tmp_path / "empty.yaml"
    path.write_text("apiVersion: mirror/v1\nkind: MirrorSet\nmetadata: {name: empty}\nspec: {images: []}\n")
    return path


def _signed_collect(tmp_path: Path, key: Path, out: str, env: dict[str, str]):
    from typer.testing import CliRunner

    from mirror.cli import app

    args = ["collect", str(_empty_mirrorset(tmp_path)), "-o", str(tmp_path / out), "--key", str(key), "-q"]
    return CliRunner().invoke(app, args, env={"MIRROR_KEY_PASSWORD": "", **env}, catch_exceptions=False)


def test_collect_keeps_the_record_named_by_mirror_state_file(tmp_path: Path) -> None:
    key, _, _ = generate(str(tmp_path / "collector"), env={})
    state = tmp_path / "data" / "collector.state.json"
    state.parent.mkdir()
    result = _signed_collect(tmp_path, key, "night", {"MIRROR_STATE_FILE": str(state)})
    assert result.exit_code == 0, result.output
    assert json.loads(state.read_text()) == {"sequence": 1}
    assert not sequence_file(key).exists()


def test_the_state_file_flag_wins_over_mirror_state_file(tmp_path: Path) -> None:
    key, _, _ = generate(str(tmp_path / "collector"), env={})
    flagged, named = tmp_path / "flag.json", tmp_path / "env.json"
    from typer.testing import CliRunner

    from mirror.cli import app

    args = ["collect", str(_empty_mirrorset(tmp_path)), "-o", str(tmp_path / "n"), "--key", str(key), "-q"]
    result = CliRunner().invoke(
        app, [*args, "--state-file", str(flagged)], env={"MIRROR_STATE_FILE": str(named)}, catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert flagged.exists() and not named.exists()


def test_a_record_elsewhere_continues_from_a_higher_record_beside_the_key_and_says_so(tmp_path: Path) -> None:
    # Manual collects kept their record beside the key, the nightly job kept its own: one key, one sequence.
    key = tmp_path / "collector.key"
    sequence_file(key).write_text('{"sequence": 7}')
    state = tmp_path / "data.json"
    state.write_text('{"sequence": 3}')
    said: list[str] = []
    assert reserve_sequence(key, state_file=state, warn=said.append) == 8
    assert json.loads(state.read_text()) == {"sequence": 8}
    assert len(said) == 1 and str(sequence_file(key)) in said[0] and "MIRROR_STATE_FILE" in said[0]


def test_a_lower_record_beside_the_key_is_left_alone_and_not_mentioned(tmp_path: Path) -> None:
    key = tmp_path / "collector.key"
    sequence_file(key).write_text('{"sequence": 2}')
    state = tmp_path / "data.json"
    state.write_text('{"sequence": 5}')
    said: list[str] = []
    assert reserve_sequence(key, state_file=state, warn=said.append) == 6
    assert said == []
