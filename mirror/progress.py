"""What the user sees while work runs: tqdm bars on a terminal, plain log lines otherwise (nightly jobs).

With `log_format="json"` every line is a JSON object (mirror.logs) and there are no bars. Progress also keeps
the run's phases (how long each took, how many bytes it moved) and its warnings, for `--report`.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import Counter
from collections.abc import Iterable
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from tqdm import tqdm

from mirror.logs import format_line
from mirror.warncodes import WARNING, Acknowledgement


def human_size(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(size) < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")  # pragma: no cover


class Progress:
    """Thread-safe. Logs go to `stream` (stderr), never stdout, which is kept for results and JSON."""

    def __init__(
        self, *, stream: TextIO | None = None, bars: bool | None = None, quiet: bool = False, log_format: str = "text"
    ) -> None:
        self._stream = stream or sys.stderr
        self._format = log_format
        self._bars = log_format == "text" and (self._stream.isatty() if bars is None else bars)
        self._quiet = quiet
        self._lock = threading.Lock()
        self._bar: tqdm | None = None
        self._label = ""
        self._done = 0
        self._total = 0
        self._started = 0.0
        self._phase: tuple[str, float] | None = None
        self.phases: dict[str, float] = {}  # seconds per phase, in the order they ran
        self.phase_bytes: dict[str, int] = {}  # bytes moved by the phases that count them
        self.warnings: list[str] = []  # shown, for --report
        self.coded: list[dict[str, str]] = []  # the same, {code, message}, for --json
        self.acknowledged: list[dict[str, str]] = []  # {code, message, reason}: not shown (spec.acknowledge)
        self._acknowledgements: tuple[Acknowledgement, ...] = ()

    def _emit(self, level: str, event: str, message: str, fields: dict[str, object]) -> None:
        line = format_line(self._format, level, event, message, fields)
        with self._lock:
            if self._bar is not None:
                self._bar.write(line, file=self._stream)
            else:
                print(line, file=self._stream, flush=True)

    def log(self, message: str, event: str = "message", **fields: object) -> None:
        if not self._quiet:
            self._emit("info", event, message, fields)

    def acknowledge(self, acknowledgements: Iterable[Acknowledgement]) -> None:
        """From now on, warnings these cover are counted (with the reason), not shown."""
        self._acknowledgements = tuple(acknowledgements)

    def warn(self, message: str, code: str = WARNING) -> None:
        covering = next((a for a in self._acknowledgements if a.covers(code, message)), None)
        with self._lock:
            if covering is not None:
                self.acknowledged.append({"code": code, "message": message, "reason": covering.reason})
                return
            self.warnings.append(message)
            self.coded.append({"code": code, "message": message})
        self._emit("warning", "warning", message, {"code": code})

    def tell_acknowledged(self) -> None:
        """One line for the warnings acknowledgements kept from being shown, counted by code."""
        counts = Counter(item["code"] for item in self.acknowledged)
        if counts:
            kinds = ", ".join(f"{code} x{count}" for code, count in sorted(counts.items()))
            self.log(
                f"{len(self.acknowledged)} warning(s) acknowledged in the MirrorSet, not shown: {kinds}",
                "warnings.acknowledged",
                counts=dict(counts),
            )

    def _close_phase(self, now: float) -> None:
        if self._phase is not None:
            name, since = self._phase
            self.phases[name] = self.phases.get(name, 0.0) + (now - since)
            self._phase = None

    def mark(self, phase: str) -> None:
        """The run enters `phase`; the phase before it ends here."""
        now = time.monotonic()
        with self._lock:
            self._close_phase(now)
            self._phase = (phase, now)

    def durations(self) -> dict[str, float]:
        """Seconds per phase so far, the running one included."""
        now = time.monotonic()
        with self._lock:
            result = dict(self.phases)
            if self._phase is not None:
                name, since = self._phase
                result[name] = result.get(name, 0.0) + (now - since)
        return {name: round(seconds, 3) for name, seconds in result.items()}

    def start(self, label: str, total_bytes: int) -> None:
        self.mark(label)
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
            self.log(f"{label}: {human_size(total_bytes)} to go", "phase.start", phase=label, bytes=total_bytes)

    def advance(self, count: int) -> None:
        with self._lock:
            self._done += count
            if self._bar is not None:
                self._bar.update(count)

    def finish(self) -> None:
        now = time.monotonic()
        with self._lock:
            if self._bar is not None:
                self._bar.close()
                self._bar = None
            elapsed = max(now - self._started, 1e-6)
            done, label = self._done, self._label
            self.phase_bytes[label] = self.phase_bytes.get(label, 0) + done
            self._close_phase(now)
        if self._total:
            self.log(
                f"{label}: {human_size(done)} in {elapsed:.1f} s ({human_size(done / elapsed)}/s)",
                "phase.end",
                phase=label,
                bytes=done,
                seconds=round(elapsed, 3),
            )
