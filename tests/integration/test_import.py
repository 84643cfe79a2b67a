"""mirror import into a real TLS + htpasswd distribution, checked afterwards by skopeo, oras-py and curl."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from mirror.importer.run import import_bundle
from mirror.limits import Limits
from tests.conftest import CliResult
from tests.support.images import inspect_raw, skopeo_copy
from tests.support.mirrorsets import write_mirrorset
from tests.support.services import UPSTREAM_REGISTRY

UPSTREAM_SETTINGS = {UPSTREAM_REGISTRY: {"plainHTTP": True}}
ALL_IMAGES = ("multi", "docker", "dockerlist", "shared_a", "shared_b", "app_1")


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory, upstream_images) -> Path:
    """One directory bundle of every fixture image, collected once for the module."""
    from mirror.collector.run import collect

    work = tmp_path_factory.mktemp("bundles")
    images = [upstream_images[k]["ref"] for k in ALL_IMAGES]
    manifest = write_mirrorset(work / "all.yaml", images, registries=UPSTREAM_SETTINGS)
    return collect([manifest], work / "bundle").out


@pytest.fixture
def bundle_copy(bundle_dir, tmp_path) -> Path:
    """A private copy, for tests that damage it."""
    return Path(shutil.copytree(bundle_dir, tmp_path / "bundle"))


def _import(mirror_cli, bundle, url, services, env, *extra) -> CliResult:
    return mirror_cli(
        "import",
        bundle,
        "--registry",
        url,
        "--allow-unsigned",
        "--ca-file",
        services.ca_file,
        "--json",
        "-q",
        *extra,
        env=env,
    )


def _skopeo_raw(services, reference: str) -> bytes:
    creds = (services.internal_user, services.internal_password)
    return inspect_raw(reference, tls_verify=True, creds=creds, cert_dir=services.cert_dir)


def _digest(raw: bytes) -> str:
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def test_images_land_under_the_prefix_with_identical_digests(
    mirror_cli, bundle_dir, services, internal_env, internal_url, target_prefix, upstream_images, written_repositories
):
    result = _import(mirror_cli, bundle_dir, internal_url, services, internal_env)
    assert result.exit_code == 0, result.stderr
    assert sorted(written_repositories()) == sorted(
        {f"{target_prefix}/{upstream_images[k]['repository']}" for k in ALL_IMAGES}
    )
    for key in ALL_IMAGES:
        image = upstream_images[key]
        target = f"{services.internal}/{target_prefix}/{image['repository']}:{image['tag']}"
        assert _digest(_skopeo_raw(services, target)) == image["digest"], key
    assert {i["status"] for i in result.json()["images"]} == {"pushed"}


def test_second_import_of_the_same_bundle_uploads_nothing(mirror_cli, bundle_dir, services, internal_env, internal_url):
    assert _import(mirror_cli, bundle_dir, internal_url, services, internal_env).exit_code == 0
    again = _import(mirror_cli, bundle_dir, internal_url, services, internal_env)
    assert again.exit_code == 0, again.stderr
    report = again.json()
    assert (report["blobsUploaded"], report["blobsMounted"], report["manifestsPushed"]) == (0, 0, 0)
    assert {i["status"] for i in report["images"]} == {"unchanged"}


def test_shared_blob_is_mounted_into_the_second_repository(
    mirror_cli, tmp_path, write_mirrorset, services, internal_env, internal_url, upstream_images
):
    bundle = tmp_path / "shared"
    manifest = write_mirrorset(
        [upstream_images["shared_a"]["ref"], upstream_images["shared_b"]["ref"]], registries=UPSTREAM_SETTINGS
    )
    assert mirror_cli("collect", manifest, "-o", bundle, "-q").exit_code == 0
    report = _import(mirror_cli, bundle, internal_url, services, internal_env, "--jobs", "1").json()
    assert report["blobsMounted"] == 1


def test_tar_bundle_imports_like_a_directory(
    mirror_cli, tmp_path, write_mirrorset, services, internal_env, internal_url, target_prefix, upstream_images
):
    multi = upstream_images["multi"]
    out = tmp_path / "bundle.tar"
    assert (
        mirror_cli("collect", write_mirrorset([multi["ref"]], registries=UPSTREAM_SETTINGS), "-o", out).exit_code == 0
    )
    result = _import(mirror_cli, out, internal_url, services, internal_env)
    assert result.exit_code == 0, result.stderr
    target = f"{services.internal}/{target_prefix}/{multi['repository']}:{multi['tag']}"
    assert _digest(_skopeo_raw(services, target)) == multi["digest"]


def test_skopeo_re_pulls_every_imported_image_and_platform(
    mirror_cli, bundle_dir, tmp_path, services, internal_env, internal_url, target_prefix, upstream_images
):
    assert _import(mirror_cli, bundle_dir, internal_url, services, internal_env).exit_code == 0
    for key in ALL_IMAGES:
        image = upstream_images[key]
        pulled = tmp_path / f"pulled-{key}"
        # dir: keeps every manifest as stored, Docker types included; an OCI layout would need conversion.
        skopeo_copy(
            f"docker://{services.internal}/{target_prefix}/{image['repository']}:{image['tag']}",
            f"dir:{pulled}",
            f"--src-cert-dir={services.cert_dir}",
            f"--src-creds={services.internal_user}:{services.internal_password}",
        )
        assert _digest((pulled / "manifest.json").read_bytes()) == image["digest"], key


def test_oras_reads_an_imported_manifest_and_blob(
    mirror_cli, bundle_dir, services, internal_env, internal_url, target_prefix, upstream_images
):
    import oras.provider

    assert _import(mirror_cli, bundle_dir, internal_url, services, internal_env).exit_code == 0
    registry = oras.provider.Registry(services.internal, tls_verify=str(services.ca_file), auth_backend="basic")
    registry.auth.set_basic_auth(services.internal_user, services.internal_password)
    app = upstream_images["app_1"]
    container = f"{services.internal}/{target_prefix}/{app['repository']}:{app['tag']}"
    manifest = registry.get_manifest(container)
    carried = json.loads((bundle_dir / "blobs" / "sha256" / app["digest"][7:]).read_bytes())
    assert manifest == carried
    for descriptor in [manifest["config"], *manifest["layers"]]:
        assert _digest(registry.get_blob(container, descriptor["digest"]).content) == descriptor["digest"]


def test_chunked_uploads_into_distribution_keep_digests(
    bundle_dir, services, internal_env, internal_url, target_prefix, upstream_images, monkeypatch
):
    for name, value in internal_env.items():
        monkeypatch.setenv(name, value)
    # Tiny thresholds force every blob through PATCH chunks, the path large layers take.
    limits = Limits(monolithic_upload_max_bytes=1024, upload_chunk_bytes=4096)
    report = import_bundle(bundle_dir, internal_url, allow_unsigned=True, ca_file=str(services.ca_file), limits=limits)
    assert report.counts.blobs_uploaded > 0
    multi = upstream_images["multi"]
    assert (
        _digest(_skopeo_raw(services, f"{services.internal}/{target_prefix}/{multi['repository']}:1.0"))
        == (multi["digest"])
    )


def test_dry_run_reports_and_writes_nothing(
    mirror_cli, bundle_dir, services, internal_env, internal_url, written_repositories
):
    result = _import(mirror_cli, bundle_dir, internal_url, services, internal_env, "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert {i["status"] for i in result.json()["images"]} == {"would-push"}
    assert written_repositories() == []


def test_report_file_holds_the_json_result_and_the_run(
    mirror_cli, bundle_dir, tmp_path, services, internal_env, internal_url
):
    report = tmp_path / "report.json"
    result = _import(mirror_cli, bundle_dir, internal_url, services, internal_env, "--report", report)
    written = json.loads(report.read_text())
    assert {k: written[k] for k in result.json()} == result.json()
    assert (written["kind"], written["command"], written["ok"], written["exitCode"]) == ("RunReport", "import", True, 0)
    assert sorted(written["changes"]["added"]) == sorted(i["target"] for i in result.json()["images"])


def test_moved_tag_is_reported_with_its_previous_digest(
    mirror_cli, tmp_path, write_mirrorset, services, internal_env, internal_url, upstream_images, target_prefix
):
    one, two = upstream_images["app_1"], upstream_images["app_2"]
    moving = f"{UPSTREAM_REGISTRY}/moving/{target_prefix}:stable"

    def point_tag_at(source: str) -> None:
        skopeo_copy(f"docker://{source}", f"docker://{moving}", "--src-tls-verify=false", "--dest-tls-verify=false")

    reports = []
    for source, name in ((one["ref"], "first"), (two["ref"], "second")):
        point_tag_at(source)
        bundle = tmp_path / name
        assert (
            mirror_cli("collect", write_mirrorset([moving], registries=UPSTREAM_SETTINGS), "-o", bundle).exit_code == 0
        )
        reports.append(_import(mirror_cli, bundle, internal_url, services, internal_env).json())
    [image] = reports[1]["images"]
    assert image["digest"] == two["digest"]
    assert image["tagMovedFrom"] == one["digest"]
