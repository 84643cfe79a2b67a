"""manifests/nightly/mirror-nightly.sh, the script the systemd timer and the CronJob run, on the real services:
night after night it writes a signed bundle incremental to the last good night."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tarfile
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.mirrorsets import write_mirrorset
from tests.support.services import UPSTREAM_REGISTRY

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "manifests" / "nightly" / "mirror-nightly.sh"
MIRROR = REPO_ROOT / ".venv" / "bin" / "mirror"
UPSTREAM_SETTINGS = {UPSTREAM_REGISTRY: {"plainHTTP": True}}


@pytest.fixture
def host(tmp_path: Path, upstream_images: dict[str, Any]) -> dict[str, Any]:
    """A collector host as the systemd unit sets it up: a MirrorSet, a key, and a data directory."""
    etc = tmp_path / "etc"
    (etc / "keys").mkdir(parents=True)
    subprocess.run([MIRROR, "keygen", etc / "keys" / "collector"], check=True, capture_output=True)
    mirrorset = write_mirrorset(
        etc / "mirrorset.yaml", [upstream_images["app_1"]["ref"], upstream_images["shared_a"]["ref"]],
        registries=UPSTREAM_SETTINGS,
    )  # fmt: skip
    env = {
        **os.environ,
        "MIRROR_BIN": str(MIRROR),
        "MIRROR_SET": str(mirrorset),
        "MIRROR_KEY": str(etc / "keys" / "collector.key"),
        "MIRROR_DATA": str(tmp_path / "data"),
    }
    return {"env": env, "bundles": tmp_path / "data" / "bundles", "data": tmp_path / "data", "set": mirrorset}


def night(host: dict[str, Any], **env: str) -> subprocess.CompletedProcess[str]:
    # Nights are named by the second; never start two in the same one.
    time.sleep(1.0 - time.time() % 1.0 + 0.01)
    return subprocess.run(
        ["sh", SCRIPT], env={**host["env"], **env}, capture_output=True, text=True, timeout=300, check=False
    )


def inventory_of(bundle: Path) -> dict[str, Any]:
    with tarfile.open(bundle) as tar:
        member = tar.extractfile("inventory.json")
        assert member is not None
        return json.loads(member.read())


def test_the_first_night_is_a_full_signed_bundle_with_a_report_and_json_logs(host: dict[str, Any]) -> None:
    done = night(host)
    assert done.returncode == 0, done.stderr
    (bundle,) = host["bundles"].glob("*.tar")
    latest = host["bundles"] / "latest.inventory.json"
    assert latest.is_symlink() and latest.resolve() == bundle.with_name(bundle.stem + ".inventory.json")
    inventory = inventory_of(bundle)
    assert "base" not in inventory
    with tarfile.open(bundle) as tar:
        assert any(name.startswith("signatures/") for name in tar.getnames())
    report = json.loads(bundle.with_name(bundle.stem + ".report.json").read_text())
    assert (report["ok"], report["exitCode"]) == (True, 0)
    log_lines = [line for line in done.stderr.splitlines() if line.startswith("{")]
    assert log_lines and all("level" in json.loads(line) for line in log_lines)
    assert json.loads((host["data"] / "collector.state.json").read_text()) == {"sequence": 1}


def test_the_next_night_is_incremental_to_the_last_good_one(host: dict[str, Any]) -> None:
    assert night(host).returncode == 0
    first_inventory = (host["bundles"] / "latest.inventory.json").resolve()
    done = night(host)
    assert done.returncode == 0, done.stderr
    second = max(host["bundles"].glob("*.tar"))
    inventory = inventory_of(second)
    assert inventory["base"]["inventory"] == "sha256:" + hashlib.sha256(first_inventory.read_bytes()).hexdigest()
    assert not [f for f in inventory["files"] if f["path"].startswith("blobs/")]  # nothing changed upstream
    assert (host["bundles"] / "latest.inventory.json").resolve() == second.with_name(second.stem + ".inventory.json")
    assert json.loads((host["data"] / "collector.state.json").read_text()) == {"sequence": 2}


def test_a_failed_night_keeps_the_last_good_base_and_says_why_in_its_report(host: dict[str, Any]) -> None:
    assert night(host).returncode == 0
    good = (host["bundles"] / "latest.inventory.json").resolve()
    missing = write_mirrorset(
        host["set"].with_name("broken.yaml"), [f"{UPSTREAM_REGISTRY}/fixtures/no-such-image:1.0"],
        registries=UPSTREAM_SETTINGS,
    )  # fmt: skip
    done = night(host, MIRROR_SET=str(missing))
    assert done.returncode == 2
    assert (host["bundles"] / "latest.inventory.json").resolve() == good
    failed = [json.loads(p.read_text()) for p in host["bundles"].glob("*.report.json")]
    assert sorted((r["ok"], r["exitCode"]) for r in failed) == [(False, 2), (True, 0)]


def test_a_night_with_a_split_size_writes_volumes_and_the_next_builds_on_them(host: dict[str, Any]) -> None:
    done = night(host, MIRROR_SPLIT_SIZE="8K")
    assert done.returncode == 0, done.stderr
    heads = list(host["bundles"].glob("*.tar.000"))
    assert len(heads) == 1 and list(host["bundles"].glob("*.tar.001"))
    assert night(host, MIRROR_SPLIT_SIZE="8K").returncode == 0
    newest = max(host["bundles"].glob("*.tar.000"))
    assert inventory_of(newest)["base"]["bundleId"] == inventory_of(heads[0])["bundleId"]
