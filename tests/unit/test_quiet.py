"""`-q` is quiet: a run that succeeds prints nothing but its warnings (and `--json` when asked for), so a cron job
mails only when there is something to read. Collect and import run on the registry simulator."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import mirror.collector.run as collector_run
import mirror.importer.run as importer_run
from mirror.cli import app
from tests.support.mirrorsets import write_mirrorset
from tests.support.signedbundles import SmallBundle, make_trust, sign
from tests.unit.registry_sim import RegistrySim
from tests.unit.test_collect_import_sim import INTERNAL, UPSTREAM, _upstream


def invoke(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def on_the_simulator(monkeypatch: pytest.MonkeyPatch) -> RegistrySim:
    """collect and import as the command line runs them, with the network replaced by the simulator."""
    upstream, _ = _upstream()
    target = RegistrySim(INTERNAL)
    collect, import_bundle = collector_run.collect, importer_run.import_bundle
    monkeypatch.setattr(collector_run, "collect", lambda *a, **k: collect(*a, **k, transport=upstream.transport()))
    monkeypatch.setattr(
        importer_run, "import_bundle", lambda *a, **k: import_bundle(*a, **k, transport=target.transport())
    )
    return target


@pytest.fixture
def mirrorset(tmp_path: Path) -> Path:
    return write_mirrorset(tmp_path / "m.yaml", [f"{UPSTREAM}/team/app:1.0"])


def test_a_quiet_collect_prints_nothing(tmp_path: Path, on_the_simulator: RegistrySim, mirrorset: Path) -> None:
    result = invoke("collect", mirrorset, "-o", tmp_path / "night", "-q")
    assert result.exit_code == 0, result.output
    assert (result.stdout, result.stderr) == ("", "")


def test_a_quiet_collect_still_prints_json_when_asked(
    tmp_path: Path, on_the_simulator: RegistrySim, mirrorset: Path
) -> None:
    result = invoke("collect", mirrorset, "-o", tmp_path / "night", "-q", "--json")
    assert json.loads(result.stdout)["bundle"] == str(tmp_path / "night")


def test_a_quiet_import_prints_nothing(tmp_path: Path, on_the_simulator: RegistrySim, mirrorset: Path) -> None:
    assert invoke("collect", mirrorset, "-o", tmp_path / "night", "-q").exit_code == 0
    result = invoke("import", tmp_path / "night", "--registry", f"https://{INTERNAL}", "--allow-unsigned", "-q")
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert "--allow-unsigned" in result.stderr  # a warning is never silenced by -q


def test_a_quiet_verify_of_a_good_bundle_prints_nothing(tmp_path: Path) -> None:
    trust = make_trust(tmp_path / "trust")
    bundle = SmallBundle(tmp_path / "bundle")
    bundle.image("registry.example/team/app:1.0")
    bundle.finish()
    sign(bundle.root, trust)
    result = invoke("verify", bundle.root, "--trust", trust.policy, "-q")
    assert result.exit_code == 0, result.output
    assert (result.stdout, result.stderr) == ("", "")


def test_a_quiet_verify_of_a_refused_bundle_still_says_why(tmp_path: Path) -> None:
    trust = make_trust(tmp_path / "trust")
    bundle = SmallBundle(tmp_path / "bundle")
    bundle.image("registry.example/team/app:1.0")
    bundle.finish()
    sign(bundle.root, trust, approve=False)
    result = invoke("verify", bundle.root, "--trust", trust.policy, "-q")
    assert result.exit_code == 3
    assert "APPROVER_THRESHOLD" in result.stdout
