"""A Flux fleet in a real Git repository: resolved natively, carried, imported, and written for the high side."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import pytest
import yaml

from mirror.bundle.inventory import parse_inventory
from mirror.importer.flux_out import RECORD_NAME
from tests.support.charts import seed_charts
from tests.support.gitrepos import ls_remote, make_upstream_repo
from tests.support.kubeschemas import invalid
from tests.support.mirrorsets import mirrorset
from tests.support.services import CHARTS_ADDRESS, UPSTREAM_REGISTRY


def _fleet_files(services, apps_url: str, charts_url: str) -> dict[str, str | None]:
    """A cluster path naming a second Git repository, a Helm repository with a release, an OCI artifact and a
    workload image; the Kustomization to the second repository substitutes a variable."""
    return {
        # Without a kustomization.yaml, Flux applies every manifest under the path.
        "clusters/production/kustomization.yaml": None,
        "clusters/production/sources.yaml": f"""\
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata: {{name: apps, namespace: flux-system}}
spec:
  interval: 5m
  url: {apps_url}
  ref: {{branch: main}}
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: HelmRepository
metadata: {{name: seed, namespace: flux-system}}
spec:
  interval: 1h
  url: {charts_url}
---
apiVersion: source.toolkit.fluxcd.io/v1beta2
kind: OCIRepository
metadata: {{name: manifests, namespace: flux-system}}
spec:
  interval: 10m
  url: oci://{services.upstream}/charts/ocichart
  ref: {{tag: "0.1.0"}}
""",
        "clusters/production/release.yaml": """\
apiVersion: helm.toolkit.fluxcd.io/v2beta2
kind: HelmRelease
metadata: {name: app, namespace: apps}
spec:
  interval: 10m
  chart:
    spec:
      chart: app
      version: ">=1.0.0 <2.0.0"
      sourceRef: {kind: HelmRepository, name: seed, namespace: flux-system}
""",
        "clusters/production/workload.yaml": f"""\
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web, namespace: apps}}
spec:
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers:
        - name: web
          image: {services.upstream}/fixtures/shared-a:1.0
""",
        "clusters/production/apps.yaml": """\
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: apps, namespace: flux-system}
spec:
  interval: 10m
  path: ./deploy
  prune: true
  sourceRef: {kind: GitRepository, name: apps}
  postBuild:
    substitute: {TAG: "1.0"}
""",
    }


def _apps_files(services) -> dict[str, str]:
    return {
        "deploy/api.yaml": f"""\
apiVersion: apps/v1
kind: Deployment
metadata: {{name: api, namespace: apps}}
spec:
  selector: {{matchLabels: {{app: api}}}}
  template:
    metadata: {{labels: {{app: api}}}}
    spec:
      containers:
        - name: api
          image: {services.upstream}/fixtures/shared-b:${{TAG}}
