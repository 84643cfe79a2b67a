"""The shipped nightly-job manifests (manifests/nightly) stay in working shape: valid Kubernetes objects, a valid
MirrorSet, systemd units systemd accepts, and one script shared by the timer and the CronJob."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import yaml

from mirror.manifest.load import load_mirrorset_file
from tests.support.kubeschemas import invalid

NIGHTLY = Path(__file__).resolve().parents[2] / "manifests" / "nightly"
SCRIPT = NIGHTLY / "mirror-nightly.sh"


def kubernetes_objects() -> list[dict]:
    return [doc for doc in yaml.safe_load_all((NIGHTLY / "kubernetes.yaml").read_text()) if doc is not None]


def by_kind(kind: str) -> dict:
    (found,) = [doc for doc in kubernetes_objects() if doc["kind"] == kind]
    return found


def test_the_kubernetes_objects_are_valid_against_kubernetes_schemas() -> None:
    objects = kubernetes_objects()
    assert [doc["kind"] for doc in objects] == ["Namespace", "ConfigMap", "PersistentVolumeClaim", "CronJob"]
    assert invalid(objects) == {}


def test_the_configmap_carries_the_same_script_and_mirrorset_as_the_files() -> None:
    data = by_kind("ConfigMap")["data"]
    assert data["mirror-nightly.sh"] == SCRIPT.read_text()
    assert data["mirrorset.yaml"] == (NIGHTLY / "mirrorset.yaml").read_text()


def test_the_shipped_mirrorset_loads() -> None:
    (mirrorset,) = load_mirrorset_file(NIGHTLY / "mirrorset.yaml")
    assert mirrorset.images and mirrorset.charts


def test_the_cronjob_runs_the_configmap_script_and_mounts_every_volume_it_declares() -> None:
    cronjob = by_kind("CronJob")
    pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    mounts = {mount["name"]: mount["mountPath"] for mount in container["volumeMounts"]}
    assert set(mounts) == {volume["name"] for volume in pod["volumes"]}
    script_path = container["command"][-1]
    assert script_path == f"{mounts['nightly']}/mirror-nightly.sh"
    env = {item["name"]: item.get("value") for item in container["env"]}
    assert env["MIRROR_SET"] == f"{mounts['nightly']}/mirrorset.yaml"
    assert env["MIRROR_KEY"].startswith(mounts["collector-key"] + "/")
    assert env["MIRROR_DATA"] == mounts["data"]
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"


def test_the_cronjob_names_secrets_but_carries_no_secret_value() -> None:
    assert "Secret" not in {doc["kind"] for doc in kubernetes_objects()}
    container = by_kind("CronJob")["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    for item in container["env"]:
        if "PASSWORD" in item["name"] or "USERNAME" in item["name"]:
            assert "value" not in item and "secretKeyRef" in item["valueFrom"], item["name"]


def test_the_script_is_valid_posix_shell() -> None:
    done = subprocess.run(["sh", "-n", str(SCRIPT)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def test_systemd_accepts_the_service_and_timer(tmp_path: Path) -> None:
    # As installed: the service runs the script from its install path; point it at this checkout's copy.
    service = (NIGHTLY / "systemd" / "mirror-nightly.service").read_text()
    assert "ExecStart=/usr/local/libexec/mirror-nightly\n" in service
    (tmp_path / "mirror-nightly.service").write_text(
        service.replace("ExecStart=/usr/local/libexec/mirror-nightly", f"ExecStart={SCRIPT}")
    )
    shutil.copy(NIGHTLY / "systemd" / "mirror-nightly.timer", tmp_path)
    done = subprocess.run(
        ["systemd-analyze", "verify", str(tmp_path / "mirror-nightly.service"), str(tmp_path / "mirror-nightly.timer")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (done.returncode, done.stderr.strip()) == (0, "")


def test_the_cronjob_keeps_the_keys_sequence_record_on_the_data_volume() -> None:
    # The key is a read-only Secret; a collect run in the pod's environment reads MIRROR_STATE_FILE too.
    container = by_kind("CronJob")["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    env = {item["name"]: item.get("value") for item in container["env"]}
    mounts = {mount["name"]: mount["mountPath"] for mount in container["volumeMounts"]}
    assert env["MIRROR_STATE_FILE"] == f"{mounts['data']}/collector.state.json"


def test_the_systemd_unit_names_the_sequence_record_a_manual_collect_must_share() -> None:
    service = (NIGHTLY / "systemd" / "mirror-nightly.service").read_text()
    assert "Environment=MIRROR_STATE_FILE=/var/lib/mirror/collector.state.json\n" in service
