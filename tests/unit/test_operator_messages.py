"""What the commands tell an operator or an officer, beyond their results: that a key was written unencrypted,
how many approvals a bundle still needs, which options a command ignores."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mirror.cli import app
from mirror.trust.keys import generate
from tests.support.signedbundles import SmallBundle, make_trust, sign


def invoke(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(app, list(args), env=env, catch_exceptions=False)


def test_keygen_warns_that_a_key_written_without_a_password_is_unencrypted(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("MIRROR_KEY_PASSWORD", raising=False)
    result = invoke("keygen", str(tmp_path / "officer"))
    assert result.exit_code == 0
    assert f"warning: {tmp_path / 'officer.key'} is written unencrypted" in result.stderr
    assert "MIRROR_KEY_PASSWORD" in result.stderr


def test_keygen_says_a_key_written_with_a_password_is_encrypted(tmp_path: Path) -> None:
    result = invoke("keygen", str(tmp_path / "officer"), env={"MIRROR_KEY_PASSWORD": "correct horse"})
    assert result.exit_code == 0
    assert "unencrypted" not in result.stderr
    assert f"{tmp_path / 'officer.key'} is encrypted with MIRROR_KEY_PASSWORD" in result.stderr


def test_keygen_prints_only_the_key_id_on_stdout(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("MIRROR_KEY_PASSWORD", raising=False)
    result = invoke("keygen", str(tmp_path / "officer"))
    assert len(result.stdout.splitlines()) == 1


@pytest.mark.parametrize("command", ["verify", "approve"])
def test_commands_without_network_work_do_not_offer_jobs(command: str) -> None:
    assert "--jobs" not in invoke(command, "--help").stdout


def test_verify_still_accepts_jobs_from_old_scripts_and_says_it_is_unused(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("apiVersion: mirror/v1\n")
    result = invoke("verify", str(tmp_path), "--trust", str(policy), "--jobs", "8")
    assert "no such option" not in result.stderr
    assert "--jobs is no longer used" in result.stderr


def _two_officer_bundle(tmp_path: Path) -> tuple[Path, Path, list[Path]]:
    """A collector-signed bundle, not yet approved, and a policy asking for 2 approvals of officer and officer-b."""
    trust = make_trust(tmp_path / "trust", approvals=2)
    second, _, _ = generate(str(tmp_path / "trust" / "officer-b"), env={})
    policy = json.loads(trust.policy.read_text())
    policy["approvers"]["keys"].append("officer-b.pub")
    trust.policy.write_text(json.dumps(policy))
    bundle = SmallBundle(tmp_path / "bundle")
    bundle.image("registry.example/team/app:1.0")
    bundle.finish()
    sign(bundle.root, trust, approve=False)
    return bundle.root, trust.policy, [trust.officer_key, second]


def approve(bundle: Path, key: Path, *options: str):
    return invoke("approve", str(bundle), "--key", str(key), *options, env={"MIRROR_KEY_PASSWORD": ""})


def test_approve_says_how_many_approvals_the_policy_requires(tmp_path: Path) -> None:
    bundle, policy, (officer, _) = _two_officer_bundle(tmp_path)
    result = approve(bundle, officer, "--trust", str(policy))
    assert result.exit_code == 0, result.output
    assert "approval 1 of 2 required" in result.stdout


def test_approve_says_when_the_required_approvals_are_complete(tmp_path: Path) -> None:
    bundle, policy, (officer, officer_b) = _two_officer_bundle(tmp_path)
    approve(bundle, officer, "--trust", str(policy))
    result = approve(bundle, officer_b, "--trust", str(policy))
    assert "approval 2 of 2 required: the bundle has every approval the policy requires" in result.stdout


def test_approving_twice_with_one_key_counts_once(tmp_path: Path) -> None:
    bundle, policy, (officer, _) = _two_officer_bundle(tmp_path)
    approve(bundle, officer, "--trust", str(policy))
    result = approve(bundle, officer, "--trust", str(policy))
    assert "approval 1 of 2 required" in result.stdout


def test_approve_reports_the_count_in_json(tmp_path: Path) -> None:
    bundle, policy, (officer, _) = _two_officer_bundle(tmp_path)
    result = approve(bundle, officer, "--trust", str(policy), "--json")
    assert json.loads(result.stdout)["approvals"] == {"counted": 1, "required": 2}


def test_approve_without_a_policy_says_where_the_required_count_is(tmp_path: Path) -> None:
    bundle, _, (officer, _) = _two_officer_bundle(tmp_path)
    result = approve(bundle, officer, "--collector-key", str(tmp_path / "trust" / "collector.pub"))
    assert result.exit_code == 0, result.output
    assert "pass --trust POLICY to count the approvals it requires" in result.stdout
