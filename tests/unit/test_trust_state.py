"""The anti-rollback state file: written atomically, read strictly; a damaged one is a usage error (exit 2)."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from mirror.errors import UsageError
from mirror.trust.state import CollectorRecord, TrustState, load_state, save_state

KEY_ID = "a" * 64
INVENTORY = "b" * 64


def test_missing_state_file_is_an_empty_state(tmp_path):
    assert load_state(tmp_path / "state.json") == TrustState()


def test_state_round_trips(tmp_path):
    state = TrustState({KEY_ID: CollectorRecord(7, INVENTORY)}, dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC))
    save_state(tmp_path / "state.json", state)
    assert load_state(tmp_path / "state.json") == state
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


@pytest.mark.parametrize(
    "record",
    [
        {"sequence": "7", "inventory": INVENTORY},
        {"sequence": -1, "inventory": INVENTORY},
        {"sequence": True, "inventory": INVENTORY},
        {"sequence": 7, "inventory": 12},
        {"sequence": 7, "inventory": "not-hex"},
        {"sequence": 7},
    ],
    ids=["string-sequence", "negative-sequence", "bool-sequence", "number-inventory", "bad-inventory", "missing"],
)
def test_malformed_collector_record_is_refused(tmp_path, record):
    path = tmp_path / "state.json"
    path.write_text(json.dumps({"collectors": {KEY_ID: record}, "latestCreated": None}))
    with pytest.raises(UsageError, match="unreadable") as caught:
        load_state(path)
    assert caught.value.exit_code == 2


def test_malformed_latest_created_is_a_usage_error(tmp_path):
    path = tmp_path / "state.json"
    path.write_text(json.dumps({"collectors": {}, "latestCreated": "yesterday"}))
    with pytest.raises(UsageError) as caught:
        load_state(path)
    assert caught.value.exit_code == 2


def test_a_deeply_nested_state_file_is_a_usage_error_not_a_crash(tmp_path):
    path = tmp_path / "state.json"
    path.write_text('{"collectors": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(UsageError, match="unreadable") as caught:
        load_state(path)
    assert caught.value.exit_code == 2
