"""The bench's startup step: `mirror --version` and `mirror --help` beside `python -c pass`, in turns.

Each command runs whole, as a user runs it, one warm-up then `runs` counted runs taken round-robin so that a
change in the machine's load falls on all three alike. The floor is the interpreter the `mirror` script runs
on, started with nothing to do: what is above it is mirror's own start-up (docs/development.md, "Start-up").
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from tests.support.bench import Row, Sample

TARGET_HELP_SECONDS = 0.12
TARGET_VERSION_SECONDS = 0.08
FLOOR = "python -c pass"


def interpreter_of(mirror: str) -> str:
    """The Python a console script runs on (its #! line); this interpreter for anything else."""
    try:
        first = Path(mirror).read_bytes()[:256].split(b"\n", 1)[0]
    except OSError:
        return sys.executable
    if first.startswith(b"#!") and b"python" in first:
        return first[2:].decode().strip().split()[0]
    return sys.executable


def run_once(command: list[str]) -> Sample:
    """Wall time, CPU time and peak RSS of one run, read for that process alone (wait4), output discarded."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        sys.exit(f"bench: {' '.join(command)} failed ({process.returncode})")
    return Sample(seconds, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime)


def startup_rows(mirror: str, runs: int) -> list[Row]:
    floor = [interpreter_of(mirror), "-c", "pass"]
    commands = {"version": [mirror, "--version"], "help": [mirror, "--help"], "floor": floor}
    samples: dict[str, list[Sample]] = {name: [] for name in commands}
    for command in commands.values():
        run_once(command)  # the warm-up: the page cache holds the interpreter and the modules
    for _ in range(runs):
        for name, command in commands.items():
            samples[name].append(run_once(command))
    rows = []
    for name, target in (("help", TARGET_HELP_SECONDS), ("version", TARGET_VERSION_SECONDS)):
        row = Row("startup", f"mirror --{name}", samples[name], FLOOR, samples["floor"], target=f"< {target} s")
        median = row.value(row.mirror)
        row.met = median is not None and median < target
        cpu, floor_cpu = _median_cpu(samples[name]), _median_cpu(samples["floor"])
        row.note = f"CPU {cpu * 1000:.0f} ms, {FLOOR} {floor_cpu * 1000:.0f} ms"
        rows.append(row)
    return rows


def summary(row: Row) -> str:
    """The line print_table writes under the table for a startup row."""
    cpu = _median_cpu(row.mirror) / _median_cpu(row.other)
    return f"startup: {row.what} takes {row.ratio:.2f}x the wall time of `{FLOOR}` ({cpu:.2f}x its CPU time)"


def _median_cpu(samples: list[Sample]) -> float:
    return statistics.median(s.cpu_seconds for s in samples)
