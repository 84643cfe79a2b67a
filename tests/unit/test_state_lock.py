"""The trust state lock (mirror.trust.lock) and the git quarantine directories (mirror.importer.quarantine)."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import pytest

from mirror.errors import UsageError
from mirror.importer.quarantine import quarantine_directory, remove_abandoned
from mirror.trust.lock import LockTimeoutError, lock_file_for, state_lock


def test_the_lock_file_sits_beside_the_state_file_and_names_its_holder(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    with state_lock(state) as lock:
        assert lock == tmp_path / "state.json.lock" == lock_file_for(state)
        assert lock.read_text() == f"{os.getpid()}\n"
    assert not state.exists()  # the lock never creates the state itself


def test_a_second_holder_waits_and_gives_up_after_the_timeout(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    said: list[str] = []
    with (
        state_lock(state),
        pytest.raises(LockTimeoutError) as caught,
        state_lock(state, timeout=0.2, announce=said.append),
    ):
        pass
    assert caught.value.exit_code == 2
    assert str(lock_file_for(state)) in str(caught.value) and f"pid {os.getpid()}" in str(caught.value)
    assert said == [f"waiting for the import holding {lock_file_for(state)} (pid {os.getpid()}) to finish …"]
    with state_lock(state, timeout=0.2):  # released: taken at once
        pass


def test_a_planted_link_at_the_lock_file_is_refused_not_followed(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text("keep\n")
    lock_file_for(tmp_path / "state.json").symlink_to(elsewhere)
    with pytest.raises(UsageError, match="symbolic link"), state_lock(tmp_path / "state.json"):
        pass
    assert elsewhere.read_text() == "keep\n"


def test_a_missing_state_directory_is_a_usage_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=str(tmp_path / "gone")), state_lock(tmp_path / "gone" / "state.json"):
        pass


def test_only_abandoned_quarantines_are_removed(tmp_path: Path) -> None:
    with quarantine_directory(tmp_path) as live:
        (live / "0.git").mkdir()
        abandoned = tmp_path / "mirror-git-0123456789abcdef"
        (abandoned / "0.git").mkdir(parents=True)
        git_home = tmp_path / "mirror-git-home-abc123"  # git's temporary home of a running command: no lock
        git_home.mkdir()
        other = tmp_path / "mirror-git-fedcba9876543210"
        other.mkdir()
        held = os.open(other, os.O_RDONLY)
        fcntl.flock(held, fcntl.LOCK_EX)  # as another live import holds its own
        try:
            assert remove_abandoned(tmp_path) == [abandoned]
        finally:
            os.close(held)
        assert live.is_dir() and git_home.is_dir() and other.is_dir()
    assert not live.exists()
