"""Import refuses a bundle it cannot prove intact, before writing anything to the registry."""

from __future__ import annotations

import json
import shutil
import socket
import tarfile
from pathlib import Path

import pytest

from tests.support.mirrorsets import write_mirrorset
from tests.support.services import UPSTREAM_REGISTRY

UPSTREAM_SETTINGS = {UPSTREAM_REGISTRY: {"plainHTTP": True}}


@pytest.fixture(scope="module")
def pristine_bundle(tmp_path_factory, upstream_images) -> Path:
    from mirror.collector.run import collect

    work = tmp_path_factory.mktemp("pristine")
    images = [upstream_images["multi"]["ref"], upstream_images["app_1"]["ref"]]
    manifest = write_mirrorset(work / "m.yaml", images, registries=UPSTREAM_SETTINGS)
    return collect([manifest], work / "bundle").out


@pytest.fixture
def bundle(pristine_bundle, tmp_path) -> Path:
    return Path(shutil.copytree(pristine_bundle, tmp_path / "bundle"))


def _largest_layer(bundle: Path) -> Path:
    return max((bundle / "blobs" / "sha256").iterdir(), key=lambda p: p.stat().st_size)


def _flip_byte(path: Path, offset: int = 100) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def _import(mirror_process, bundle, url, services, env, *extra):
    return mirror_process(
        "import", bundle, "--registry", url, "--allow-unsigned", "--ca-file", services.ca_file, *extra, env=env
    )


def test_flipped_bit_in_a_layer_exits_3_and_writes_nothing(
    mirror_process, bundle, services, internal_env, internal_url, written_repositories
):
    layer = _largest_layer(bundle)
    _flip_byte(layer)
    result = _import(mirror_process, bundle, internal_url, services, internal_env)
    assert result.exit_code == 3
    assert f"blobs/sha256/{layer.name}" in result.stderr
    assert "Traceback" not in result.stderr
    assert written_repositories() == []


@pytest.fixture
def tar_bundle(mirror_cli, tmp_path, write_mirrorset, upstream_images) -> Path:
    out = tmp_path / "b.tar"
    manifest = write_mirrorset([upstream_images["app_1"]["ref"]], registries=UPSTREAM_SETTINGS)
    assert mirror_cli("collect", manifest, "-o", out).exit_code == 0
    return out


def test_flipped_bit_in_a_tar_bundle_exits_3_and_writes_nothing(
    tar_bundle, mirror_process, services, internal_env, internal_url, written_repositories
):
    out = tar_bundle
    with tarfile.open(out) as tar:  # only to find where the largest member's data starts
        largest = max(tar.getmembers(), key=lambda m: m.size)
    data = bytearray(out.read_bytes())
    data[largest.offset_data + 10] ^= 0x01
    out.write_bytes(bytes(data))
    result = _import(mirror_process, out, internal_url, services, internal_env)
    assert result.exit_code == 3
    assert largest.name in result.stderr
    assert written_repositories() == []


def test_data_hidden_after_the_tar_end_marker_exits_3(
    tar_bundle, mirror_process, services, internal_env, internal_url, written_repositories
):
    out = tar_bundle
    data = bytearray(out.read_bytes())
    data[-100] = ord("x")  # in the zero padding after the end-of-archive marker
    out.write_bytes(bytes(data))
    result = _import(mirror_process, out, internal_url, services, internal_env)
    assert result.exit_code == 3
    assert "after its end-of-archive marker" in result.stderr
    assert written_repositories() == []


def test_missing_blob_exits_3_naming_it(
    mirror_process, bundle, services, internal_env, internal_url, written_repositories
):
    layer = _largest_layer(bundle)
    layer.unlink()
    result = _import(mirror_process, bundle, internal_url, services, internal_env)
    assert result.exit_code == 3
    assert f"blobs/sha256/{layer.name}: listed in the inventory but missing" in result.stderr
    assert written_repositories() == []


def test_unlisted_extra_file_exits_3(
    mirror_process, bundle, services, internal_env, internal_url, written_repositories
):
    (bundle / "blobs" / "sha256" / ("0" * 64)).write_bytes(b"smuggled")
    result = _import(mirror_process, bundle, internal_url, services, internal_env)
    assert result.exit_code == 3
    assert "present but not listed" in result.stderr
    assert written_repositories() == []


