"""Warnings that repeat every night can be acknowledged in the MirrorSet (`spec.acknowledge`): they are counted,
with the reason given, not repeated. Every collect warning has a stable code for it."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

import mirror.collector.run as collector_run
from mirror.cli import app
from mirror.errors import ManifestError
from mirror.manifest.load import load_mirrorset_file
from mirror.progress import Progress
from mirror.warncodes import ACKNOWLEDGEABLE, TRANSFER_RETRY, UPSTREAM_TAG_MOVED, Acknowledgement
from tests.unit.test_collect_import_sim import UPSTREAM, _upstream

DOCS = Path(__file__).resolve().parents[2] / "docs" / "collector.md"


def _write(tmp_path: Path, acknowledge: object, images: list[str] | None = None) -> Path:
    spec = {"images": images or [], "acknowledge": acknowledge}
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump({"apiVersion": "mirror/v1", "kind": "MirrorSet", "metadata": {"name": "n"},
                                    "spec": spec}))  # fmt: skip
    return path


def _refusal(tmp_path: Path, acknowledge: object) -> ManifestError:
    with pytest.raises(ManifestError) as refused:
        load_mirrorset_file(_write(tmp_path, acknowledge))
    assert refused.value.exit_code == 2
    return refused.value


# --- the field ------------------------------------------------------------------------------------------------


def test_an_acknowledgement_is_read_with_its_code_glob_reason_and_origin(tmp_path: Path) -> None:
    path = _write(
        tmp_path, [{"code": "UPSTREAM_TAG_MOVED", "match": "*/team/app:*", "reason": "app:latest moves nightly"}]
    )
    [mirrorset] = load_mirrorset_file(path)
    assert mirrorset.acknowledge == (
        Acknowledgement(
            "UPSTREAM_TAG_MOVED", "*/team/app:*", "app:latest moves nightly", f"{path}: spec.acknowledge[0]"
        ),
    )


def test_an_acknowledgement_by_message_glob_alone_is_read(tmp_path: Path) -> None:
    [mirrorset] = load_mirrorset_file(_write(tmp_path, [{"match": "chart podinfo*", "reason": "known"}]))
    assert mirrorset.acknowledge[0].code is None


def test_an_unknown_code_is_refused_naming_the_field_and_the_known_codes(tmp_path: Path) -> None:
    refused = _refusal(tmp_path, [{"code": "NO_SUCH_WARNING", "reason": "x"}])
    assert refused.field == "spec.acknowledge[0].code"
    assert "UPSTREAM_TAG_MOVED" in (refused.hint or "")


def test_an_acknowledgement_without_a_reason_is_refused(tmp_path: Path) -> None:
    assert _refusal(tmp_path, [{"code": "UPSTREAM_TAG_MOVED"}]).field == "spec.acknowledge[0].reason"


def test_an_acknowledgement_of_everything_is_refused(tmp_path: Path) -> None:
    assert _refusal(tmp_path, [{"reason": "quiet please"}]).field == "spec.acknowledge[0]"


def test_an_unknown_field_of_an_acknowledgement_is_refused(tmp_path: Path) -> None:
    refused = _refusal(tmp_path, [{"code": "UPSTREAM_TAG_MOVED", "reason": "x", "until": "2030-01-01"}])
    assert refused.field == "spec.acknowledge[0].until"


def test_acknowledge_must_be_a_list(tmp_path: Path) -> None:
    assert _refusal(tmp_path, {"code": "UPSTREAM_TAG_MOVED"}).field == "spec.acknowledge"


def test_the_docs_list_every_acknowledgeable_code() -> None:
    text = DOCS.read_text()
    section = text[text.index("## Acknowledged warnings") :]
    listed = set(re.findall(r"^\| `([A-Z_]+)` \|", section, re.MULTILINE))
    assert listed == set(ACKNOWLEDGEABLE)


# --- progress ---------------------------------------------------------------------------------------------------


def test_an_acknowledged_warning_is_counted_with_its_reason_and_not_shown() -> None:
    stream = io.StringIO()
    progress = Progress(stream=stream)
    progress.acknowledge([Acknowledgement(UPSTREAM_TAG_MOVED, None, "moves nightly", "m.yaml: spec.acknowledge[0]")])
    progress.warn("x:1 moved since the base", UPSTREAM_TAG_MOVED)
    assert stream.getvalue() == ""
    assert progress.acknowledged == [
        {"code": UPSTREAM_TAG_MOVED, "message": "x:1 moved since the base", "reason": "moves nightly"}
    ]
    assert progress.warnings == []


def test_a_warning_of_another_code_is_still_shown() -> None:
    stream = io.StringIO()
    progress = Progress(stream=stream)
    progress.acknowledge([Acknowledgement(UPSTREAM_TAG_MOVED, None, "moves nightly", "m.yaml: spec.acknowledge[0]")])
    progress.warn("registry answered 503; retrying", TRANSFER_RETRY)
    assert stream.getvalue() == "warning: registry answered 503; retrying\n"


def test_a_glob_narrows_an_acknowledgement_to_the_warnings_it_matches() -> None:
    stream = io.StringIO()
    progress = Progress(stream=stream)
    progress.acknowledge([Acknowledgement(UPSTREAM_TAG_MOVED, "x:*", "x moves", "m.yaml: spec.acknowledge[0]")])
    progress.warn("x:1 moved since the base", UPSTREAM_TAG_MOVED)
    progress.warn("y:1 moved since the base", UPSTREAM_TAG_MOVED)
    assert stream.getvalue() == "warning: y:1 moved since the base\n"


def test_a_json_warning_line_carries_its_code() -> None:
    stream = io.StringIO()
    Progress(stream=stream, log_format="json").warn("x:1 moved since the base", UPSTREAM_TAG_MOVED)
    assert json.loads(stream.getvalue())["code"] == UPSTREAM_TAG_MOVED


# --- a collect ------------------------------------------------------------------------------------------------


@pytest.fixture
def flaky_upstream(monkeypatch: pytest.MonkeyPatch) -> None:
    """The collect of the command line on the simulator, whose first manifest request answers 503 (a retry)."""
    upstream, _ = _upstream()
    upstream.fail(1, 503)
    collect = collector_run.collect
    monkeypatch.setattr(collector_run, "collect", lambda *a, **k: collect(*a, **k, transport=upstream.transport()))


def _acknowledging_retries(tmp_path: Path) -> Path:
    acknowledge = [{"code": TRANSFER_RETRY, "reason": "the upstream answers 503 under load every night"}]
    return _write(tmp_path, acknowledge, [f"{UPSTREAM}/team/app:1.0"])


def test_a_collect_does_not_repeat_an_acknowledged_warning_and_counts_it(tmp_path: Path, flaky_upstream) -> None:
    result = CliRunner().invoke(app, ["collect", str(_acknowledging_retries(tmp_path)), "-o", str(tmp_path / "b")])
    assert result.exit_code == 0, result.output
    assert "warning:" not in result.stderr
    assert "1 warning(s) acknowledged in the MirrorSet, not shown: TRANSFER_RETRY x1" in result.stderr


def test_a_collect_lists_acknowledged_warnings_with_their_reasons_in_json(tmp_path: Path, flaky_upstream) -> None:
    args = ["collect", str(_acknowledging_retries(tmp_path)), "-o", str(tmp_path / "b"), "--json", "-q"]
    result = CliRunner().invoke(app, args)
    summary = json.loads(result.stdout)
    [acknowledged] = summary["acknowledged"]
    assert (acknowledged["code"], acknowledged["reason"]) == (
        TRANSFER_RETRY,
        "the upstream answers 503 under load every night",
    )
    assert summary["warnings"] == []


def test_a_collect_shows_the_warnings_no_acknowledgement_covers(tmp_path: Path, flaky_upstream) -> None:
    path = _write(tmp_path, [{"code": UPSTREAM_TAG_MOVED, "reason": "x"}], [f"{UPSTREAM}/team/app:1.0"])
    result = CliRunner().invoke(app, ["collect", str(path), "-o", str(tmp_path / "b"), "--json"])
    assert "warning:" in result.stderr
    assert [w["code"] for w in json.loads(result.stdout)["warnings"]] == [TRANSFER_RETRY]
