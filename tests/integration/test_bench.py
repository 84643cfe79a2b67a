"""scripts/bench runs end to end in a small mode and reports figures for both tools (no timing is asserted)."""

from __future__ import annotations

import json
import subprocess

from tests.conftest import REPO_ROOT


def test_bench_runs_in_a_small_mode_and_reports_both_tools(services):
    done = subprocess.run(
        [str(REPO_ROOT / "scripts" / "bench"), "--layer-size", "1M", "--json"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)
    assert {(f["step"], f["tool"]) for f in figures} == {
        ("collect", "mirror"),
        ("collect", "skopeo"),
        ("import", "mirror"),
        ("import", "skopeo"),
    }
    assert all(f["seconds"] > 0 and f["peak_rss_mb"] > 0 for f in figures)
