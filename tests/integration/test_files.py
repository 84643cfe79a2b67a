"""spec.files: files served by nginx, collected, imported as OCI artifacts, pulled back by oras and --files-out."""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from pathlib import Path

import oras.provider
import pytest

from mirror.bundle.inventory import parse_inventory


@pytest.fixture
def served(services) -> tuple[str, Path]:
    """A fresh directory under the nginx document root, and its URL."""
    name = f"files-{uuid.uuid4().hex[:8]}"
    directory = services.charts_dir / name
    directory.mkdir()
    return f"{services.charts_url}/{name}", directory


def _serve(served: tuple[str, Path], name: str, data: bytes) -> tuple[str, str]:
    url, directory = served
    (directory / name).write_bytes(data)
    return f"{url}/{name}", hashlib.sha256(data).hexdigest()


def _mirrorset(tmp_path: Path, files: list[dict]) -> Path:
    document = {"apiVersion": "mirror/v1", "kind": "MirrorSet", "metadata": {"name": "files"}, "spec": {"files": files}}
    path = tmp_path / f"files-{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(json.dumps(document))
    return path


def _import(mirror_cli, bundle: Path, services, internal_url: str, env: dict, *extra) -> dict:
    result = mirror_cli(
        "import",
        bundle,
        "--registry",
        internal_url,
        "--allow-unsigned",
        "--ca-file",
        services.ca_file,
        "--json",
        "-q",
        *extra,
        env=env,
    )
    assert result.exit_code == 0, result.stderr
    return result.json()


def test_file_lands_as_an_oras_artifact_pulled_back_with_its_bytes(
    tmp_path, mirror_cli, services, served, internal_env, internal_url, target_prefix
):
    data = os.urandom(70_000) + b"#!/bin/sh\necho install\n"
    url, sha = _serve(served, "install.sh", data)
    bundle = tmp_path / "b.tar"
    collected = mirror_cli("collect", _mirrorset(tmp_path, [{"url": url, "sha256": sha}]), "-o", bundle, "--json")
    assert collected.exit_code == 0, collected.stderr
    [record] = [a for a in collected.json()["artifacts"] if a["kind"] == "file"]
    assert (record["source"], record["name"], record["fileSha256"], record["fileSize"]) == (
        url,
        "install.sh",
        sha,
        len(data),
    )
    _import(mirror_cli, bundle, services, internal_url, internal_env)
    registry = oras.provider.Registry(services.internal, tls_verify=str(services.ca_file), auth_backend="basic")
    registry.auth.set_basic_auth(services.internal_user, services.internal_password)
    target = f"{services.internal}/{target_prefix}/files/install.sh:latest"
    out = tmp_path / "pulled"
    [pulled] = registry.pull(target=target, outdir=str(out))
    assert Path(pulled).name == "install.sh"
    assert Path(pulled).read_bytes() == data
    assert registry.get_manifest(target)["artifactType"] == "application/vnd.mirror.file.v1"


