"""A refusal that lists several things (hosts, files, refs, fsck findings, what a failed import left) carries
each as one of its problems, which the command line prints on a line of its own, escaped: none reaches the
terminal as one line holding literal \\x0a escapes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mirror.cli import _fail
from mirror.egress import EgressPolicy, EgressRefusedError
from mirror.errors import MirrorError, Problem, UsageError, VerificationError
from mirror.git.bundles import _push_error
from mirror.importer.flux_out import RECORD_NAME, check_output_directory
from mirror.importer.run import PartialImportError, WriteLog, _Refusals


def printed(error: MirrorError, capsys: pytest.CaptureFixture) -> list[str]:
    _fail(error)
    lines = capsys.readouterr().err.splitlines()
    assert not [line for line in lines if "\\x0a" in line], lines
    return lines


def listed(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith("  - ")]


def test_an_egress_refusal_prints_each_refused_host_on_its_own_line(capsys: pytest.CaptureFixture) -> None:
    policy = EgressPolicy(["registry.example"])
    with pytest.raises(EgressRefusedError) as caught:
        policy.require_discovered([("one.example", "chart a"), ("two.example", "chart b")])
    lines = printed(caught.value, capsys)
    assert lines[0] == "error: 2 host(s) outside the egress policy"
    assert [line.split()[1] for line in listed(lines)] == ["one.example:", "two.example:"]


def test_a_flux_out_refusal_prints_each_file_on_its_own_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / RECORD_NAME).write_text(json.dumps({"format": "mirror.flux-out/v1", "files": {}}))
    (tmp_path / "a.yaml").write_text("a")
    (tmp_path / "b.yaml").write_text("b")
    with pytest.raises(UsageError) as caught:
        check_output_directory(tmp_path)
    lines = printed(caught.value, capsys)
    assert lines[0] == f"error: {tmp_path}: holds what an import cannot replace"
    assert listed(lines) == ["  - a.yaml: mirror did not write it", "  - b.yaml: mirror did not write it"]


def test_a_push_refusal_prints_each_rejected_ref_on_its_own_line(capsys: pytest.CaptureFixture) -> None:
    stdout = "To http://git.example/r.git\n!\trefs/heads/a:refs/heads/a\t[remote rejected] (hook declined)\n"
    stdout += "!\trefs/heads/b:refs/heads/b\t[remote rejected] (hook declined)\nDone\n"
    lines = printed(_push_error("http://git.example/r.git", stdout, "", None), capsys)
    assert lines[0] == "error: http://git.example/r.git: the server refused the push; nothing was pushed"
    assert len(listed(lines)) == 2


def test_a_partial_import_prints_each_problem_of_its_cause_on_its_own_line(capsys: pytest.CaptureFixture) -> None:
    cause = VerificationError("refused", problems=[Problem("ONE", "first"), Problem("TWO", "second")])
    lines = printed(PartialImportError(cause, WriteLog()), capsys)
    assert lines[0].startswith("error: partially imported (") and lines[0].endswith("): refused")
    assert listed(lines) == ["  - [ONE] first", "  - [TWO] second"]


def test_a_refusal_with_problems_still_names_them_in_its_text() -> None:
    """str() of the error (a report, a log line of another command) keeps listing what it refused."""
    policy = EgressPolicy(["registry.example"])
    with pytest.raises(EgressRefusedError) as caught:
        policy.require_discovered([("one.example", "chart a")])
    assert "one.example" in str(caught.value)


def test_a_refusal_listed_as_one_problem_of_another_keeps_its_problems_on_one_line() -> None:
    error = UsageError("2 host(s) outside the egress policy", problems=["a.example: no", "b.example: no"])
    assert error.one_line() == "2 host(s) outside the egress policy; a.example: no; b.example: no"


def test_import_refusals_found_together_keep_naming_the_flux_out_directory(tmp_path: Path) -> None:
    (tmp_path / RECORD_NAME).write_text(json.dumps({"format": "mirror.flux-out/v1", "files": {}}))
    (tmp_path / "a.yaml").write_text("a")
    refusals = _Refusals()
    with refusals.check():
        check_output_directory(tmp_path)
    with refusals.check():
        raise UsageError("--registry: not a URL")
    with pytest.raises(UsageError) as caught:
        refusals.raise_any("night.tar")
    assert [str(p) for p in caught.value.problems] == [
        f"[IMPORT_REFUSED] {tmp_path}: holds what an import cannot replace: a.yaml: mirror did not write it",
        "[IMPORT_REFUSED] --registry: not a URL",
    ]


def test_import_refusals_found_together_say_nothing_was_written_once() -> None:
    refusals = _Refusals()
    with refusals.check():
        raise VerificationError("2 item(s) are not on the target", hint="import its base first. Nothing was written")
    with refusals.check():
        raise UsageError("tags on the target", hint="remove those tags; nothing was written")
    with pytest.raises(VerificationError) as caught:
        refusals.raise_any("night.tar")
    assert caught.value.hint is not None
    assert caught.value.hint.lower().count("nothing was written") == 1, caught.value.hint
    assert "import its base first" in caught.value.hint and "remove those tags" in caught.value.hint


def test_import_refusals_with_the_same_hint_give_it_once() -> None:
    refusals = _Refusals()
    for what in ("images", "git"):
        with refusals.check():
            raise VerificationError(f"{what} not on the target", hint="import its base first. Nothing was written")
    with pytest.raises(VerificationError) as caught:
        refusals.raise_any("night.tar")
    assert caught.value.hint == "nothing was written; import its base first"
