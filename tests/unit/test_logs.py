"""--log-format: text lines as before, or one JSON object per line on stderr."""

from __future__ import annotations

import datetime as dt
import io
import json

from mirror.logs import json_line, text_line
from mirror.progress import Progress


def test_a_json_line_has_time_level_event_message_and_fields():
    moment = dt.datetime(2026, 5, 6, 7, 8, 9, 123456, tzinfo=dt.UTC)
    record = json.loads(json_line("info", "phase.end", "download: 2 MB", {"bytes": 2000000}, now=moment))
    assert record == {
        "ts": "2026-05-06T07:08:09.123Z",
        "level": "info",
        "event": "phase.end",
        "message": "download: 2 MB",
        "bytes": 2000000,
    }


def test_fields_cannot_overwrite_the_fixed_keys():
    record = json.loads(json_line("warning", "warning", "real", {"level": "info", "message": "fake", "n": 1}))
    assert (record["level"], record["message"], record["n"]) == ("warning", "real", 1)


def test_a_message_with_newlines_stays_on_one_line():
    assert "\n" not in json_line("error", "error", "first\nsecond")


def test_text_lines_are_prefixed_by_level_as_before():
    assert [text_line("info", "m"), text_line("warning", "m"), text_line("error", "m")] == [
        "m",
        "warning: m",
        "error: m",
    ]


def test_json_progress_writes_only_json_lines_and_never_a_bar():
    stream = io.StringIO()
    progress = Progress(stream=stream, bars=True, log_format="json")
    progress.start("download", 2000)
    progress.advance(2000)
    progress.log("resolved 1 image")
    progress.warn("tag moved")
    progress.finish()
    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(r["level"], r["event"]) for r in records] == [
        ("info", "phase.start"),
        ("info", "message"),
        ("warning", "warning"),
        ("info", "phase.end"),
    ]
    assert records[-1]["phase"] == "download" and records[-1]["bytes"] == 2000


def test_progress_records_how_long_each_phase_took_and_what_it_moved():
    progress = Progress(quiet=True)
    progress.mark("resolve")
    progress.start("download", 10)
    progress.advance(10)
    progress.finish()
    progress.mark("write")
    durations = progress.durations()
    assert list(durations) == ["resolve", "download", "write"]
    assert all(seconds >= 0 for seconds in durations.values())
    assert progress.phase_bytes == {"download": 10}
