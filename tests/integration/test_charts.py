"""Helm charts from an HTTP repository (nginx) and from OCI (distribution), collected and imported for real."""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from pathlib import Path

import oras.provider
import pytest

from mirror.bundle.inventory import parse_inventory
from tests.support.charts import ChartRepo, build_chart, seed_charts
from tests.support.services import CHARTS_ADDRESS2, UPSTREAM_REGISTRY

UPSTREAM = {UPSTREAM_REGISTRY: {"plainHTTP": True}}


@pytest.fixture(scope="session")
def charts(services, upstream_images) -> dict:
    return seed_charts(services)


@pytest.fixture
def repo_url(charts) -> str:
    return charts["repo"]["url"]


def _chart(name: str, repo: str, **fields) -> dict:
    return {"name": name, "repo": repo, **fields}


def _collect(mirror_cli, manifest: Path, out: Path) -> dict:
    result = mirror_cli("collect", manifest, "-o", out, "--json", "-q")
    assert result.exit_code == 0, result.stderr
    return result.json()


def _artifacts(summary: dict, kind: str) -> dict[str, dict]:
    return {a["source"]: a for a in summary["artifacts"] if a["kind"] == kind}


def _charts_by_name(summary: dict) -> dict[tuple[str, str], dict]:
    return {(a["chart"], a["version"]): a for a in summary["artifacts"] if a["kind"] == "chart"}


@pytest.mark.parametrize(
    ("constraint", "expected"),
    [
        (">=1.0.0", "2.0.0"),
        ("1.x", "1.1.0"),  # 1.2.0-beta.1 is a prerelease: excluded without a prerelease in the constraint
        (">=1.2.0-0 <2.0.0", "1.2.0-beta.1"),
        ("~1.0", "1.0.0"),
        ("1.1.0", "1.1.0"),
        (None, "2.0.0"),
    ],
    ids=["newest", "x-range-skips-prerelease", "prerelease-floor", "tilde", "exact", "no-version-newest-stable"],
)
def test_version_constraint_picks_what_helm_would(tmp_path, mirror_cli, repo_url, charts, constraint, expected):
    entry = _chart("app", repo_url) | ({"version": constraint} if constraint else {})
    result = mirror_cli("resolve", _manifest(tmp_path, [entry]), "--json")
    assert result.exit_code == 0, result.stderr
    [chart] = [a for a in result.json()["artifacts"] if a["kind"] == "chart"]
    assert chart["version"] == expected


def _manifest(tmp_path: Path, charts: list[dict], images: list | None = None) -> Path:
    from tests.support.mirrorsets import mirrorset

    document = mirrorset(images or [], registries=UPSTREAM)
    document["spec"]["charts"] = charts
    # The seeded index names some archives on CHARTS_ADDRESS2, a second loopback host: an internal address the
    # egress policy follows only when allowed.
    document["spec"]["allowedHosts"] = [CHARTS_ADDRESS2]
    path = tmp_path / f"charts-{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(json.dumps(document))
    return path


def test_relative_and_absolute_archive_urls_both_download(tmp_path, mirror_cli, repo_url, charts):
    # 1.0.0 has a relative url; 1.1.0 an absolute one; 2.0.0 an absolute one on another host (127.0.0.2).
    entries = [_chart("app", repo_url, version=v) for v in ("1.0.0", "1.1.0", "2.0.0")]
    summary = _collect(mirror_cli, _manifest(tmp_path, entries), tmp_path / "b")
    got = {a["version"]: a["archiveSha256"] for a in summary["artifacts"] if a["kind"] == "chart"}
    assert got == {v: charts["charts"]["app"][v]["digest"] for v in ("1.0.0", "1.1.0", "2.0.0")}


