"""The bench's startup step reports `mirror --help` and `--version` beside `python -c pass` (no timing asserted)."""

from __future__ import annotations

import sys

import pytest

from tests.support.bench import MIRROR
from tests.support.benchstartup import interpreter_of, startup_rows, summary


def test_the_floor_is_the_interpreter_the_mirror_script_runs_on(tmp_path):
    script = tmp_path / "mirror"
    script.write_text("#!/opt/python/bin/python3.11 -E\nprint()\n")
    assert interpreter_of(str(script)) == "/opt/python/bin/python3.11"
    assert interpreter_of(str(tmp_path / "absent")) == sys.executable


def test_startup_rows_time_help_and_version_beside_python_doing_nothing():
    rows = startup_rows(MIRROR, runs=2)
    assert [row.what for row in rows] == ["mirror --help", "mirror --version"]
    assert [row.target for row in rows] == ["< 0.12 s", "< 0.08 s"]
    for row in rows:
        assert row.other_tool == "python -c pass" and len(row.mirror) == len(row.other) == 2
        assert row.ratio == pytest.approx(row.value(row.mirror) / row.value(row.other))
        assert isinstance(row.met, bool) and row.note.startswith("CPU ")
        assert summary(row).startswith(f"startup: {row.what} takes ")
