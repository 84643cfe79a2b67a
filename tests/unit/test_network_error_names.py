"""A network error names the artifact whose transfer failed, and the MirrorSet field, chart or Flux object that
needed it, not only the host; once each. Collect and import run on the registry simulator, with one attempt."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import httpx
import pytest
import yaml

from mirror.collector.run import collect
from mirror.errors import TransferError
from mirror.importer.run import import_bundle
from mirror.limits import DEFAULT_LIMITS
from tests.support.mirrorsets import write_mirrorset
from tests.unit.registry_sim import RegistrySim
from tests.unit.test_collect_import_sim import INTERNAL, UPSTREAM, _upstream

ONE_ATTEMPT = dataclasses.replace(DEFAULT_LIMITS, max_attempts=1)


def _refused(request: httpx.Request) -> bool:
    return True


def _write(path: Path, spec: dict) -> Path:
    document = {"apiVersion": "mirror/v1", "kind": "MirrorSet", "metadata": {"name": "n"}, "spec": spec}
    path.write_text(yaml.safe_dump(document))
    return path


def _collect_failure(tmp_path: Path, mirrorset: Path, upstream: RegistrySim) -> TransferError:
    with pytest.raises(TransferError) as failed:
        collect([mirrorset], tmp_path / "night", transport=upstream.transport(), limits=ONE_ATTEMPT)
    return failed.value


def test_an_unreachable_registry_names_the_image_and_its_mirrorset_field(tmp_path: Path) -> None:
    upstream, _ = _upstream()
    upstream.fail(100, error=httpx.ConnectError)
    mirrorset = write_mirrorset(tmp_path / "m.yaml", [f"{UPSTREAM}/team/app:1.0"])
    error = _collect_failure(tmp_path, mirrorset, upstream)
    assert UPSTREAM in error.message  # the host, as before
    assert f"image {UPSTREAM}/team/app:1.0" in error.message
    assert f"{mirrorset}: spec.images[0]" in error.message


def test_a_blob_download_that_fails_names_the_blob_the_image_and_the_field(tmp_path: Path) -> None:
    upstream, _ = _upstream()
    upstream.fail(100, error=httpx.ConnectError, match=lambda r: "/blobs/sha256:" in r.url.path)
    mirrorset = write_mirrorset(tmp_path / "m.yaml", [f"{UPSTREAM}/team/app:1.0"])
    error = _collect_failure(tmp_path, mirrorset, upstream)
    assert "blob sha256:" in error.message
    assert f"image {UPSTREAM}/team/app:1.0" in error.message
    assert f"{mirrorset}: spec.images[0]" in error.message


def test_the_origin_is_named_once(tmp_path: Path) -> None:
    upstream, _ = _upstream()
    upstream.fail(100, error=httpx.ConnectError)
    mirrorset = write_mirrorset(tmp_path / "m.yaml", [f"{UPSTREAM}/team/app:1.0"])
    error = _collect_failure(tmp_path, mirrorset, upstream)
    assert error.message.count("spec.images[0]") == 1
    assert error.message.count(f"image {UPSTREAM}/team/app:1.0") == 1


def test_an_unreachable_chart_repository_names_the_chart_and_its_mirrorset_field(tmp_path: Path) -> None:
    upstream, _ = _upstream()
    mirrorset = _write(
        tmp_path / "m.yaml",
        {"charts": [{"name": "podinfo", "repo": "https://charts.test/stable", "version": "6.5.0"}]},
    )
    error = _collect_failure(tmp_path, mirrorset, upstream)
    assert "chart podinfo" in error.message and "https://charts.test/stable" in error.message
    assert f"{mirrorset}: spec.charts[0]" in error.message


def test_an_unreachable_registry_of_a_fleet_image_names_the_flux_object(tmp_path: Path) -> None:
    upstream, _ = _upstream()
    upstream.fail(100, error=httpx.ConnectError)
    fleet = tmp_path / "fleet"
    fleet.mkdir()
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "team"},
        "spec": {"template": {"spec": {"containers": [{"name": "web", "image": f"{UPSTREAM}/team/app:1.0"}]}}},
    }
    (fleet / "web.yaml").write_text(yaml.safe_dump(deployment))
    mirrorset = _write(tmp_path / "m.yaml", {"flux": [{"path": "fleet"}], "allowedHosts": [UPSTREAM.split(":")[0]]})
    error = _collect_failure(tmp_path, mirrorset, upstream)
    assert f"image {UPSTREAM}/team/app:1.0" in error.message
    assert "Deployment team/web" in error.message


def test_an_upload_that_fails_at_import_names_the_blob_and_the_image(tmp_path: Path) -> None:
    upstream, _ = _upstream()
    mirrorset = write_mirrorset(tmp_path / "m.yaml", [f"{UPSTREAM}/team/app:1.0"])
    collect([mirrorset], tmp_path / "night", transport=upstream.transport())
    target = RegistrySim(INTERNAL)
    # The push check before any write posts an upload too: only the uploads of blobs fail.
    target.fail(
        100, error=httpx.ConnectError, match=lambda r: r.method in ("PATCH", "PUT") and "/uploads/" in r.url.path
    )
    with pytest.raises(TransferError) as failed:
        import_bundle(
            tmp_path / "night", f"https://{INTERNAL}", allow_unsigned=True, transport=target.transport(),
            limits=ONE_ATTEMPT,
        )  # fmt: skip
    assert "blob sha256:" in failed.value.message
    assert f"image {UPSTREAM}/team/app:1.0" in failed.value.message


def test_an_unreachable_git_server_names_the_mirrorset_field(tmp_path: Path) -> None:
    upstream, _ = _upstream()
    git = [{"name": "fleet", "url": "https://git.test/fleet/infra.git", "ref": {"branch": "main"}}]
    mirrorset = _write(tmp_path / "m.yaml", {"git": git})
    error = _collect_failure(tmp_path, mirrorset, upstream)
    assert "https://git.test/fleet/infra.git" in error.message
    assert f"{mirrorset}: spec.git[0]" in error.message
