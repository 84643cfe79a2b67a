"""`import --mirror-config DIR` into the real internal registry, and the files it writes used for real: skopeo,
given the containers-registries.conf drop-in, pulls the upstream name from the internal registry."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

from tests.support.services import UPSTREAM_REGISTRY

NODE_CA = "/etc/containerd/certs.d/mirror-ca.pem"
DROP_IN = "containers/registries.conf.d/50-mirror.conf"


@pytest.fixture
def bundle(tmp_path, mirror_cli, write_mirrorset, upstream_images) -> Path:
    """One upstream image, collected."""
    manifest = write_mirrorset([upstream_images["app_1"]["ref"]], registries={UPSTREAM_REGISTRY: {"plainHTTP": True}})
    out = tmp_path / "bundle.tar"
    assert mirror_cli("collect", manifest, "-o", out, "-q").exit_code == 0
    return out


def import_with_mirror_config(mirror_cli, bundle, out, services, internal_env, internal_url, *extra):
    return mirror_cli(
        "import", bundle, "--registry", internal_url, "--allow-unsigned", "--ca-file", services.ca_file,
        "--mirror-config", out, *extra, env=internal_env,
    )  # fmt: skip


@pytest.fixture
def imported(tmp_path, mirror_cli, bundle, services, internal_env, internal_url):
    """The bundle imported with --mirror-config and --node-ca-path; returns (the directory, the CLI result)."""
    out = tmp_path / "nodes"
    extra = ("--node-ca-path", NODE_CA, "--json", "-q")
    result = import_with_mirror_config(mirror_cli, bundle, out, services, internal_env, internal_url, *extra)
    assert result.exit_code == 0, result.stderr
    return out, result


def skopeo_through(registries_conf: Path, reference: str, services, tmp_path: Path) -> subprocess.CompletedProcess:
    """skopeo inspect --raw of `reference` as a node would pull it: TLS verified with the internal registry's CA,
    the internal registry's credentials in an auth file (a mirror is sent those of its own host)."""
    auth = tmp_path / "auth.json"
    token = base64.b64encode(f"{services.internal_user}:{services.internal_password}".encode()).decode()
    auth.write_text(json.dumps({"auths": {services.internal: {"auth": token}}}))
    return subprocess.run(
        [
            "skopeo", "--registries-conf", str(registries_conf), "--debug", "inspect", "--raw", "--tls-verify=true",
            "--cert-dir", str(services.cert_dir), "--authfile", str(auth), f"docker://{reference}",
        ],
        capture_output=True, timeout=120, check=False,
    )  # fmt: skip


def test_skopeo_with_the_drop_in_pulls_the_upstream_name_from_the_internal_registry(
    imported, upstream_images, services, target_prefix, tmp_path
):
    out, _ = imported
    image = upstream_images["app_1"]
    upstream_name = f"{UPSTREAM_REGISTRY}/{image['repository']}:{image['tag']}"

    pulled = skopeo_through(out / DROP_IN, upstream_name, services, tmp_path)

    assert pulled.returncode == 0, pulled.stderr.decode()
    assert "sha256:" + hashlib.sha256(pulled.stdout).hexdigest() == image["digest"]
    landed = f"https://{services.internal}/v2/{target_prefix}/{image['repository']}/manifests/{image['tag']}"
    assert f"GET {landed}" in pulled.stderr.decode()
    # The control: the same pull without the drop-in goes to the upstream itself, which TLS cannot reach (it is
    # plain HTTP); so the pull above came through the mirror, or it would have failed too.
    empty = tmp_path / "registries.conf"
    empty.write_text("")
    assert skopeo_through(empty, upstream_name, services, tmp_path).returncode != 0


def test_the_files_parse_and_name_the_node_ca_path_never_the_local_one(imported, services, target_prefix):
    out, result = imported
    files = [p for p in out.rglob("*") if p.is_file() and not p.name.startswith(".")]  # not mirror's record
    written = sorted(p.relative_to(out).as_posix() for p in files)
    assert result.json()["mirrorConfig"]["files"] == written
    everything = "\n".join((out / name).read_text() for name in written)
    assert str(services.ca_file) not in everything and str(services.ca_file.parent) not in everything
    hosts = tomllib.loads((out / f"containerd/certs.d/{UPSTREAM_REGISTRY}/hosts.toml").read_text())
    assert hosts["host"][f"https://{services.internal}/v2/{target_prefix}"]["ca"] == NODE_CA
    k3s = yaml.safe_load((out / "k3s/registries.yaml").read_text())
    assert k3s["configs"][services.internal]["tls"]["ca_file"] == NODE_CA
    for name in ("openshift/imagedigestmirrorset.yaml", "openshift/imagetagmirrorset.yaml"):
        assert yaml.safe_load((out / name).read_text())["spec"]


def test_a_dry_run_says_what_it_would_write_and_writes_nothing(
    tmp_path, mirror_cli, bundle, services, internal_env, internal_url
):
    out = tmp_path / "nodes"

    result = import_with_mirror_config(mirror_cli, bundle, out, services, internal_env, internal_url, "--dry-run", "-q")

    assert result.exit_code == 0, result.stderr
    assert not out.exists()
    assert f"would write 5 registry mirror file(s) to {out}:" in result.stdout
    assert f"  containerd/certs.d/{UPSTREAM_REGISTRY}/hosts.toml" in result.stdout.splitlines()
    assert "--node-ca-path" in result.stderr  # a local CA was given, the nodes' was not: they are told
