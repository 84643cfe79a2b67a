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
    assert latest.is_symlink() and latest.resolve() == bundle.with_name(bundle.name + ".inventory.json")
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
    assert (host["bundles"] / "latest.inventory.json").resolve() == second.with_name(second.name + ".inventory.json")
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


def test_a_night_stopped_before_it_ended_is_resumed_by_the_next_run_under_its_name(host: dict[str, Any]) -> None:
    assert night(host).returncode == 0
    (first,) = host["bundles"].glob("*.tar")
    full = json.loads(first.with_name(first.stem + ".report.json").read_text())["transfer"]["downloaded"]
    (host["bundles"] / "latest.inventory.json").unlink()  # the stopped night was a full one too
    stopped = host["bundles"] / ".20200101T000000Z.tar.partial"  # what a night stopped half-way leaves
    stopped.write_bytes(first.read_bytes())
    done = night(host)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in host["bundles"].glob("*.tar")) == ["20200101T000000Z.tar", first.name]
    assert not stopped.exists()
    report = json.loads((host["bundles"] / "20200101T000000Z.report.json").read_text())
    assert report["transfer"]["resumed"] > 0
    assert report["transfer"]["downloaded"] + report["transfer"]["resumed"] == full


def test_a_partial_tar_collect_would_refuse_is_not_taken_over_and_the_night_still_runs(
    host: dict[str, Any],
) -> None:
    host["bundles"].mkdir(parents=True)
    stopped = host["bundles"] / ".20200101T000000Z.tar.partial"
    stopped.write_bytes(b"left by someone else")
    os.link(stopped, host["bundles"] / "a-second-link")  # collect refuses a partial tar with another link
    done = night(host)
    assert done.returncode == 0, done.stderr
    assert [p.name for p in host["bundles"].glob("*.tar")] != ["20200101T000000Z.tar"]
    assert stopped.read_bytes() == b"left by someone else"


def test_a_night_with_a_split_size_writes_volumes_and_the_next_builds_on_them(host: dict[str, Any]) -> None:
    done = night(host, MIRROR_SPLIT_SIZE="8K")
    assert done.returncode == 0, done.stderr
    heads = list(host["bundles"].glob("*.tar.000"))
    assert len(heads) == 1 and list(host["bundles"].glob("*.tar.001"))
    assert night(host, MIRROR_SPLIT_SIZE="8K").returncode == 0
    newest = max(host["bundles"].glob("*.tar.000"))
    assert inventory_of(newest)["base"]["bundleId"] == inventory_of(heads[0])["bundleId"]


def manual_collect(host: dict[str, Any], out: str, **env: str) -> None:
    """An operator's collect with the nightly job's key, outside the job."""
    host["data"].mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [MIRROR, "collect", host["set"], "-o", host["data"] / out, "--key", host["env"]["MIRROR_KEY"], "-q"],
        env={**host["env"], **env}, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def signed_sequence(host: dict[str, Any]) -> int:
    newest = max(host["bundles"].glob("*.report.json"))
    return int(json.loads(newest.read_text())["signedBy"]["sequence"])


def test_a_manual_collect_with_the_jobs_state_file_and_the_next_night_share_one_sequence(
    host: dict[str, Any],
) -> None:
    state = host["data"] / "collector.state.json"
    manual_collect(host, "manual", MIRROR_STATE_FILE=str(state))
    assert night(host).returncode == 0
    assert signed_sequence(host) == 2


def test_a_night_continues_from_a_manual_collects_record_beside_the_key_and_says_so(host: dict[str, Any]) -> None:
    manual_collect(host, "manual")  # the record beside the key: collect's default without MIRROR_STATE_FILE
    done = night(host)
    assert done.returncode == 0, done.stderr
    assert signed_sequence(host) == 2
    assert "MIRROR_STATE_FILE" in done.stderr


def test_a_night_collects_several_mirrorsets_named_in_mirror_set(
    host: dict[str, Any], upstream_images: dict[str, Any]
) -> None:
    second = write_mirrorset(
        host["set"].with_name("second.yaml"), [upstream_images["app_2"]["ref"]], registries=UPSTREAM_SETTINGS
    )
    done = night(host, MIRROR_SET=f"{host['set']}:{second}")
    assert done.returncode == 0, done.stderr
    (bundle,) = host["bundles"].glob("*.tar")
    sources = {a["source"] for a in inventory_of(bundle)["artifacts"]}
    assert {upstream_images[name]["ref"] for name in ("app_1", "shared_a", "app_2")} <= sources


def test_a_directory_in_mirror_set_stands_for_its_yaml_files(
    host: dict[str, Any], upstream_images: dict[str, Any]
) -> None:
    sets = host["set"].parent / "mirrorsets.d"
    sets.mkdir()
    host["set"].rename(sets / "first.yaml")
    write_mirrorset(sets / "second.yaml", [upstream_images["app_2"]["ref"]], registries=UPSTREAM_SETTINGS)
    done = night(host, MIRROR_SET=str(sets))
    assert done.returncode == 0, done.stderr
    (bundle,) = host["bundles"].glob("*.tar")
    sources = {a["source"] for a in inventory_of(bundle)["artifacts"]}
    assert {upstream_images[name]["ref"] for name in ("app_1", "app_2")} <= sources


def test_a_mirror_set_that_names_no_file_exits_2(host: dict[str, Any], tmp_path: Path) -> None:
    empty = tmp_path / "empty.d"
    empty.mkdir()
    done = night(host, MIRROR_SET=str(empty))
    assert done.returncode == 2
    assert "MIRROR_SET" in done.stderr