def test_import_counts_files_apart_from_images_and_charts(
    tmp_path, mirror_cli, services, served, internal_env, internal_url
):
    one, sha_one = _serve(served, "one.sh", b"one\n")
    two, sha_two = _serve(served, "two.sh", b"two\n")
    bundle = tmp_path / "b"
    manifest = _mirrorset(tmp_path, [{"url": one, "sha256": sha_one}, {"url": two, "sha256": sha_two}])
    assert mirror_cli("collect", manifest, "-o", bundle).exit_code == 0
    result = mirror_cli(
        "import", bundle, "--registry", internal_url, "--allow-unsigned", "--ca-file", services.ca_file, "--dry-run",
        env=internal_env,
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert ": 0 image(s) and chart(s), 2 file(s), 0 attached manifest(s)" in result.stderr


def test_files_out_writes_each_file_by_name_and_replaces_last_nights(
    tmp_path, mirror_cli, services, served, internal_env, internal_url
):
    first = b"tool v1\n"
    url, sha = _serve(served, "tool", first)
    out = tmp_path / "files"
    bundle = tmp_path / "one"
    assert mirror_cli("collect", _mirrorset(tmp_path, [{"url": url, "sha256": sha}]), "-o", bundle).exit_code == 0
    report = _import(mirror_cli, bundle, services, internal_url, internal_env, "--files-out", out)
    assert report["filesOut"]["files"] == [{"name": "tool", "sha256": sha, "size": len(first)}]
    assert (out / "tool").read_bytes() == first
    second = b"tool v2\n"
    url, sha = _serve(served, "tool", second)
    bundle = tmp_path / "two"
    assert mirror_cli("collect", _mirrorset(tmp_path, [{"url": url, "sha256": sha}]), "-o", bundle).exit_code == 0
    _import(mirror_cli, bundle, services, internal_url, internal_env, "--files-out", out)
    assert (out / "tool").read_bytes() == second


def test_files_out_holding_an_operators_file_is_refused_before_any_write(
    tmp_path, mirror_cli, services, served, internal_env, internal_url, written_repositories
):
    url, sha = _serve(served, "tool", b"tool\n")
    bundle = tmp_path / "b"
    assert mirror_cli("collect", _mirrorset(tmp_path, [{"url": url, "sha256": sha}]), "-o", bundle).exit_code == 0
    out = tmp_path / "files"
    out.mkdir()
    (out / "tool").write_bytes(b"the operator's own tool\n")
    result = mirror_cli(
        "import",
        bundle,
        "--registry",
        internal_url,
        "--allow-unsigned",
        "--ca-file",
        services.ca_file,
        "--files-out",
        out,
        env=internal_env,
    )
    assert result.exit_code == 2, result.stderr
    assert "--files-out" in result.stderr or "mirror did not write it" in result.stderr
    assert (out / "tool").read_bytes() == b"the operator's own tool\n"
    assert written_repositories() == []


def test_upstream_serving_other_bytes_than_pinned_exits_4_naming_both_digests(tmp_path, mirror_cli, served):
    url, sha = _serve(served, "cli", b"what upstream serves now\n")
    pinned = hashlib.sha256(b"what was published\n").hexdigest()
    out = tmp_path / "out"
    out.mkdir()
    result = mirror_cli("collect", _mirrorset(tmp_path, [{"url": url, "sha256": pinned}]), "-o", out / "b")
    assert result.exit_code == 4, result.stderr
    assert pinned in result.stderr and sha in result.stderr and "other bytes" in result.stderr
    assert list(out.iterdir()) == []


def test_url_file_without_sha256_is_refused_with_exit_2(tmp_path, mirror_cli, served):
    url, _ = _serve(served, "cli", b"x\n")
    result = mirror_cli("resolve", _mirrorset(tmp_path, [{"url": url}]), "--json")
    assert result.exit_code == 2
    assert "spec.files[0].sha256" in result.stderr and "trust-on-first-use" in result.stderr


def test_trust_on_first_use_puts_the_digest_seen_in_the_lock(tmp_path, mirror_cli, served):
    data = b"first use\n"
    url, sha = _serve(served, "cli", data)
    result = mirror_cli("resolve", _mirrorset(tmp_path, [{"url": url, "sha256": "trust-on-first-use"}]), "--json")
    assert result.exit_code == 0, result.stderr
    [entry] = [a for a in result.json()["artifacts"] if a["kind"] == "file"]
    assert (entry["source"], entry["digest"], entry["name"], entry["size"]) == (url, f"sha256:{sha}", "cli", len(data))
    shown = mirror_cli("resolve", _mirrorset(tmp_path, [{"url": url, "sha256": "trust-on-first-use"}]))
    assert f"file   {url}  sha256:{sha}  as cli" in shown.stdout


def test_local_file_is_carried_from_beside_the_mirrorset(tmp_path, mirror_cli):
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "tool").write_bytes(b"local tool\n")
    bundle = tmp_path / "b"
    result = mirror_cli("collect", _mirrorset(tmp_path, [{"path": "bin/tool"}]), "-o", bundle)
    assert result.exit_code == 0, result.stderr
    inventory = parse_inventory((bundle / "inventory.json").read_bytes())
    [record] = [a for a in inventory.artifacts if a.kind == "file"]
    assert record.source == "bin/tool"
    assert record.extra["fileSha256"] == hashlib.sha256(b"local tool\n").hexdigest()


def test_unchanged_pinned_file_is_left_to_the_base_of_an_incremental_bundle(
    tmp_path, mirror_cli, services, served, internal_env, internal_url
):
    url, sha = _serve(served, "big", os.urandom(50_000))
    manifest = _mirrorset(tmp_path, [{"url": url, "sha256": sha}])
    assert mirror_cli("collect", manifest, "-o", tmp_path / "base").exit_code == 0
    (served[1] / "big").unlink()  # nothing is downloaded: the base carries these bytes
    result = mirror_cli("collect", manifest, "-o", tmp_path / "next", "--since", tmp_path / "base")
    assert result.exit_code == 0, result.stderr
    inventory = parse_inventory((tmp_path / "next" / "inventory.json").read_bytes())
    [record] = inventory.artifacts
    assert record.digest in inventory.expected_sizes  # the file's manifest, and with it its bytes, left to the base
    assert f"sha256:{sha}" not in {e.digest for e in inventory.expected}
    assert not (tmp_path / "next" / "blobs" / "sha256" / sha).exists()
    out = tmp_path / "files"
    _import(mirror_cli, tmp_path / "base", services, internal_url, internal_env, "--files-out", out)
    report = _import(mirror_cli, tmp_path / "next", services, internal_url, internal_env, "--files-out", out)
    assert report["filesOut"]["files"] == [{"name": "big", "sha256": sha, "size": 50_000}]
    assert hashlib.sha256((out / "big").read_bytes()).hexdigest() == sha


