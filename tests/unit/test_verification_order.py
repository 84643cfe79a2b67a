"""Signatures over the inventory are judged before any file is hashed: a forged bundle is refused in moments,
whatever its size, and only a bundle whose signatures hold is read in full."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mirror.bundle import reader as bundle_reader
from mirror.cli import app
from mirror.errors import VerificationError
from mirror.trust.approve import approve_bundle
from mirror.trust.check import check_trust
from tests.support.craft import craft_bundle, p256_signer, sparse_is_sparse, write_policy, write_public_key

GiB = 1 << 30
COLLECTOR = p256_signer("collector")
ATTACKER = p256_signer("attacker")
OFFICER = p256_signer("officer")


@pytest.fixture
def opened_paths(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every path verification opens in a directory bundle."""
    seen: list[str] = []
    original = bundle_reader.DirectoryBundle.open

    def spy(self: bundle_reader.DirectoryBundle, path: str):  # type: ignore[no-untyped-def]
        seen.append(path)
        return original(self, path)

    monkeypatch.setattr(bundle_reader.DirectoryBundle, "open", spy)
    return seen


@pytest.fixture
def policy(tmp_path: Path) -> Path:
    directory = tmp_path / "trust"
    directory.mkdir()
    return write_policy(directory, COLLECTOR)


@pytest.fixture
def forged_20g(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A bundle signed by a key the policy does not list, with a sparse 20 GiB layer."""
    crafted = craft_bundle(tmp_path / "forged", ATTACKER, sparse_layer_bytes=20 * GiB)
    assert sparse_is_sparse(crafted.layer)
    return crafted


def test_verify_refuses_a_forged_20_gib_bundle_without_reading_its_layer(forged_20g, policy, opened_paths):
    started = time.monotonic()
    result = CliRunner().invoke(app, ["verify", str(forged_20g.root), "--trust", str(policy)])
    elapsed = time.monotonic() - started
    assert result.exit_code == 3, result.stdout + result.stderr
    assert "[COLLECTOR_THRESHOLD]" in result.stdout
    layer = str(forged_20g.layer.relative_to(forged_20g.root))
    assert layer not in opened_paths
    assert elapsed < 10, f"took {elapsed:.1f} s"


def test_a_refusal_by_signatures_says_the_files_were_not_checked(forged_20g, policy):
    result = CliRunner().invoke(app, ["verify", str(forged_20g.root), "--trust", str(policy), "--json"])
    assert result.exit_code == 3, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["filesChecked"] is False
    assert [p["code"] for p in report["problems"]] == ["COLLECTOR_THRESHOLD"]
    text = CliRunner().invoke(app, ["verify", str(forged_20g.root), "--trust", str(policy)])
    assert "files were not checked" in text.stdout


def test_a_bundle_whose_signatures_hold_is_hashed_in_full(tmp_path, policy, opened_paths):
    crafted = craft_bundle(tmp_path / "signed", COLLECTOR)
    crafted.layer.write_bytes(crafted.layer.read_bytes().replace(b"layer", b"LAYER", 1))
    report = check_trust(crafted.root, policy)
    assert report.files_checked
    assert [p.code for p in report.problems] == ["FILE_DIGEST"]
    assert str(crafted.layer.relative_to(crafted.root)) in opened_paths


def test_an_intact_signed_bundle_is_verified(tmp_path, policy):
    crafted = craft_bundle(tmp_path / "signed", COLLECTOR)
    report = check_trust(crafted.root, policy)
    assert report.ok, report.problems
    assert report.to_json()["filesChecked"] is True


def test_approve_refuses_a_forged_bundle_without_reading_its_layer(forged_20g, opened_paths):
    started = time.monotonic()
    with pytest.raises(VerificationError) as refused:
        approve_bundle(forged_20g.root, OFFICER, collector_keys=[COLLECTOR.public])
    assert time.monotonic() - started < 10
    assert [p.code for p in refused.value.problems] == ["COLLECTOR_THRESHOLD"]
    assert str(forged_20g.layer.relative_to(forged_20g.root)) not in opened_paths
    assert len(list((forged_20g.root / "signatures").iterdir())) == 1  # no approval added


def test_approve_refused_by_allowed_sources_names_the_source_rules_not_the_signatures(tmp_path, policy):
    crafted = craft_bundle(tmp_path / "signed", COLLECTOR)
    officer = write_public_key(OFFICER, policy.parent / "officer.pub")
    policy.write_text(
        policy.read_text()
        + f"approvers: {{keys: ['{officer}'], threshold: 1}}\nallowedSources: ['registry.example.org/*']\n"
    )
    with pytest.raises(VerificationError) as refused:
        approve_bundle(crafted.root, OFFICER, trust=policy)
    assert [p.code for p in refused.value.problems] == ["SOURCE_NOT_ALLOWED"]
    assert "signature" not in str(refused.value)
    assert "allowedSources" in str(refused.value)
    assert refused.value.hint is not None and "allowedSources" in refused.value.hint
    assert "signature" not in refused.value.hint


def test_verify_refused_by_allowed_sources_alone_does_not_blame_the_signatures(tmp_path, policy):
    crafted = craft_bundle(tmp_path / "signed", COLLECTOR)
    policy.write_text(policy.read_text() + "allowedSources: ['registry.example.org/*']\n")
    result = CliRunner().invoke(app, ["verify", str(crafted.root), "--trust", str(policy)])
    assert result.exit_code == 3, result.stdout + result.stderr
    assert "[SOURCE_NOT_ALLOWED]" in result.stdout
    assert "the signatures already refuse" not in result.stdout + result.stderr
    assert "allowedSources" in result.stdout + result.stderr
