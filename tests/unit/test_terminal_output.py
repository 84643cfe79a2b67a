"""Nothing a bundle, a registry or an upstream says reaches the terminal raw (issue 12, hole 4).

Each output path gets a bundle (or an answer) carrying an escape sequence that clears the screen and paints
green, a carriage return, and a newline followed by a fake "verified" line and a fake problem line. What the
command prints must hold no raw control character but its own line ends, and no line that the hostile text
started: the text is shown, visibly escaped, inside the line it belongs to.
"""

from __future__ import annotations

import io
import json
import os
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from mirror.cli import _fail, app
from mirror.errors import Problem, VerificationError
from mirror.flux.plan import FluxResolutionError
from mirror.logs import json_line
from mirror.progress import Progress
from tests.support.hostile import Answer, HostileServer, Request
from tests.support.signedbundles import SmallBundle, Trust, as_tar, make_trust, sign

VERIFIED_LINE = "verified: every file, signature and policy rule holds"  # what verify says of a good bundle
FAKE_PROBLEM = "  - [FAKE] injected problem"
# A tar member name is ASCII (the ustar reader refuses anything else), and at most 100 bytes.
TAR_HOSTILE = "evil\x1b[2J\x1b[32m\r\nverified\n  - [FAKE] x"
HOSTILE = f"evil\x1b[2J\x1b[32m\r\n{VERIFIED_LINE}\n{FAKE_PROBLEM}\x9b31m\u202e"
# Anything but the line feed that ends our own lines: C0, DEL, C1, line separators and bidirectional controls.
RAW_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def assert_shown_safely(text: str, verdicts: int = 0) -> None:
    """`verdicts`: how many real "verified" lines the command prints itself."""
    assert not RAW_CONTROL.search(text), f"raw control character in {text!r}"
    assert sum(line.startswith("verified:") for line in text.splitlines()) == verdicts, text
    for line in text.splitlines():
        assert "[FAKE]" not in line or "\\x0a" in line, f"a fake problem line: {line!r}"
    assert "\\x1b[2J" in text, "the hostile text is shown, escaped"


