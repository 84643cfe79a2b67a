"""How collect fails: the exit code of the contract, a message naming what is wrong, and nothing left at OUT."""

from __future__ import annotations

import socket

import pytest

from tests.support.services import UPSTREAM_REGISTRY

UPSTREAM_SETTINGS = {UPSTREAM_REGISTRY: {"plainHTTP": True}}


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_missing_image_exits_2_naming_reference_and_manifest(tmp_path, mirror_process, write_mirrorset, services):
    manifest = write_mirrorset([f"{UPSTREAM_REGISTRY}/fixtures/does-not-exist:1.0"], registries=UPSTREAM_SETTINGS)
    result = mirror_process("collect", manifest, "-o", tmp_path / "b")
    assert result.exit_code == 2
    assert f"{UPSTREAM_REGISTRY}/fixtures/does-not-exist:1.0" in result.stderr
    assert str(manifest) in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_tag_of_an_existing_repository_exits_2(tmp_path, mirror_cli, write_mirrorset, upstream_images):
    manifest = write_mirrorset([f"{UPSTREAM_REGISTRY}/fixtures/app:9.9"], registries=UPSTREAM_SETTINGS)
    result = mirror_cli("collect", manifest, "-o", tmp_path / "b")
    assert result.exit_code == 2
    assert "fixtures/app:9.9" in result.stderr


def test_failed_collect_leaves_nothing_at_out_or_beside_it(
    tmp_path, mirror_cli, write_mirrorset, upstream_images, no_leftovers
):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    manifest = write_mirrorset(
        [upstream_images["multi"]["ref"], f"{UPSTREAM_REGISTRY}/fixtures/does-not-exist:1.0"],
        registries=UPSTREAM_SETTINGS,
    )
    for out in (out_dir / "b", out_dir / "b.tar"):
        assert mirror_cli("collect", manifest, "-o", out).exit_code == 2
    assert list(out_dir.iterdir()) == []


def test_unreachable_registry_exits_4_naming_the_host(tmp_path, mirror_process, write_mirrorset):
    port = _closed_port()
    manifest = write_mirrorset(
        [f"127.0.0.1:{port}/team/app:1.0"], registries={f"127.0.0.1:{port}": {"plainHTTP": True}}
    )
    result = mirror_process("collect", manifest, "-o", tmp_path / "b")
    assert result.exit_code == 4
    assert f"127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "b").exists()


def test_tls_to_a_plain_http_registry_fails_as_transfer_error(tmp_path, mirror_cli, write_mirrorset, upstream_images):
    # No plainHTTP setting: mirror speaks TLS, the upstream does not; that is a transport failure, not a crash.
    manifest = write_mirrorset([upstream_images["app_1"]["ref"]])
    result = mirror_cli("collect", manifest, "-o", tmp_path / "b")
    assert result.exit_code == 4
    assert UPSTREAM_REGISTRY in result.stderr


@pytest.mark.parametrize(
    ("spec_images", "field"),
    [
        ([{"ref": f"{UPSTREAM_REGISTRY}/fixtures/app:1.0", "platform": ["linux/amd64"]}], "spec.images[0].platform"),
        ([f"{UPSTREAM_REGISTRY}/Fixtures/App:1.0"], "spec.images[0]"),
        ([{"platforms": "all"}], "spec.images[0].ref"),
    ],
    ids=["unknown-field", "uppercase-repository", "missing-ref"],
)
def test_bad_manifest_fields_exit_2_naming_file_and_field(
    tmp_path, mirror_process, write_mirrorset, spec_images, field
):
    manifest = write_mirrorset(spec_images, registries=UPSTREAM_SETTINGS)
    result = mirror_process("collect", manifest, "-o", tmp_path / "b")
    assert result.exit_code == 2
    assert f"{manifest}: {field}" in result.stderr
    assert "Traceback" not in result.stderr


def test_existing_output_is_refused(tmp_path, mirror_cli, write_mirrorset, upstream_images):
    (tmp_path / "b").mkdir()
    result = mirror_cli(
        "collect",
        write_mirrorset([upstream_images["app_1"]["ref"]], registries=UPSTREAM_SETTINGS),
        "-o",
        tmp_path / "b",
    )
    assert result.exit_code == 2
    assert "already exists" in result.stderr
