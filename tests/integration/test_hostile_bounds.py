"""Hostile upstreams that stay under every byte cap but ask for unbounded memory or work (issue 20, holes 3 and 4).

Each upstream is a HostileServer on loopback. `mirror` runs as a subprocess under an address-space limit of
3 GB (so that the unbounded behaviour of old code fails instead of taking the machine), and its own peak RSS
and wall time are measured.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import MIRROR
from tests.support.charts import build_chart
from tests.support.hostile import HostileServer, Request
from tests.support.hostile.unbounded import (
    OCI_INDEX,
    OCI_LAYER,
    ChartRepository,
    Measured,
    Registry,
    run_measured,
    sha256,
    tag_page,
    write_large_index,
)

MB = 1000 * 1000
GiB = 1024**3


def mirror(*args: object, timeout_s: float = 120.0) -> Measured:
    argv = ["prlimit", "--as=3000000000", "--", str(MIRROR), *map(str, args)]
    return run_measured(argv, timeout_s=timeout_s)


def write_manifest(path: Path, spec: dict[str, Any]) -> Path:
    document = {"apiVersion": "mirror/v1", "kind": "MirrorSet", "metadata": {"name": "hostile"}, "spec": spec}
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def blob_requests(server: HostileServer) -> list[Request]:
    return server.seen(lambda r: "/blobs/" in r.path)


# -- index.yaml ----------------------------------------------------------------------------------------------


def test_a_60_mb_index_yaml_resolves_in_under_150_mb_of_memory(tmp_path: Path) -> None:
    archive = build_chart("app", "1.0.0", values={})
    index = tmp_path / "index.yaml"
    write_large_index(index, 60 * MB, app_archive=archive)
    repository = ChartRepository(index=index, archives={"app-1.0.0.tgz": archive})
    with HostileServer(repository.route) as server:
        chart = {"name": "app", "repo": server.url, "version": "^1.0.0", "images": False}
        manifest = write_manifest(tmp_path / "m.yaml", {"charts": [chart]})
        result = mirror("resolve", manifest, "--json")
    assert result.exit_code == 0, result.stderr
    assert [(a["chart"], a["version"]) for a in json.loads(result.stdout)["artifacts"]] == [("app", "1.0.0")]
    assert result.max_rss_bytes < 150 * MB, f"peak RSS {result.max_rss_bytes / MB:.0f} MB"
    assert result.seconds < 30


# -- tag lists -----------------------------------------------------------------------------------------------


def test_a_self_linking_tag_list_stops_at_the_first_repeat_with_bounded_memory(tmp_path: Path) -> None:
    registry = Registry(tag_pages={"charts/app": tag_page("charts/app", 4 * MB)})
    with HostileServer(registry.route) as server:
        chart = {"name": "app", "repo": f"oci://{server.netloc}/charts", "version": ">=1.0.0", "images": False}
        spec = {"registries": {server.netloc: {"plainHTTP": True}}, "charts": [chart]}
        result = mirror("resolve", write_manifest(tmp_path / "m.yaml", spec))
        pages = server.seen(lambda r: r.path.startswith("/v2/charts/app/tags/list"))
    assert result.exit_code == 4, result.stderr
    assert f"{server.netloc}/charts/app" in result.stderr
    assert "links back to a page already read" in result.stderr
    assert len(pages) == 1
    assert result.max_rss_bytes < 150 * MB, f"peak RSS {result.max_rss_bytes / MB:.0f} MB"
    assert "Traceback" not in result.stderr


# -- visited sets --------------------------------------------------------------------------------------------


def test_an_index_listing_one_child_20000_times_fetches_the_child_once(tmp_path: Path) -> None:
    registry = Registry()
    layer = registry.add_blob(b"layer bytes")
    child = registry.add_image("team/app", None, [layer])
    child_raw, _ = registry.manifests[("team/app", child)]
    descriptor = {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": child, "size": len(child_raw)}
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [descriptor] * 20_000}
    registry.add_manifest("team/app", index, "1.0")
    with HostileServer(registry.route) as server:
        spec = {"registries": {server.netloc: {"plainHTTP": True}}, "images": [f"{server.netloc}/team/app:1.0"]}
        result = mirror("collect", write_manifest(tmp_path / "m.yaml", spec), "-o", tmp_path / "out", "--no-cache")
        child_fetches = server.seen(lambda r: r.method == "GET" and r.path.endswith(f"/manifests/{child}"))
    assert result.exit_code == 0, result.stderr
    assert len(child_fetches) == 1


def test_an_endless_chart_dependency_chain_exits_2_naming_the_chain(tmp_path: Path) -> None:
    repository = ChartRepository(chain=5_000)
    with HostileServer(repository.route) as server:
        repository.base_url = server.url
        chart = {"name": "c0", "repo": server.url, "version": "1.0.0", "images": False}
        result = mirror("resolve", write_manifest(tmp_path / "m.yaml", {"charts": [chart]}), timeout_s=90)
    assert result.exit_code == 2, result.stderr[-2000:]
    assert "c0@1.0.0 → c1@1.0.0 → c2@1.0.0" in result.stderr
    assert "dependencies nested deeper than" in result.stderr
    assert result.seconds < 30


# -- images per release --------------------------------------------------------------------------------------


def test_a_helm_release_with_100000_images_exits_2_naming_it(tmp_path: Path) -> None:
    fleet = tmp_path / "fleet"
    fleet.mkdir()
    repository = {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "HelmRepository",
        "metadata": {"name": "charts", "namespace": "apps"},
        "spec": {"url": "http://127.0.0.1:9/charts"},
    }
    chart = {"chart": "app", "version": "1.0.0", "sourceRef": {"kind": "HelmRepository", "name": "charts"}}
    release = {
        "apiVersion": "helm.toolkit.fluxcd.io/v2",
        "kind": "HelmRelease",
        "metadata": {"name": "many", "namespace": "apps"},
        "spec": {
            "chart": {"spec": chart},
            "values": {"workers": [{"image": f"registry.example/team/worker-{i}:1.0"} for i in range(100_000)]},
        },
    }
    (fleet / "fleet.yaml").write_text(yaml.safe_dump_all([repository, release], sort_keys=False))
    manifest = write_manifest(tmp_path / "m.yaml", {"flux": [{"path": "fleet"}]})
    result = mirror("resolve", manifest, timeout_s=120)
    assert result.exit_code == 2, result.stderr[-2000:]
    assert "HelmRelease apps/many" in result.stderr
    assert "more than" in result.stderr and "images" in result.stderr
    assert result.seconds < 60


# -- declared sizes ------------------------------------------------------------------------------------------


def _image_with_declared_layer(registry: Registry, size: int) -> None:
    layer = {"mediaType": OCI_LAYER, "digest": sha256(b"never served"), "size": size}
    registry.add_image("team/huge", "1.0", [layer])


def test_a_layer_declared_as_1_tb_is_refused_before_any_blob_get(tmp_path: Path) -> None:
    registry = Registry()
    _image_with_declared_layer(registry, 10**12)
    with HostileServer(registry.route) as server:
        spec = {"registries": {server.netloc: {"plainHTTP": True}}, "images": [f"{server.netloc}/team/huge:1.0"]}
        result = mirror("collect", write_manifest(tmp_path / "m.yaml", spec), "-o", tmp_path / "out", "--no-cache")
        blobs = blob_requests(server)
    assert result.exit_code == 2, result.stderr
    assert "1000000000000 bytes" in result.stderr and f"{server.netloc}/team/huge:1.0" in result.stderr
    assert blobs == []
    assert not (tmp_path / "out").exists()


def test_max_bundle_size_below_the_declared_sizes_exits_2_before_any_blob_get(tmp_path: Path) -> None:
    registry = Registry()
    layer = registry.add_blob(b"x" * (2 * 1024 * 1024))
    registry.add_image("team/app", "1.0", [layer])
    with HostileServer(registry.route) as server:
        spec = {"registries": {server.netloc: {"plainHTTP": True}}, "images": [f"{server.netloc}/team/app:1.0"]}
        manifest = write_manifest(tmp_path / "m.yaml", spec)
        result = mirror("collect", manifest, "-o", tmp_path / "out", "--no-cache", "--max-bundle-size", "1M")
        blobs = blob_requests(server)
    assert result.exit_code == 2, result.stderr
    assert "--max-bundle-size 1048576 bytes" in result.stderr
    assert blobs == []
    assert list(tmp_path.iterdir()) == [manifest]


def test_declared_sizes_beyond_the_free_space_at_out_exit_2_before_any_blob_get(tmp_path: Path) -> None:
    declared = 200 * GiB
    if shutil.disk_usage(tmp_path).free >= declared:
        pytest.skip("this machine has more free space than the declared layer")
    registry = Registry()
    _image_with_declared_layer(registry, declared)
    with HostileServer(registry.route) as server:
        spec = {"registries": {server.netloc: {"plainHTTP": True}}, "images": [f"{server.netloc}/team/huge:1.0"]}
        result = mirror("collect", write_manifest(tmp_path / "m.yaml", spec), "-o", tmp_path / "out", "--no-cache")
        blobs = blob_requests(server)
    assert result.exit_code == 2, result.stderr
    assert "free" in result.stderr and str(tmp_path) in result.stderr
    assert blobs == []