def invoke(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture
def trust(tmp_path: Path) -> Trust:
    return make_trust(tmp_path / "trust", allowed_sources=["registry.example/*"])


def signed_bundle(
    tmp_path: Path, trust: Trust, *, bundle_id: str = "b-1", source: str = "registry.example/a:1"
) -> Path:
    bundle = SmallBundle(tmp_path / "bundle", bundle_id=bundle_id)
    bundle.image(source)
    bundle.finish()
    sign(bundle.root, trust)
    return bundle.root


# --- verify ---------------------------------------------------------------------------------------------------


def test_verify_shows_a_hostile_bundle_id_escaped(tmp_path: Path, trust: Trust) -> None:
    bundle = signed_bundle(tmp_path, trust, bundle_id=HOSTILE)
    result = invoke("verify", bundle, "--trust", trust.policy)
    assert result.exit_code == 0, result.output
    assert_shown_safely(result.stdout, verdicts=1)
    assert result.stdout.splitlines()[-1] == VERIFIED_LINE  # the real verdict line


def test_verify_shows_a_hostile_directory_file_name_escaped(tmp_path: Path, trust: Trust) -> None:
    bundle = signed_bundle(tmp_path, trust)
    (bundle / "blobs" / "sha256" / HOSTILE.replace("/", "")).write_bytes(b"planted")
    result = invoke("verify", bundle, "--trust", trust.policy)
    assert result.exit_code == 3
    assert_shown_safely(result.stdout)
    assert [line for line in result.stdout.splitlines() if line.startswith("  - ")] == [
        line for line in result.stdout.splitlines() if "[FILE_UNLISTED]" in line
    ]


def test_verify_shows_a_hostile_tar_member_name_escaped(tmp_path: Path, trust: Trust) -> None:
    tar = as_tar(signed_bundle(tmp_path, trust), tmp_path / "bundle.tar", {f"blobs/{TAR_HOSTILE}": b"planted"})
    result = invoke("verify", tar, "--trust", trust.policy)
    assert result.exit_code == 3
    assert_shown_safely(result.stdout)
    assert "[FILE_UNLISTED] blobs/evil\\x1b[2J" in result.stdout


def test_verify_shows_a_hostile_artifact_source_escaped(tmp_path: Path, trust: Trust) -> None:
    bundle = signed_bundle(tmp_path, trust, source=f"elsewhere.example/{HOSTILE}")
    result = invoke("verify", bundle, "--trust", trust.policy)
    assert result.exit_code == 3
    assert_shown_safely(result.stdout)
    assert "[SOURCE_NOT_ALLOWED] elsewhere.example/evil\\x1b[2J" in result.stdout


# --- import ---------------------------------------------------------------------------------------------------


def test_import_refusal_shows_every_hostile_problem_escaped_on_its_own_line(tmp_path: Path, trust: Trust) -> None:
    # Two file problems: a policy problem (SOURCE_NOT_ALLOWED) would refuse before any file is read.
    bundle = signed_bundle(tmp_path, trust)
    for suffix in ("1", "2"):
        (bundle / "blobs" / "sha256" / (HOSTILE.replace("/", "") + suffix)).write_bytes(b"planted")
    result = invoke("import", bundle, "--trust", trust.policy, "--registry", "https://127.0.0.1:9/r")
    assert result.exit_code == 3
    assert result.stdout == ""
    assert_shown_safely(result.stderr)
    problem_lines = [line for line in result.stderr.splitlines() if line.startswith("  - ")]
    assert [line.split()[1] for line in problem_lines] == ["[FILE_UNLISTED]", "[FILE_UNLISTED]"]


def registry(answer_uploads: Answer):
    """A registry that has nothing: /v2/ answers, every HEAD is 404, and uploads get `answer_uploads`."""

    def route(request: Request) -> Answer:
        if request.path == "/v2/":
            return Answer(200, {"Content-Type": "application/json"}, b"{}")
        if request.method in ("HEAD", "GET"):
            return Answer(404, {"Content-Type": "application/json"}, b'{"errors": [{"code": "BLOB_UNKNOWN"}]}')
        return answer_uploads

    return route


def test_import_dry_run_shows_a_hostile_chart_version_escaped(tmp_path: Path) -> None:
    trust = make_trust(tmp_path / "trust")  # no allowedSources: the bundle is trusted and planned
    bundle = SmallBundle(tmp_path / "bundle", bundle_id=HOSTILE)
    bundle.chart("demo", HOSTILE)
    bundle.finish()
    sign(bundle.root, trust)
    with HostileServer(registry(Answer(500))) as server:
        result = invoke("import", bundle.root, "--trust", trust.policy, "--registry", server.url, "--dry-run")
    assert result.exit_code in (2, 3), result.output  # refused: the version is not a tag
    assert_shown_safely(result.stdout + result.stderr)


def test_a_registry_error_text_is_shown_escaped(tmp_path: Path, trust: Trust) -> None:
    bundle = signed_bundle(tmp_path, trust)
    body = json.dumps({"errors": [{"code": "DENIED", "message": HOSTILE}]}).encode()
    with HostileServer(registry(Answer(403, {"Content-Type": "application/json"}, body))) as server:
        result = invoke("import", bundle, "--allow-unsigned", "--registry", server.url)
    assert result.exit_code == 4, result.output
    assert "DENIED" in result.stderr
    assert_shown_safely(result.stdout + result.stderr)


# --- approve --------------------------------------------------------------------------------------------------


def test_approve_shows_a_hostile_bundle_id_escaped(tmp_path: Path, trust: Trust) -> None:
    bundle = SmallBundle(tmp_path / "bundle", bundle_id=HOSTILE)
    bundle.image("registry.example/a:1")
    bundle.finish()
    sign(bundle.root, trust, approve=False)
    result = invoke("approve", bundle.root, "--key", trust.officer_key, "--trust", trust.policy)
    assert result.exit_code == 0, result.output
    assert_shown_safely(result.stdout + result.stderr)


def test_approve_refusal_shows_a_hostile_file_name_escaped(tmp_path: Path, trust: Trust) -> None:
    bundle = signed_bundle(tmp_path, trust)
    (bundle / "blobs" / "sha256" / HOSTILE.replace("/", "")).write_bytes(b"planted")
    result = invoke("approve", bundle, "--key", trust.officer_key, "--trust", trust.policy)
    assert result.exit_code == 3
    assert_shown_safely(result.stderr)


# --- resolve and collect: what upstreams and MirrorSets name -----------------------------------------------------


def test_resolve_shows_hostile_upstream_names_escaped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import mirror.collector.run

    artifacts = [
        {
            "kind": "image",
            "source": f"registry.example/{HOSTILE}",
            "digest": "sha256:" + "a" * 64,
            "foundBy": [f"HelmRelease {HOSTILE}"],
            "requiredBy": HOSTILE,
            "platforms": [HOSTILE],
        }
    ]
    monkeypatch.setattr(mirror.collector.run, "resolve", lambda *a, **k: artifacts)
    manifest = tmp_path / "m.yaml"
    manifest.write_text("{}")
    result = invoke("resolve", manifest)
    assert result.exit_code == 0, result.output
    assert_shown_safely(result.stdout)


def test_collect_shows_hostile_upstream_names_escaped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import mirror.collector.run
    from mirror.bundle.inventory import ArtifactRecord, Inventory

    artifact = ArtifactRecord("image", f"registry.example/{HOSTILE}", "sha256:" + "a" * 64, "m", 1)
    inventory = Inventory("b-1", "2026-01-01T00:00:00Z", "t", (artifact,), ())
    result = SimpleNamespace(
        inventory=inventory,
        charts=[],
        images=[artifact],
        out=tmp_path / "night.tar",
        base=None,
        downloaded_bytes=0,
        summary=lambda: {},
    )
    monkeypatch.setattr(mirror.collector.run, "collect", lambda *a, **k: result)
    manifest = tmp_path / "m.yaml"
    manifest.write_text("{}")
    out = invoke("collect", manifest, "-o", tmp_path / "night.tar", "--no-cache")
    assert out.exit_code == 0, out.output
    assert_shown_safely(out.stdout)


# --- error, log and warning lines -------------------------------------------------------------------------------


def test_an_error_prints_each_problem_on_its_own_line_whatever_it_contains(capsys: pytest.CaptureFixture) -> None:
    error = VerificationError(
        f"bundle {HOSTILE}: refused",
        problems=[Problem("ONE", HOSTILE), Problem("TWO", "plain")],
        hint=f"hint {HOSTILE}",
    )
    _fail(error)
    err = capsys.readouterr().err
    assert_shown_safely(err)
    assert [line.split()[:2] for line in err.splitlines() if line.startswith("  - ")] == [
        ["-", "[ONE]"],
        ["-", "[TWO]"],
    ]
    assert len(err.splitlines()) == 4  # error, two problems, hint


def test_text_log_and_warning_lines_are_escaped() -> None:
    stream = io.StringIO()
    progress = Progress(stream=stream, bars=False)
    progress.log(f"chart {HOSTILE}")
    progress.warn(f"{HOSTILE}: moved")
    assert_shown_safely(stream.getvalue())
    assert len(stream.getvalue().splitlines()) == 2


def test_json_log_lines_stay_json_and_carry_no_raw_c1_or_bidi_control() -> None:
    line = json_line("warning", "warning", HOSTILE, {"source": HOSTILE})
    assert not RAW_CONTROL.search(line)
    record = json.loads(line)
    assert record["message"] == HOSTILE and record["source"] == HOSTILE


def test_flux_problems_are_printed_one_per_line_escaped(capsys: pytest.CaptureFixture) -> None:
    _fail(FluxResolutionError([HOSTILE, "plain"]))
    err = capsys.readouterr().err
    assert_shown_safely(err)
    assert err.splitlines()[0] == "error: 2 Flux problem(s)"
    assert len([line for line in err.splitlines() if line.startswith("  - ")]) == 2


def test_flux_problems_in_a_json_error_line_are_json(capsys: pytest.CaptureFixture) -> None:
    _fail(FluxResolutionError([HOSTILE]), log_format="json")
    line = capsys.readouterr().err
    assert not RAW_CONTROL.search(line)
    assert json.loads(line)["problems"] == [{"message": HOSTILE}]


@pytest.mark.parametrize("encoding", [{"LC_ALL": "C.UTF-8"}, {"PYTHONIOENCODING": "utf-8"}], ids=["c-utf8", "strict"])
def test_a_file_name_that_is_not_utf8_is_shown_as_escaped_bytes(
    tmp_path: Path, trust: Trust, mirror_process, encoding: dict[str, str]
) -> None:
    """A lone byte 0x9b is CSI on a terminal that takes 8-bit controls; Python carries it as a surrogate."""
    bundle = signed_bundle(tmp_path, trust)
    name = os.fsencode(bundle / "blobs" / "sha256") + b"/bad\x9b31m\xff"
    os.close(os.open(name, os.O_CREAT | os.O_WRONLY))
    result = mirror_process("verify", bundle, "--trust", trust.policy, env=encoding)
    assert result.exit_code == 3, result.stderr
    assert "[FILE_UNLISTED] blobs/sha256/bad\\x9b31m\\xff: present" in result.stdout


def test_inspect_html_shows_controls_and_bytes_that_are_not_utf8_escaped(tmp_path: Path) -> None:
    """JSON can carry a lone surrogate (\\udc9b); written raw, the UTF-8 page could not be written at all."""
    bundle = SmallBundle(tmp_path / "bundle", bundle_id=f"{HOSTILE}\udc9b\ud800")
    bundle.image("registry.example/a:1")
    bundle.finish()
    page = tmp_path / "review.html"
    result = invoke("inspect", bundle.root, "--html", page)
    assert result.exit_code == 0, result.output
    text = page.read_text(encoding="utf-8")
    assert not RAW_CONTROL.search(text.replace("\n", ""))
    assert "evil\\x1b[2J" in text and "\\x9b\\ud800" in text


def test_json_log_lines_carry_bytes_that_are_not_utf8_as_json_escapes() -> None:
    line = json_line("info", "message", "bad\udc9b")
    assert "\\udc9b" in line and json.loads(line)["message"] == "bad\udc9b"
    line.encode("utf-8")  # printable on a strict UTF-8 stream