""",
    }


@pytest.fixture
def fleet(services, upstream_images) -> dict:
    charts = seed_charts(services)
    prefix = f"t{uuid.uuid4().hex[:8]}"
    apps = make_upstream_repo(services, f"{prefix}/apps", files=_apps_files(services))
    fleet = make_upstream_repo(
        services, f"{prefix}/fleet", files=_fleet_files(services, apps["url"], charts["repo"]["url"])
    )
    return {"fleet": fleet, "apps": apps, "charts": charts}


def _manifest(tmp_path: Path, fleet_url: str) -> Path:
    document = mirrorset([], registries={UPSTREAM_REGISTRY: {"plainHTTP": True}})
    document["spec"]["git"] = [{"name": "fleet", "url": fleet_url, "ref": {"branch": "main"}}]
    document["spec"]["flux"] = [{"git": "fleet", "path": "clusters/production"}]
    document["spec"]["allowedHosts"] = [CHARTS_ADDRESS]  # the fleet's HelmRepository: found, not named
    path = tmp_path / "fleet.yaml"
    path.write_text(json.dumps(document))
    return path


def test_fleet_is_resolved_to_git_sources_charts_artifacts_and_images(
    tmp_path, mirror_cli, services, fleet, upstream_images
):
    bundle = tmp_path / "b"
    result = mirror_cli("collect", _manifest(tmp_path, fleet["fleet"]["url"]), "-o", bundle, "-q")
    assert result.exit_code == 0, result.stderr
    artifacts = parse_inventory((bundle / "inventory.json").read_bytes()).artifacts
    by_kind: dict[str, set[str]] = {}
    for artifact in artifacts:
        by_kind.setdefault(artifact.kind, set()).add(artifact.source)
    assert by_kind["git"] == {fleet["fleet"]["url"], fleet["apps"]["url"]}
    assert any(source.endswith("/app-1.1.0.tgz") for source in by_kind["chart"])
    assert {upstream_images["shared_a"]["ref"], upstream_images["shared_b"]["ref"]} <= by_kind["image"]
    assert f"{services.upstream}/charts/ocichart:0.1.0" in by_kind["image"]
    assert len(by_kind["flux"]) == 1


def _import_fleet(
    tmp_path, mirror_cli, services, fleet, internal_env, internal_url, git_base, *, night: int = 1, report=None
) -> Path:
    """Collects the fleet and imports it with --git and --flux-out; returns the --flux-out directory."""
    bundle = tmp_path / f"b{night}.tar"
    assert mirror_cli("collect", _manifest(tmp_path, fleet["fleet"]["url"]), "-o", bundle, "-q").exit_code == 0
    out = tmp_path / "flux-out"
    env = {**internal_env, "MIRROR_GIT_USERNAME": services.git_user, "MIRROR_GIT_PASSWORD": services.git_password}
    result = mirror_cli(
        "import",
        bundle,
        "--registry",
        internal_url,
        "--git",
        git_base,
        "--flux-out",
        out,
        "--allow-unsigned",
        "--ca-file",
        services.ca_file,
        "-q",
        *(["--report", report] if report else []),
        env=env,
    )
    assert result.exit_code == 0, result.stderr
    return out


def test_import_writes_flux_objects_pointing_only_at_internal_endpoints(
    tmp_path, mirror_cli, services, fleet, internal_env, internal_url, target_prefix
):
    git_base = f"{services.git_internal}/{target_prefix}"
    out = _import_fleet(tmp_path, mirror_cli, services, fleet, internal_env, internal_url, git_base)

    written = {p.relative_to(out).as_posix(): p.read_text() for p in out.rglob("*") if p.is_file()}
    # The mirror configurations name the upstream registries on purpose (they map them), and so does the record
    # of the files written (their names); the objects must not.
    flux_files = {
        name: text for name, text in written.items() if not name.startswith("_registries/") and name != RECORD_NAME
    }
    everything = "\n".join(flux_files.values())
    for upstream in (services.upstream, services.charts_url, services.git_upstream):
        assert upstream.removeprefix("http://") not in everything, upstream
    objects = {
        (doc["kind"], doc["metadata"]["name"]): doc
        for text in written.values()
        if text.startswith(("apiVersion", "---"))
        for doc in yaml.safe_load_all(text)
        if isinstance(doc, dict) and "metadata" in doc
    }
    apps = objects[("GitRepository", "apps")]
    assert apps["apiVersion"] == "source.toolkit.fluxcd.io/v1"
    assert apps["spec"]["url"] == f"{git_base}/{fleet['apps']['name']}.git"
    assert apps["spec"]["ref"] == {"branch": "mirror/main"}  # the relocated branch (test_flux_relocation.py)
    seed = objects[("HelmRepository", "seed")]
    assert seed["spec"]["type"] == "oci"
    assert seed["spec"]["url"] == f"oci://{services.internal}/{target_prefix}/charts"
    release = objects[("HelmRelease", "app")]
    assert release["apiVersion"] == "helm.toolkit.fluxcd.io/v2"
    assert release["spec"]["chart"]["spec"]["version"] == ">=1.0.0 <2.0.0"
    assert objects[("OCIRepository", "manifests")]["spec"]["url"] == (
        f"oci://{services.internal}/{target_prefix}/charts/ocichart"
    )
    assert any("hosts.toml" in name for name in written) and any("registries.yaml" in name for name in written)

    landed = ls_remote(f"{git_base}/{fleet['apps']['name']}.git", services, auth=True)
    assert landed["refs/heads/main"] == fleet["apps"]["heads"]["main"]


def test_the_registries_directory_holds_every_node_file_and_never_the_importers_ca_path(
    tmp_path, mirror_cli, services, fleet, internal_env, internal_url, target_prefix
):
    git_base = f"{services.git_internal}/{target_prefix}"
    out = _import_fleet(tmp_path, mirror_cli, services, fleet, internal_env, internal_url, git_base)

    registries = out / "_registries"
    written = {p.relative_to(registries).as_posix(): p.read_text() for p in registries.rglob("*") if p.is_file()}
    assert {
        "k3s/registries.yaml",
        "containers/registries.conf.d/50-mirror.conf",
        "openshift/imagedigestmirrorset.yaml",
        "openshift/imagetagmirrorset.yaml",
    } < set(written)  # and a containerd hosts.toml per source registry: what --mirror-config writes
    assert str(services.ca_file) not in "\n".join(written.values())  # --ca-file is the importer's, not the nodes'


def test_written_flux_objects_are_valid_against_fluxs_crd_schemas(
    tmp_path, mirror_cli, services, fleet, internal_env, internal_url, target_prefix
):
    git_base = f"{services.git_internal}/{target_prefix}"
    out = _import_fleet(tmp_path, mirror_cli, services, fleet, internal_env, internal_url, git_base)

    documents = [
        doc
        for path in sorted(out.rglob("*.yaml"))
        if not path.relative_to(out).as_posix().startswith("_registries/") and path.name != "kustomization.yaml"
        for doc in yaml.safe_load_all(path.read_text())
        if isinstance(doc, dict)
    ]
    assert {doc["kind"] for doc in documents} >= {"GitRepository", "HelmRepository", "HelmRelease", "OCIRepository"}
    assert invalid(documents) == {}


def test_bootstrap_objects_point_the_fleets_root_at_the_internal_git_server_and_build_with_kubectl(
    tmp_path, mirror_cli, services, fleet, internal_env, internal_url, target_prefix
):
    git_base = f"{services.git_internal}/{target_prefix}"
    out = _import_fleet(tmp_path, mirror_cli, services, fleet, internal_env, internal_url, git_base)
    built = subprocess.run(
        ["kubectl", "kustomize", str(out / "_bootstrap")], capture_output=True, text=True, timeout=60, check=False
    )
    assert built.returncode == 0, built.stderr
    objects = {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(built.stdout) if d}
    root = objects[("GitRepository", "flux-system")]
    assert root["spec"]["url"] == f"{git_base}/{fleet['fleet']['name']}.git"
    assert root["spec"]["ref"] == {"branch": "mirror/main"}
    assert objects[("Kustomization", "flux-system")]["spec"]["path"] == "./clusters/production"
    secret = objects[("Secret", root["spec"]["secretRef"]["name"])]
    assert set(secret["stringData"]) >= {"username", "password"}
    assert services.git_password not in built.stdout
    assert invalid(list(objects.values())) == {}


def test_the_import_report_lists_each_rewritten_source_with_its_old_and_new_endpoint(
    tmp_path, mirror_cli, services, fleet, internal_env, internal_url, target_prefix
):
    git_base = f"{services.git_internal}/{target_prefix}"
    report = tmp_path / "import.json"
    _import_fleet(tmp_path, mirror_cli, services, fleet, internal_env, internal_url, git_base, report=report)
    listed = {entry["object"]: entry for entry in json.loads(report.read_text())["fluxRewrites"]}
    apps = listed["GitRepository flux-system/apps"]
    assert apps["url"] == {"from": fleet["apps"]["url"], "to": f"{git_base}/{fleet['apps']['name']}.git"}
    assert apps["secretRef"] == "mirror-git"
    assert listed["HelmRepository flux-system/seed"]["url"]["to"] == f"oci://{services.internal}/{target_prefix}/charts"


def test_the_next_night_into_the_same_flux_out_directory_updates_it_in_place(
    tmp_path, mirror_cli, services, fleet, internal_env, internal_url, target_prefix
):
    git_base = f"{services.git_internal}/{target_prefix}"
    out = _import_fleet(tmp_path, mirror_cli, services, fleet, internal_env, internal_url, git_base)
    first = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    again = _import_fleet(tmp_path, mirror_cli, services, fleet, internal_env, internal_url, git_base, night=2)
    assert {p.relative_to(again).as_posix(): p.read_bytes() for p in again.rglob("*") if p.is_file()} == first


def test_an_unresolvable_reference_is_named_and_nothing_is_collected(tmp_path, mirror_cli, services):
    broken = make_upstream_repo(
        services,
        f"t{uuid.uuid4().hex[:8]}/broken",
        files={
            "clusters/production/kustomization.yaml": None,
            "clusters/x/release.yaml": """\
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: {name: orphan, namespace: apps}
spec:
  chart:
    spec:
      chart: app
      sourceRef: {kind: HelmRepository, name: missing, namespace: flux-system}