def test_archive_not_matching_the_index_digest_is_refused_and_no_bundle_is_left(
    tmp_path, mirror_cli, services, no_leftovers
):
    name = f"bad-{uuid.uuid4().hex[:8]}"
    repo = ChartRepo(services.charts_dir / name, f"{services.charts_url}/{name}")
    repo.add(build_chart("liar", "1.0.0"), digest_override="0" * 64)
    repo.write_index()
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    result = mirror_cli("collect", _manifest(tmp_path, [_chart("liar", repo.base_url)]), "-o", out_dir / "b.tar")
    assert result.exit_code == 4
    assert "liar-1.0.0.tgz" in result.stderr and "0" * 64 in result.stderr
    assert list(out_dir.iterdir()) == []


def test_dependencies_from_http_and_oci_repositories_are_collected(tmp_path, mirror_cli, repo_url, charts):
    summary = _collect(mirror_cli, _manifest(tmp_path, [_chart("withdeps", repo_url)]), tmp_path / "b")
    collected = _charts_by_name(summary)
    assert set(collected) == {("withdeps", "0.1.0"), ("app", "1.1.0"), ("ocichart", "0.1.0")}
    assert collected[("app", "1.1.0")]["requiredBy"] == "withdeps@0.1.0"
    assert collected[("ocichart", "0.1.0")]["requiredBy"] == "withdeps@0.1.0"


def test_dependencies_can_be_left_out(tmp_path, mirror_cli, repo_url, charts):
    summary = _collect(
        mirror_cli, _manifest(tmp_path, [_chart("withdeps", repo_url, dependencies=False)]), tmp_path / "b"
    )
    assert set(_charts_by_name(summary)) == {("withdeps", "0.1.0")}


def test_v1_chart_requirements_are_followed(tmp_path, mirror_cli, repo_url, charts):
    summary = _collect(mirror_cli, _manifest(tmp_path, [_chart("legacy", repo_url)]), tmp_path / "b")
    assert ("app", "1.0.0") in _charts_by_name(summary)


def test_images_from_the_annotation_are_collected_and_attributed(tmp_path, mirror_cli, repo_url, upstream_images):
    summary = _collect(mirror_cli, _manifest(tmp_path, [_chart("annotated", repo_url, images=True)]), tmp_path / "b")
    images = _artifacts(summary, "image")
    docker = images[upstream_images["docker"]["ref"]]
    assert docker["digest"] == upstream_images["docker"]["digest"]
    assert any("annotation artifacthub.io/images" in why for why in docker["foundBy"])


def test_images_from_values_of_vendored_subcharts_are_collected(tmp_path, mirror_cli, repo_url, upstream_images):
    summary = _collect(mirror_cli, _manifest(tmp_path, [_chart("vendored", repo_url, images=True)]), tmp_path / "b")
    images = _artifacts(summary, "image")
    for key in ("app_1", "shared_b", "dockerlist"):  # the chart, its subchart, and the subchart's subchart
        assert upstream_images[key]["ref"] in images, key
        assert any("values" in why for why in images[upstream_images[key]["ref"]]["foundBy"])


def test_images_from_helm_template_are_collected_when_helm_is_on_path(
    tmp_path, mirror_process, repo_url, upstream_images
):
    # A stand-in helm that renders one Deployment: proves the third layer's wiring; the real binary is optional.
    fake = tmp_path / "bin" / "helm"
    fake.parent.mkdir()
    rendered = f"""---
# Source: annotated/templates/deployment.yaml
apiVersion: apps/v1
kind: Deployment
metadata: {{name: x}}
spec:
  template:
    spec:
      containers:
        - name: x
          image: {upstream_images["shared_a"]["ref"]}
"""
    fake.write_text(f"#!/bin/sh\ncat <<'EOF'\n{rendered}EOF\n")
    fake.chmod(0o755)
    env = {"PATH": f"{fake.parent}:{os.environ['PATH']}"}
    result = mirror_process(
        "resolve", _manifest(tmp_path, [_chart("annotated", repo_url, images=True)]), "--json", env=env
    )
    assert result.exit_code == 0, result.stderr
    found = {a["source"]: a for a in result.json()["artifacts"] if a["kind"] == "image"}
    assert any("helm template" in why for why in found[upstream_images["shared_a"]["ref"]]["foundBy"])


