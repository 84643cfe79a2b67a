"""The shipped audit job (manifests/audit) stays in working shape: valid Kubernetes objects, systemd units systemd
accepts, one script shared by the timer and the CronJob, and that script keeping audit's exit code and report."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import yaml

from tests.support.kubeschemas import invalid

AUDIT = Path(__file__).resolve().parents[2] / "manifests" / "audit"
SCRIPT = AUDIT / "mirror-audit.sh"


def kubernetes_objects() -> list[dict]:
    return [doc for doc in yaml.safe_load_all((AUDIT / "kubernetes.yaml").read_text()) if doc is not None]


def by_kind(kind: str) -> dict:
    (found,) = [doc for doc in kubernetes_objects() if doc["kind"] == kind]
    return found


def pod() -> dict:
    return by_kind("CronJob")["spec"]["jobTemplate"]["spec"]["template"]["spec"]


def test_the_kubernetes_objects_are_valid_against_kubernetes_schemas() -> None:
    objects = kubernetes_objects()
    assert [doc["kind"] for doc in objects] == ["Namespace", "ConfigMap", "PersistentVolumeClaim", "CronJob"]
    assert invalid(objects) == {}


def test_the_configmap_carries_the_same_script_as_the_file() -> None:
    assert by_kind("ConfigMap")["data"]["mirror-audit.sh"] == SCRIPT.read_text()


def test_the_cronjob_runs_the_script_reads_the_trust_state_read_only_and_never_overlaps() -> None:
    spec = pod()
    (container,) = spec["containers"]
    mounts = {mount["name"]: mount for mount in container["volumeMounts"]}
    assert set(mounts) == {volume["name"] for volume in spec["volumes"]}
    assert container["command"][-1] == f"{mounts['audit']['mountPath']}/mirror-audit.sh"
    env = {item["name"]: item.get("value") for item in container["env"]}
    assert env["MIRROR_TRUST"].startswith(mounts["trust"]["mountPath"] + "/") and mounts["trust"]["readOnly"]
    assert env["MIRROR_AUDIT_KEY"].startswith(mounts["audit-key"]["mountPath"] + "/")
    assert env["MIRROR_DATA"] == mounts["data"]["mountPath"]
    assert by_kind("CronJob")["spec"]["concurrencyPolicy"] == "Forbid"
    assert by_kind("CronJob")["spec"]["jobTemplate"]["spec"]["backoffLimit"] == 0


def test_the_cronjob_names_secrets_but_carries_no_secret_value() -> None:
    assert "Secret" not in {doc["kind"] for doc in kubernetes_objects()}
    (container,) = pod()["containers"]
    for item in container["env"]:
        if "PASSWORD" in item["name"] or "USERNAME" in item["name"]:
            assert "value" not in item and "secretKeyRef" in item["valueFrom"], item["name"]


def test_the_script_is_valid_posix_shell() -> None:
    done = subprocess.run(["sh", "-n", str(SCRIPT)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def test_systemd_accepts_the_service_and_timer(tmp_path: Path) -> None:
    service = (AUDIT / "systemd" / "mirror-audit.service").read_text()
    assert "ExecStart=/usr/local/libexec/mirror-audit\n" in service
    environment = tmp_path / "audit.env"
    environment.write_text("MIRROR_REGISTRY=https://registry.example\n")
    (tmp_path / "mirror-audit.service").write_text(
        service.replace("ExecStart=/usr/local/libexec/mirror-audit", f"ExecStart={SCRIPT}").replace(
            "EnvironmentFile=/etc/mirror/audit.env", f"EnvironmentFile={environment}"
        )
    )
    shutil.copy(AUDIT / "systemd" / "mirror-audit.timer", tmp_path)
    done = subprocess.run(
        ["systemd-analyze", "verify", str(tmp_path / "mirror-audit.service"), str(tmp_path / "mirror-audit.timer")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (done.returncode, done.stderr.strip()) == (0, "")


def test_the_script_keeps_audits_exit_code_and_its_report_and_asks_for_a_statement_with_a_key(
    tmp_path: Path,
) -> None:
    fake = tmp_path / "mirror"  # stands in for mirror: records its arguments, finds drift
    fake.write_text('#!/bin/sh\nprintf "%s\\n" "$@" > "$MIRROR_DATA/args"\necho \'{"clean": false}\'\nexit 5\n')
    fake.chmod(0o755)
    env = {
        "PATH": os.environ["PATH"],
        "MIRROR_BIN": str(fake),
        "MIRROR_DATA": str(tmp_path),
        "MIRROR_REGISTRY": "https://registry.example/mirror",
        "MIRROR_GIT": "https://git.example/mirror",
        "MIRROR_AUDIT_KEY": "/keys/audit.key",
        "MIRROR_AUDIT_ARGS": "--only-journaled --jobs 8",
    }
    done = subprocess.run(["sh", str(SCRIPT)], env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 5, done.stderr
    (report,) = (tmp_path / "audit").glob("*.json")
    assert json.loads(report.read_text()) == {"clean": False}
    args = (tmp_path / "args").read_text().splitlines()
    assert args[:5] == ["audit", "--trust", "/etc/mirror/trust/policy.yaml", "--registry", env["MIRROR_REGISTRY"]]
    assert args[args.index("--git") + 1] == env["MIRROR_GIT"]
    statement = args[args.index("--statement") + 1]
    assert statement == str(report.with_suffix(".intoto.json")) and args[args.index("--key") + 1] == "/keys/audit.key"
    assert args[-3:] == ["--only-journaled", "--jobs", "8"]


def test_the_script_refuses_to_run_without_a_registry(tmp_path: Path) -> None:
    env = {"PATH": os.environ["PATH"], "MIRROR_DATA": str(tmp_path), "MIRROR_BIN": "false"}
    done = subprocess.run(["sh", str(SCRIPT)], env=env, capture_output=True, text=True, check=False)
    assert done.returncode != 0 and "MIRROR_REGISTRY" in done.stderr
