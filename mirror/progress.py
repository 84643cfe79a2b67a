"""What the user sees while work runs: tqdm bars on a terminal, plain log lines otherwise (nightly jobs)."""

from __future__ import annotations

import sys
import threading
import time
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from tqdm import tqdm


def human_size(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(size) < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")  # pragma: no cover


class Progress:
    """Thread-safe. Logs go to `stream` (stderr), never stdout, which is kept for results and JSON."""

    def __init__(self, *, stream: TextIO | None = None, bars: bool | None = None, quiet: bool = False) -> None:
        self._stream = stream or sys.stderr
        self._bars = self._stream.isatty() if bars is None else bars
        self._quiet = quiet
        self._lock = threading.Lock()
        self._bar: tqdm | None = None
        self._label = ""
        self._done = 0
        self._total = 0
        self._started = 0.0

    def log(self, message: str) -> None:
        if self._quiet:
            return
        with self._lock:
            if self._bar is not None:
                self._bar.write(message, file=self._stream)
            else:
                print(message, file=self._stream, flush=True)

    def warn(self, message: str) -> None:
        with self._lock:
            print(f"warning: {message}", file=self._stream, flush=True)

    def start(self, label: str, total_bytes: int) -> None:
        with self._lock:
            self._label, self._total, self._done, self._started = label, total_bytes, 0, time.monotonic()
            if self._bars and not self._quiet and total_bytes:
                from tqdm import tqdm  # only on a terminal: importing tqdm costs a tenth of a second

                self._bar = tqdm(
                    total=total_bytes,
                    desc=label,
                    unit="B",
                    unit_scale=True,
                    unit_divisor=1000,
                    file=self._stream,
                    leave=False,
                )
        if not self._bars:
            self.log(f"{label}: {human_size(total_bytes)} to go")

    def advance(self, count: int) -> None:
        with self._lock:
            self._done += count
            if self._bar is not None:
                self._bar.update(count)

    def finish(self) -> None:
        with self._lock:
            if self._bar is not None:
                self._bar.close()
                self._bar = None
            elapsed = max(time.monotonic() - self._started, 1e-6)
            done, label = self._done, self._label
        if self._total:
            self.log(f"{label}: {human_size(done)} in {elapsed:.1f} s ({human_size(done / elapsed)}/s)")