def test_explicit_image_list_replaces_discovery(tmp_path, mirror_cli, repo_url, upstream_images):
    entry = _chart("annotated", repo_url, images=[upstream_images["shared_b"]["ref"]])
    summary = _collect(mirror_cli, _manifest(tmp_path, [entry]), tmp_path / "b")
    assert set(_artifacts(summary, "image")) == {upstream_images["shared_b"]["ref"]}


def test_excluded_images_are_left_out(tmp_path, mirror_cli, repo_url, upstream_images):
    entry = _chart("annotated", repo_url, images={"exclude": ["*/fixtures/multi:*"]})
    summary = _collect(mirror_cli, _manifest(tmp_path, [entry]), tmp_path / "b")
    assert upstream_images["multi"]["ref"] not in _artifacts(summary, "image")
    assert upstream_images["docker"]["ref"] in _artifacts(summary, "image")


def test_http_chart_lands_as_an_oci_chart_with_its_archive_bytes_unchanged(
    tmp_path, mirror_cli, services, internal_env, internal_url, target_prefix, repo_url, charts
):
    bundle = tmp_path / "b.tar"
    _collect(mirror_cli, _manifest(tmp_path, [_chart("app", repo_url, version="1.1.0")]), bundle)
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
        env=internal_env,
    )
    assert result.exit_code == 0, result.stderr
    registry = oras.provider.Registry(services.internal, tls_verify=str(services.ca_file), auth_backend="basic")
    registry.auth.set_basic_auth(services.internal_user, services.internal_password)
    target = f"{services.internal}/{target_prefix}/charts/app:1.1.0"
    manifest = registry.get_manifest(target)
    assert manifest["config"]["mediaType"] == "application/vnd.cncf.helm.config.v1+json"
    [layer] = manifest["layers"]
    assert layer["mediaType"] == "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
    archive = registry.get_blob(target, layer["digest"]).content
    assert archive == Path(charts["charts"]["app"]["1.1.0"]["path"]).read_bytes()


def test_oci_chart_keeps_its_path_and_digest(
    tmp_path, mirror_cli, services, internal_env, internal_url, target_prefix, charts
):
    oci = charts["oci"]["ocichart"]["0.1.0"]
    bundle = tmp_path / "b"
    summary = _collect(
        mirror_cli,
        _manifest(tmp_path, [_chart("ocichart", f"oci://{UPSTREAM_REGISTRY}/charts", version="0.1.0")]),
        bundle,
    )
    assert _charts_by_name(summary)[("ocichart", "0.1.0")]["digest"] == oci["digest"]
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
        env=internal_env,
    )
    assert result.exit_code == 0, result.stderr
    [landed] = [i for i in result.json()["images"] if i["digest"] == oci["digest"]]
    assert landed["target"] == f"{services.internal}/{target_prefix}/charts/ocichart:0.1.0"


def test_oci_chart_version_with_build_metadata_maps_to_its_tag(tmp_path, mirror_cli, charts):
    summary = _collect(
        mirror_cli,
        _manifest(tmp_path, [_chart("ocichart", f"oci://{UPSTREAM_REGISTRY}/charts", version=">=0.3.0")]),
        tmp_path / "b",
    )
    [chart] = _charts_by_name(summary).values()
    assert chart["version"] == "0.3.0+build.1"
    assert chart["source"].endswith("/charts/ocichart:0.3.0_build.1")


def test_chart_archive_blob_in_the_bundle_is_the_served_archive(tmp_path, mirror_cli, repo_url, charts):
    bundle = tmp_path / "b"
    _collect(mirror_cli, _manifest(tmp_path, [_chart("app", repo_url, version="1.0.0")]), bundle)
    served = Path(charts["charts"]["app"]["1.0.0"]["path"]).read_bytes()
    blob = bundle / "blobs" / "sha256" / hashlib.sha256(served).hexdigest()
    assert blob.read_bytes() == served
    inventory = parse_inventory((bundle / "inventory.json").read_bytes())
    [artifact] = [a for a in inventory.artifacts if a.kind == "chart"]
    assert artifact.source == charts["charts"]["app"]["1.0.0"]["download_url"]


