"""The command line: usage errors exit 2 without a traceback, and progress goes to stderr, never stdout."""

from __future__ import annotations

import io
import json

from typer.testing import CliRunner

from mirror import __version__
from mirror.cli import app
from mirror.progress import Progress, human_size


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def test_version_is_printed():
    result = invoke("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"mirror {__version__}"


def test_missing_manifest_file_exits_2():
    result = invoke("resolve", "/nonexistent/manifest.yaml")
    assert result.exit_code == 2
    assert "Traceback" not in result.output


def test_collect_without_out_exits_2(tmp_path):
    manifest = tmp_path / "m.yaml"
    manifest.write_text("apiVersion: mirror/v1\n")
    assert invoke("collect", str(manifest)).exit_code == 2


def test_import_without_registry_exits_2(tmp_path):
    assert invoke("import", str(tmp_path)).exit_code == 2


def test_invalid_manifest_prints_error_and_hint_on_stderr(tmp_path):
    manifest = tmp_path / "m.yaml"
    manifest.write_text("apiVersion: mirror/v1\nkind: MirrorSet\nmetadata: {name: x}\nspec: {imagez: []}\n")
    result = invoke("resolve", str(manifest))
    assert result.exit_code == 2
    assert result.stdout == ""
    assert f"error: {manifest}: spec.imagez: unknown field" in result.stderr
    assert "hint: allowed fields here:" in result.stderr


def test_bundle_that_does_not_exist_as_import_target_exits_2(tmp_path):
    result = invoke("import", str(tmp_path / "nothing"), "--registry", "https://r.example", "--allow-unsigned")
    assert result.exit_code == 2


def test_registry_url_with_credentials_is_refused_without_echoing_them(tmp_path):
    result = invoke("import", str(tmp_path), "--registry", "https://user:hunter2@r.example", "--allow-unsigned")
    assert result.exit_code == 2
    assert "hunter2" not in result.output


def test_plain_progress_logs_lines_to_its_stream():
    stream = io.StringIO()
    progress = Progress(stream=stream, bars=False)
    progress.start("download", 2000)
    progress.advance(2000)
    progress.finish()
    lines = stream.getvalue().splitlines()
    assert lines[0] == "download: 2.0 KB to go"
    assert lines[1].startswith("download: 2.0 KB in ")


def test_terminal_progress_draws_a_bar_and_logs_above_it():
    stream = io.StringIO()
    progress = Progress(stream=stream, bars=True)
    progress.start("upload", 10_000)
    progress.advance(5_000)
    progress.log("half way")
    progress.finish()
    assert "upload" in stream.getvalue() and "half way" in stream.getvalue()


def test_quiet_progress_prints_nothing_but_warnings():
    stream = io.StringIO()
    progress = Progress(stream=stream, quiet=True)
    progress.start("download", 10)
    progress.log("not shown")
    progress.warn("shown")
    progress.finish()
    assert stream.getvalue() == "warning: shown\n"


def test_human_sizes_use_decimal_units():
    assert [human_size(n) for n in (999, 1000, 1_500_000, 2_000_000_000)] == ["999 B", "1.0 KB", "1.5 MB", "2.0 GB"]


def test_a_failed_import_writes_its_report_with_the_exit_code_and_no_credential(tmp_path):
    report = tmp_path / "run.json"
    url = "https://user:hunter2@r.example"
    result = invoke("import", str(tmp_path), "--registry", url, "--allow-unsigned", "--report", str(report))
    assert result.exit_code == 2
    written = json.loads(report.read_text())
    assert (written["ok"], written["exitCode"], written["command"]) == (False, 2, "import")
    assert "--registry" in written["failed"][0]["message"]
    assert "hunter2" not in report.read_text()


def test_with_json_logs_an_error_is_one_json_line_on_stderr(tmp_path):
    url = "https://user:hunter2@r.example"
    result = invoke("import", str(tmp_path), "--registry", url, "--allow-unsigned", "--log-format", "json")
    assert result.exit_code == 2
    [line] = result.stderr.splitlines()
    record = json.loads(line)
    assert (record["level"], record["event"], record["exitCode"]) == ("error", "error", 2)
    assert "hunter2" not in result.stderr


def test_an_unknown_log_format_exits_2():
    result = invoke("collect", "m.yaml", "-o", "out", "--log-format", "xml")
    assert result.exit_code == 2


def test_a_bad_split_size_is_reported_in_the_run_report(tmp_path):
    manifest = tmp_path / "m.yaml"
    manifest.write_text("apiVersion: mirror/v1\nkind: MirrorSet\nmetadata: {name: m}\nspec: {images: []}\n")
    report = tmp_path / "run.json"
    result = invoke(
        "collect", str(manifest), "-o", str(tmp_path / "n.tar"), "--split-size", "4X", "--report", str(report)
    )
    assert result.exit_code == 2
    written = json.loads(report.read_text())
    assert (written["ok"], written["exitCode"]) == (False, 2)
    assert "--split-size" in written["failed"][0]["message"]