""",
        },
    )
    manifest = _manifest(tmp_path, broken["url"])
    document = json.loads(manifest.read_text())
    document["spec"]["flux"] = [{"git": "fleet", "path": "clusters/x"}]
    manifest.write_text(json.dumps(document))
    result = mirror_cli("collect", manifest, "-o", tmp_path / "b")
    assert result.exit_code == 2
    assert "missing" in result.stderr and "orphan" in result.stderr
    assert not (tmp_path / "b").exists()


def test_inspect_names_what_the_flux_objects_brought_and_what_chart_discovery_found(
    tmp_path, mirror_cli, services, fleet, upstream_images
):
    bundle = tmp_path / "b"
    result = mirror_cli("collect", _manifest(tmp_path, fleet["fleet"]["url"]), "-o", bundle, "-q")
    assert result.exit_code == 0, result.stderr
    review = mirror_cli("inspect", bundle, "--json")
    assert review.exit_code == 0, review.stderr
    found = {(a["kind"], a["source"]): a["found"] for a in review.json()["artifacts"]}
    assert found[("image", upstream_images["shared_b"]["ref"])] == "flux"
    [chart] = [source for kind, source in found if kind == "chart" and source.endswith("/app-1.1.0.tgz")]
    assert found[("chart", chart)] == "flux"
    assert "chart" in {how for (kind, _), how in found.items() if kind == "image"}
    text = mirror_cli("inspect", bundle).stdout
    assert "Flux artifacts (1)" in text and "found: Flux object" in text