def test_missing_chart_name_exits_2(tmp_path, mirror_cli, repo_url):
    result = mirror_cli("collect", _manifest(tmp_path, [_chart("nosuchchart", repo_url)]), "-o", tmp_path / "b")
    assert result.exit_code == 2
    assert "nosuchchart" in result.stderr


def test_constraint_matching_no_version_exits_2(tmp_path, mirror_cli, repo_url):
    result = mirror_cli(
        "collect", _manifest(tmp_path, [_chart("app", repo_url, version=">=9.0.0")]), "-o", tmp_path / "b"
    )
    assert result.exit_code == 2
    assert ">=9.0.0" in result.stderr


def test_a_version_listed_twice_is_accepted_when_the_archive_matches_either_digest(tmp_path, mirror_cli, services):
    # Real indexes re-release a version under one URL and list both entries (ingress-nginx 4.12.0-beta.0 ×9).
    name = f"dup-{uuid.uuid4().hex[:8]}"
    repo = ChartRepo(services.charts_dir / name, f"{services.charts_url}/{name}")
    archive = build_chart("twice", "1.0.0")
    entry = repo.add(archive)
    repo.entries["twice"].insert(0, {**entry, "digest": "1" * 64})
    repo.write_index(sort=False)
    summary = _collect(mirror_cli, _manifest(tmp_path, [_chart("twice", repo.base_url)]), tmp_path / "b")
    [chart] = _charts_by_name(summary).values()
    assert chart["archiveSha256"] == hashlib.sha256(archive).hexdigest()


def test_a_chart_entrys_values_decide_the_images_collect_finds_with_the_real_helm(
    tmp_path, mirror_process, repo_url, charts
):
    # The chart's values name fixtures/app:1.0; a values file and inline values move it to 2.0 (which upstream has).
    from tests.support.helmtool import real_helm

    default, wanted = (f"{UPSTREAM_REGISTRY}/fixtures/app:{tag}" for tag in ("1.0", "2.0"))
    (tmp_path / "values").mkdir()
    (tmp_path / "values" / "prod.yaml").write_text("image: {tag: '1.5'}\n")
    entry = _chart(
        "app",
        repo_url,
        version="1.1.0",
        images=True,
        valuesFiles=["values/prod.yaml"],
        values={"image": {"tag": "2.0"}},
        kubeVersion="1.31.0",
        apiVersions=["monitoring.coreos.com/v1"],
    )
    result = mirror_process("resolve", _manifest(tmp_path, [entry]), "--json", env={"MIRROR_HELM": real_helm()})
    assert result.exit_code == 0, result.stderr
    found = {a["source"]: a for a in result.json()["artifacts"] if a["kind"] == "image"}
    assert default not in found
    how = found[wanted]["foundBy"]
    assert any("with the MirrorSet's values" in why for why in how)
    assert any("helm template: Deployment/" in why for why in how)


def test_discovery_without_helm_says_so_once(tmp_path, mirror_process, repo_url):
    entries = [_chart("app", repo_url, version="1.1.0", images=True), _chart("annotated", repo_url, images=True)]
    environment = {"PATH": "/usr/bin:/bin", "MIRROR_HELM": ""}  # no helm there
    result = mirror_process("resolve", _manifest(tmp_path, entries), "--json", env=environment)
    assert result.exit_code == 0, result.stderr
    assert result.stderr.count("no helm (on PATH or in MIRROR_HELM)") == 1


def test_a_mirror_helm_that_is_no_program_is_refused(tmp_path, mirror_process, repo_url):
    entry = _chart("app", repo_url, version="1.1.0", images=True)
    result = mirror_process("resolve", _manifest(tmp_path, [entry]), env={"MIRROR_HELM": str(tmp_path / "absent")})
    assert result.exit_code == 2
    assert "MIRROR_HELM" in result.stderr