def test_a_file_changed_since_the_base_is_a_moved_warning_naming_its_own_sha256(tmp_path, mirror_cli, served):
    url, old = _serve(served, "install.sh", b"echo first\n")
    manifest = _mirrorset(tmp_path, [{"url": url, "sha256": "trust-on-first-use"}])
    assert mirror_cli("collect", manifest, "-o", tmp_path / "base").exit_code == 0
    _, new = _serve(served, "install.sh", b"echo second\n")
    result = mirror_cli("collect", manifest, "-o", tmp_path / "next", "--since", tmp_path / "base", "--json")
    assert result.exit_code == 0, result.stderr
    assert f"{url}: moved since the base, from file sha256:{old} to sha256:{new}" in result.stderr
    [moved] = result.json()["movedTags"]
    assert moved["fileSha256"] == {"old": f"sha256:{old}", "new": f"sha256:{new}"}


def test_files_out_refuses_an_incremental_bundle_whose_base_holds_the_bytes_it_lacks(
    tmp_path, mirror_cli, services, served, internal_env, internal_url
):
    url, sha = _serve(served, "big", os.urandom(20_000))
    manifest = _mirrorset(tmp_path, [{"url": url, "sha256": sha}])
    assert mirror_cli("collect", manifest, "-o", tmp_path / "base").exit_code == 0
    assert mirror_cli("collect", manifest, "-o", tmp_path / "next", "--since", tmp_path / "base").exit_code == 0
    _import(mirror_cli, tmp_path / "base", services, internal_url, internal_env)
    result = mirror_cli(
        "import", tmp_path / "next", "--registry", internal_url, "--allow-unsigned", "--ca-file", services.ca_file,
        "--files-out", tmp_path / "empty", env=internal_env,
    )  # fmt: skip
    assert result.exit_code == 2, result.stderr
    assert "big" in result.stderr and not (tmp_path / "empty").exists()


def test_signed_file_bundle_verifies_imports_with_a_journal_and_audits_clean(
    tmp_path, mirror_cli, services, served, internal_env, internal_url
):
    from tests.support.signedbundles import make_trust, sign

    url, sha = _serve(served, "rke2-install.sh", b"#!/bin/sh\nrke2\n")
    bundle = tmp_path / "b"
    assert mirror_cli("collect", _mirrorset(tmp_path, [{"url": url, "sha256": sha}]), "-o", bundle).exit_code == 0
    trust = make_trust(tmp_path / "trust")
    sign(bundle, trust, sequence=1)
    verified = mirror_cli("verify", bundle, "--trust", trust.policy)
    assert verified.exit_code == 0, verified.stdout + verified.stderr
    common = ("--registry", internal_url, "--ca-file", services.ca_file)
    imported = mirror_cli("import", bundle, "--trust", trust.policy, *common, "-q", env=internal_env)
    assert imported.exit_code == 0, imported.stderr
    audited = mirror_cli("audit", "--trust", trust.policy, *common, env=internal_env)
    assert audited.exit_code == 0, audited.stdout + audited.stderr


def test_a_file_whose_blob_was_altered_fails_verification(tmp_path, mirror_cli, served):
    from tests.support.signedbundles import make_trust, sign

    url, sha = _serve(served, "tool", b"genuine tool\n")
    bundle = tmp_path / "b"
    assert mirror_cli("collect", _mirrorset(tmp_path, [{"url": url, "sha256": sha}]), "-o", bundle).exit_code == 0
    trust = make_trust(tmp_path / "trust")
    sign(bundle, trust, sequence=1)
    (bundle / "blobs" / "sha256" / sha).write_bytes(b"altered tool\n")
    result = mirror_cli("verify", bundle, "--trust", trust.policy)
    assert result.exit_code == 3
    assert "FILE_DIGEST" in result.stdout + result.stderr


