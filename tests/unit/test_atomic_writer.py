"""fsutil.atomic_writer: the new file whole or not at all, and no system call wasted on a success."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mirror.fsutil import atomic_writer


def test_a_written_file_costs_no_unlink_of_its_renamed_temporary(tmp_path: Path, monkeypatch) -> None:
    calls: list[object] = []
    real = os.unlink
    monkeypatch.setattr(os, "unlink", lambda path, *a, **k: (calls.append(path), real(path, *a, **k)))
    with atomic_writer(tmp_path / "index.json", durable=False) as handle:
        handle.write(b"{}")
    assert calls == []
    assert (tmp_path / "index.json").read_bytes() == b"{}"


def test_a_write_that_fails_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    (tmp_path / "index.json").write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_writer(tmp_path / "index.json", durable=False) as handle:
        handle.write(b"half")
        raise RuntimeError("interrupted")
    assert [p.name for p in tmp_path.iterdir()] == ["index.json"]
    assert (tmp_path / "index.json").read_bytes() == b"old"