def test_every_problem_is_reported_not_just_the_first(mirror_process, bundle, services, internal_env, internal_url):
    blobs = sorted((bundle / "blobs" / "sha256").iterdir(), key=lambda p: p.stat().st_size)
    _flip_byte(blobs[-1])
    _flip_byte(blobs[-2], offset=10)
    result = _import(mirror_process, bundle, internal_url, services, internal_env)
    assert result.exit_code == 3
    assert blobs[-1].name in result.stderr and blobs[-2].name in result.stderr


def test_edited_inventory_digest_exits_3(
    mirror_process, bundle, services, internal_env, internal_url, written_repositories
):
    inventory = json.loads((bundle / "inventory.json").read_text())
    record = next(f for f in inventory["files"] if f["path"] == "index.json")
    record["sha256"] = "f" * 64
    (bundle / "inventory.json").write_text(json.dumps(inventory))
    result = _import(mirror_process, bundle, internal_url, services, internal_env)
    assert result.exit_code == 3
    assert written_repositories() == []


def test_import_without_a_trust_decision_exits_2(
    mirror_process, bundle, services, internal_env, internal_url, written_repositories
):
    result = mirror_process(
        "import", bundle, "--registry", internal_url, "--ca-file", services.ca_file, env=internal_env
    )
    assert result.exit_code == 2
    assert "--allow-unsigned" in result.stderr
    assert written_repositories() == []


def test_allow_unsigned_warns(mirror_process, bundle, services, internal_env, internal_url):
    result = _import(mirror_process, bundle, internal_url, services, internal_env, "--dry-run")
    assert result.exit_code == 0
    assert "warning: --allow-unsigned" in result.stderr


def test_two_sources_landing_on_one_repository_are_refused_at_collect(
    mirror_cli, tmp_path, write_mirrorset, upstream_images
):
    app = upstream_images["app_1"]
    # The same path from two registries: <upstream>/fixtures/app and mirror.example/fixtures/app.
    manifest = write_mirrorset(
        [app["ref"], "mirror.example/fixtures/app:2.0"],
        registries={**UPSTREAM_SETTINGS, "mirror.example": {"endpoint": f"http://{UPSTREAM_REGISTRY}"}},
    )
    result = mirror_cli("collect", manifest, "-o", tmp_path / "b")
    assert result.exit_code == 2
    assert "fixtures/app" in result.stderr and "mirror.example/fixtures/app" in result.stderr
    assert not (tmp_path / "b").exists()


def test_a_bundle_with_two_sources_landing_on_one_repository_is_refused_at_import(
    mirror_cli, tmp_path, services, internal_env, internal_url, written_repositories
):
    # Collect refuses such a bundle; one from an older collector, or made by hand, meets the same rule here.
    from tests.support.signedbundles import SmallBundle

    bundle = SmallBundle(tmp_path / "b")
    bundle.image(f"{UPSTREAM_REGISTRY}/fixtures/app:1.0")
    bundle.image("mirror.example/fixtures/app:2.0")
    bundle.finish()
    result = mirror_cli(
        "import", bundle.root, "--registry", internal_url, "--allow-unsigned", "--ca-file", services.ca_file,
        env=internal_env,
    )  # fmt: skip
    assert result.exit_code == 2
    assert "fixtures/app" in result.stderr and "mirror.example/fixtures/app" in result.stderr
    assert written_repositories() == []


def test_wrong_registry_password_exits_4_and_is_never_printed(mirror_process, bundle, services, internal_url):
    env = {"MIRROR_REGISTRY_USERNAME": services.internal_user, "MIRROR_REGISTRY_PASSWORD": "wrong-secret-5678"}
    result = _import(mirror_process, bundle, internal_url, services, env)
    assert result.exit_code == 4
    assert "wrong-secret-5678" not in result.stderr + result.stdout


def test_unreachable_target_exits_4_naming_it(mirror_process, bundle, services, internal_env):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = _import(mirror_process, bundle, f"https://127.0.0.1:{port}", services, internal_env)
    assert result.exit_code == 4
    assert f"127.0.0.1:{port}" in result.stderr


def test_untrusted_certificate_is_refused(mirror_process, bundle, internal_env, internal_url, written_repositories):
    result = mirror_process("import", bundle, "--registry", internal_url, "--allow-unsigned", env=internal_env)
    assert result.exit_code == 4
    assert "CERTIFICATE_VERIFY_FAILED" in result.stderr or "certificate" in result.stderr.lower()
    assert written_repositories() == []
