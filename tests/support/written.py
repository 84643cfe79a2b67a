"""Bytes a child process wrote to storage, as the kernel counts them (/proc/PID/io write_bytes).

Linux hands the same figure to the parent that reaps the child: wait4's ru_oublock is write_bytes in 512-byte
blocks. Bytes written to a file deleted before they reached the disk still count, which is the point: a
staging copy costs the disk its bandwidth whether or not it is flushed.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Written:
    returncode: int
    bytes_written: int
    stderr: str


def run_counting_writes(command: Sequence[str], env: dict[str, str] | None = None) -> Written:
    """Run `command` to its end; its exit code, the bytes it and its reaped children wrote, and its stderr."""
    process = subprocess.Popen(list(command), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    assert process.stderr is not None
    with process.stderr:
        stderr = process.stderr.read().decode(errors="replace")
    _, status, usage = os.wait4(process.pid, 0)  # reaped here, not by Popen, to read its usage
    process.returncode = os.waitstatus_to_exitcode(status)
    return Written(process.returncode, usage.ru_oublock * 512, stderr)


def bytes_from_time_report(report: str) -> int:
    """The bytes written, from GNU time -v's "File system outputs" (wait4's ru_oublock, in 512-byte blocks)."""
    match = re.search(r"File system outputs: (\d+)", report)
    return int(match.group(1)) * 512 if match else 0
