"""--report: one JSON document per run, written whatever the outcome, and never a credential in it."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from mirror.errors import Problem, TransferError, UsageError, VerificationError
from mirror.progress import Progress
from mirror.report import build_report, failure_entry, redact_url, reporting

START = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


def _report(**overrides):
    fields = {"started": START, "finished": START + dt.timedelta(seconds=90), "durations": {}, "transfer": {}}
    return build_report("collect", **{**fields, **overrides})


def test_a_successful_run_is_ok_with_exit_code_0():
    report = _report()
    assert (report["ok"], report["exitCode"], report["failed"]) == (True, 0, [])


def test_the_report_names_its_schema_and_command():
    report = _report()
    assert (report["apiVersion"], report["kind"], report["command"]) == ("mirror/v1", "RunReport", "collect")


def test_times_are_utc_and_the_total_duration_is_added_to_the_phases():
    report = _report(durations={"resolve": 1.5, "download": 80.0})
    assert (report["started"], report["finished"]) == ("2026-01-02T03:04:05Z", "2026-01-02T03:05:35Z")
    assert report["durations"] == {"resolve": 1.5, "download": 80.0, "total": 90.0}


def test_the_command_result_is_kept_but_cannot_overwrite_the_run_fields():
    report = _report(result={"bundle": "/b", "ok": "spoofed", "artifacts": [{"kind": "image"}]})
    assert report["bundle"] == "/b" and report["artifacts"] == [{"kind": "image"}]
    assert report["ok"] is True


def test_a_failed_run_carries_the_exit_code_of_its_failure():
    report = _report(failed=[failure_entry(TransferError("upstream unreachable", hint="check the proxy"))])
    assert (report["ok"], report["exitCode"]) == (False, 4)
    assert report["failed"] == [
        {"exitCode": 4, "error": "TransferError", "message": "upstream unreachable", "hint": "check the proxy"}
    ]


def test_a_verification_failure_lists_every_problem():
    error = VerificationError("refused", problems=[Problem("digest", "blobs/sha256/ab: bad"), Problem("sig", "x")])
    entry = failure_entry(error)
    assert entry["exitCode"] == 3
    assert entry["problems"] == [{"code": "digest", "message": "blobs/sha256/ab: bad"}, {"code": "sig", "message": "x"}]


def test_an_unexpected_error_is_exit_1_and_an_interrupt_is_130():
    assert failure_entry(ValueError("boom")) == {"exitCode": 1, "error": "InternalError", "message": "ValueError: boom"}
    assert failure_entry(KeyboardInterrupt())["exitCode"] == 130


def test_user_information_is_removed_from_urls():
    assert redact_url("https://bob:hunter2@registry.internal/mirror") == "https://***@registry.internal/mirror"
    assert redact_url("https://registry.internal:5000/x") == "https://registry.internal:5000/x"


def test_reporting_writes_the_report_when_the_block_succeeds(tmp_path):
    path = tmp_path / "run.json"
    with reporting(path, "import", Progress(quiet=True), {"bundle": "b.tar"}) as run:
        run.transfer = {"uploaded": 42}
    written = json.loads(path.read_text())
    assert (written["ok"], written["bundle"], written["transfer"]) == (True, "b.tar", {"uploaded": 42})


def test_reporting_writes_the_report_when_the_block_fails_and_lets_the_error_through(tmp_path):
    path = tmp_path / "run.json"
    with pytest.raises(TransferError), reporting(path, "collect", Progress(quiet=True)):
        raise TransferError("registry answered 503")
    written = json.loads(path.read_text())
    assert (written["ok"], written["exitCode"], written["failed"][0]["message"]) == (False, 4, "registry answered 503")
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]


def test_the_report_keeps_the_warnings_logged_during_the_run(tmp_path):
    path = tmp_path / "run.json"
    progress = Progress(quiet=True)
    with reporting(path, "collect", progress):
        progress.warn("x:1 not found upstream; left out")
    assert json.loads(path.read_text())["warnings"] == ["x:1 not found upstream; left out"]


def test_a_report_in_a_missing_directory_is_refused_before_any_work(tmp_path):
    ran = []
    with (
        pytest.raises(UsageError, match="does not exist"),
        reporting(tmp_path / "no" / "r.json", "collect", Progress()),
    ):
        ran.append(True)
    assert ran == []