def test_inspect_and_diff_show_each_files_name_url_sha256_and_size(tmp_path, mirror_cli, served):
    url, first = _serve(served, "cli", b"cli v1\n")
    manifest = _mirrorset(tmp_path, [{"url": url, "sha256": "trust-on-first-use"}])
    assert mirror_cli("collect", manifest, "-o", tmp_path / "one").exit_code == 0
    _, second = _serve(served, "cli", b"cli v2, longer\n")
    assert mirror_cli("collect", manifest, "-o", tmp_path / "two").exit_code == 0

    assert mirror_cli("inspect", tmp_path / "one", "--html", tmp_path / "report.html").exit_code == 0
    text = mirror_cli("inspect", tmp_path / "one")
    assert text.exit_code == 0, text.stderr
    assert "Files (1)" in text.stdout and url in text.stdout and first in text.stdout and "file cli" in text.stdout
    html = (tmp_path / "report.html").read_text()
    assert first in html and url in html
    [entry] = [e for e in mirror_cli("inspect", tmp_path / "one", "--json").json()["artifacts"] if e["kind"] == "file"]
    assert (entry["source"], entry["details"]["name"], entry["details"]["fileSha256"]) == (url, "cli", first)
    assert entry["details"]["fileSize"] == len(b"cli v1\n")

    diff = mirror_cli("diff", tmp_path / "one", tmp_path / "two", "--json").json()
    [change] = diff["changed"]
    assert (change["kind"], change["source"], change["change"]) == ("file", url, "other bytes")
    assert (change["oldVersion"], change["newVersion"]) == (f"sha256:{first}", f"sha256:{second}")
    shown = mirror_cli("diff", tmp_path / "one", tmp_path / "two")
    assert second in shown.stdout


def test_a_local_file_names_no_registry_in_the_nodes_mirror_configuration(
    tmp_path, mirror_cli, services, internal_env, internal_url
):
    (tmp_path / "tool").write_bytes(b"local tool\n")
    bundle = tmp_path / "b"
    assert mirror_cli("collect", _mirrorset(tmp_path, [{"path": "tool"}]), "-o", bundle).exit_code == 0
    _import(mirror_cli, bundle, services, internal_url, internal_env, "--mirror-config", tmp_path / "nodes")
    rendered = "".join(p.read_text() for p in (tmp_path / "nodes").rglob("*") if p.is_file())
    assert "docker.io" not in rendered


def test_a_file_the_server_does_not_have_is_an_unresolved_reference(tmp_path, mirror_cli, served):
    url = f"{served[0]}/absent.sh"
    result = mirror_cli("resolve", _mirrorset(tmp_path, [{"url": url, "sha256": "trust-on-first-use"}]))
    assert result.exit_code == 2, result.stderr
    assert url in result.stderr and "spec.files[0]" in result.stderr


def test_files_count_against_the_bundle_size_cap(tmp_path, mirror_cli, served):
    url, sha = _serve(served, "big", os.urandom(40_000))
    out = tmp_path / "out"
    out.mkdir()
    manifest = _mirrorset(tmp_path, [{"url": url, "sha256": sha}])
    result = mirror_cli("collect", manifest, "-o", out / "b", "--max-bundle-size", "20000")
    assert result.exit_code == 2, result.stderr
    assert "--max-bundle-size" in result.stderr and list(out.iterdir()) == []


@pytest.mark.parametrize("files_out", ["nodes", "nodes/files"])
def test_files_out_sharing_the_mirror_config_directory_is_refused_before_any_write(
    tmp_path, mirror_cli, services, served, internal_env, internal_url, written_repositories, files_out
):
    url, sha = _serve(served, "tool", b"tool\n")
    bundle = tmp_path / "b"
    assert mirror_cli("collect", _mirrorset(tmp_path, [{"url": url, "sha256": sha}]), "-o", bundle).exit_code == 0
    result = mirror_cli(
        "import", bundle, "--registry", internal_url, "--allow-unsigned", "--ca-file", services.ca_file,
        "--files-out", tmp_path / files_out, "--mirror-config", tmp_path / "nodes", env=internal_env,
    )  # fmt: skip
    assert result.exit_code == 2, result.stderr
    assert "--files-out" in result.stderr and "--mirror-config" in result.stderr
    assert written_repositories() == [] and not (tmp_path / "nodes").exists()


def test_files_out_holding_a_directory_under_a_files_name_is_refused_before_any_write(
    tmp_path, mirror_cli, services, served, internal_env, internal_url, written_repositories
):
    url, sha = _serve(served, "tool", b"tool\n")
    bundle = tmp_path / "b"
    assert mirror_cli("collect", _mirrorset(tmp_path, [{"url": url, "sha256": sha}]), "-o", bundle).exit_code == 0
    out = tmp_path / "files"
    night = f"{internal_url}/night1"
    _import(mirror_cli, bundle, services, night, internal_env, "--files-out", out)  # a night that wrote it
    (out / "tool").unlink()
    (out / "tool").mkdir()  # an operator's directory where the next night writes the file
    written = written_repositories()
    result = mirror_cli(
        "import", bundle, "--registry", internal_url, "--allow-unsigned", "--ca-file", services.ca_file,
        "--files-out", out, env=internal_env,
    )  # fmt: skip
    assert result.exit_code == 2, result.stderr
    assert "tool" in result.stderr and "directory" in result.stderr
    assert written_repositories() == written and (out / "tool").is_dir()
