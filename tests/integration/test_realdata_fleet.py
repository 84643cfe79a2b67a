"""A real fleet, served locally, reconciles on the high side: `fluxcd/flux2-kustomize-helm-example` (HEAD, Flux 2.7
layout) from `../shared/realdata`, its files unchanged, committed to the local Git upstream.

Every upstream it names is made resolvable on loopback without touching the fleet: its OCI hosts (quay.io,
docker.io, ghcr.io, public.ecr.aws) through `spec.registries.<host>.endpoint` onto the local upstream registry, where
stand-in charts and images are pushed under their real paths and tags; its Git host (github.com) and HTTP Helm
repository (stefanprodan.github.io) through `spec.rewrite` onto the local Git upstream and nginx chart repository.
Then two nights, collected signed, approved, imported with --git, --registry and --flux-out into the same directory,
the second after a new podinfo chart version upstream; after each night the cluster is played from `mirror/main`
(tests/support/fluxcluster.py), the ArtifactGenerator's ExternalArtifacts included.
"""

from __future__ import annotations

import json
import subprocess
import tarfile
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.charts import ChartRepo, build_chart, oci_tag, push_oci_chart
from tests.support.fluxcluster import outside, play
from tests.support.gitrepos import _base_files, git_env, make_upstream_repo, run_git
from tests.support.images import skopeo_copy
from tests.support.kubeschemas import invalid
from tests.support.realdata import realdata
from tests.support.services import UPSTREAM_REGISTRY

FLEET = "fluxcd__flux2-kustomize-helm-example"
FLEET_URL = "https://github.com/fluxcd/flux2-kustomize-helm-example.git"
PODINFO_REPO = "https://stefanprodan.github.io/podinfo"
REGISTRY_HOSTS = ("quay.io", "docker.io", "ghcr.io", "public.ecr.aws")

# The OCI charts its OCIRepositories follow, each with the image its values name (real paths and tags; the tags
# v-prefixed as upstream publishes them, so cert-manager's `1.x` and envoy's `>= 1.8.0-rc.0` match as Flux does).
OCI_CHARTS = {
    "quay.io/jetstack/charts/cert-manager": ("v1.19.1", "quay.io/jetstack/cert-manager-controller:v1.19.1"),
    "docker.io/envoyproxy/gateway-helm": ("v1.8.0", "docker.io/envoyproxy/gateway:v1.8.0"),
}
# The podinfo chart of the HTTP repository and the redis image its HelmRelease values name.
PODINFO_IMAGE = "ghcr.io/stefanprodan/podinfo:{version}"
REDIS_IMAGE = "public.ecr.aws/docker/library/redis:8.6.2"
# API groups with no schema in the validator: the ArtifactGenerator (Flux 2.7's source-watcher, not yet published
# there; its ExternalArtifacts are followed by fluxcluster.py) and the fleet's own workloads' CRDs.
NO_SCHEMA = ("source.extensions.fluxcd.io", "cert-manager.io", "gateway.networking.k8s.io")


def _fleet_files(root: Path, name: str) -> dict[str, str | None]:
    """The fleet at HEAD as upstream holds it: every file outside realdata's `_history*`/`_pr*` snapshots, and
    nothing else (the generic files make_upstream_repo starts from are deleted in the tip commit)."""
    files: dict[str, str | None] = {
        path.relative_to(root).as_posix(): path.read_text()
        for path in sorted(root.rglob("*"))
        if path.is_file() and not path.relative_to(root).parts[0].startswith("_")
    }
    return {**{generic: None for generic in _base_files(name) if generic not in files}, **files}


def _stand_in_image(source: str, prefix: str, real: str) -> None:
    """An image pushed on the local upstream registry where the endpoint of its real host leads."""
    skopeo_copy(
        f"docker://{source}",
        f"docker://{UPSTREAM_REGISTRY}/{prefix}/{real}",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
    )


def _chart_values(image: str) -> dict[str, Any]:
    repository, _, tag = image.rpartition(":")
    return {"image": {"repository": repository, "tag": tag}}


def _publish_podinfo(repo: ChartRepo, prefix: str, source_image: str, versions: list[str]) -> None:
    for version in versions:
        image = PODINFO_IMAGE.format(version=version)
        _stand_in_image(source_image, prefix, image)
        repo.add(build_chart("podinfo", version, app_version=version, values=_chart_values(image)))
    repo.write_index()


@pytest.fixture
def realfleet(services, upstream_images) -> dict[str, Any]:
    """The real fleet on the local Git upstream, its charts and images behind their real names on loopback."""
    root = realdata(FLEET)
    prefix = f"t{uuid.uuid4().hex[:8]}"
    git_upstream = f"{services.git_upstream}/{prefix}/"
    name = f"{prefix}/fluxcd/flux2-kustomize-helm-example"
    files = _fleet_files(root, name)
    fleet = make_upstream_repo(services, name, files=files, branches=(), tags=(), annotated=())
    source_image = upstream_images["shared_a"]["ref"]
    for repository, (version, image) in OCI_CHARTS.items():
        _stand_in_image(source_image, prefix, image)
        chart = build_chart(repository.rsplit("/", 1)[1], version, app_version=version, values=_chart_values(image))
        push_oci_chart(chart, f"{UPSTREAM_REGISTRY}/{prefix}/{repository}:{oci_tag(version)}")
    _stand_in_image(source_image, prefix, REDIS_IMAGE)
    charts_path = f"{prefix}/stefanprodan.github.io/podinfo"
    podinfo = ChartRepo(Path(services.charts_dir) / charts_path, f"{services.charts_url}/{charts_path}")
    _publish_podinfo(podinfo, prefix, source_image, ["6.14.1"])
    mirrorset = {
        "apiVersion": "mirror/v1",
        "kind": "MirrorSet",
        "metadata": {"name": "realfleet"},
        "spec": {
            "images": [],
            "registries": {
                host: {"endpoint": f"http://{UPSTREAM_REGISTRY}/{prefix}/{host}"} for host in REGISTRY_HOSTS
            },
            "rewrite": [
                {"from": "https://github.com/", "to": git_upstream},
                {
                    "from": "https://stefanprodan.github.io/",
                    "to": f"{services.charts_url}/{prefix}/stefanprodan.github.io/",
                },
            ],
            "git": [{"name": "fleet", "url": FLEET_URL, "ref": {"branch": "main"}}],
            # The fleet's root is defined only in the cluster (its gotk-sync.yaml is a placeholder): name it.
            "flux": [{"git": "fleet", "path": "clusters/production", "gitRepository": "flux-system/flux-system"}],
        },
    }
    return {"fleet": fleet, "mirrorset": mirrorset, "podinfo": podinfo, "prefix": prefix, "image": source_image}


@pytest.fixture
def keys(tmp_path, mirror_cli) -> dict[str, Path]:
    """A collector and an officer, and the trust policy of the high side that names both."""
    made = {}
    (tmp_path / "keys").mkdir()
    for who in ("collector", "officer"):
        made[who] = tmp_path / "keys" / who
        assert mirror_cli("keygen", made[who]).exit_code == 0
    policy = tmp_path / "trust" / "policy.yaml"
    policy.parent.mkdir()
    policy.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "mirror/v1",
                "kind": "TrustPolicy",
                "collectors": {"keys": [f"{made['collector']}.pub"], "threshold": 1},
                "approvers": {"keys": [f"{made['officer']}.pub"], "threshold": 1},
                "maxAge": "14d",
                "stateFile": "state.json",
            }
        )
    )
    return {**made, "policy": policy}


def _night(tmp_path, mirror_cli, services, realfleet, keys, internal_env, internal_url, git_base, night: int) -> Path:
    """Collect (signed), approve, import with --git, --registry and --flux-out; returns the --flux-out directory."""
    manifest = tmp_path / "realfleet.yaml"
    manifest.write_text(json.dumps(realfleet["mirrorset"]))
    bundle = tmp_path / f"night{night}.tar"
    collected = mirror_cli("collect", manifest, "-o", bundle, "--key", f"{keys['collector']}.key", "-q")
    assert collected.exit_code == 0, collected.stderr
    approved = mirror_cli("approve", bundle, "--key", f"{keys['officer']}.key", "--trust", keys["policy"])
    assert approved.exit_code == 0, approved.stderr
    out = tmp_path / "flux-out"
    env = {**internal_env, "MIRROR_GIT_USERNAME": services.git_user, "MIRROR_GIT_PASSWORD": services.git_password}
    imported = mirror_cli(
        "import",
        bundle,
        "--trust",
        keys["policy"],
        "--registry",
        internal_url,
        "--git",
        git_base,
        "--flux-out",
        out,
        "--ca-file",
        services.ca_file,
        "-q",
        env=env,
    )
    assert imported.exit_code == 0, imported.stderr
    return out


def _helm_charts(objects: list[dict]) -> list[str]:
    """The source each HelmRelease's HelmChart (or chartRef) is made from, as helm-controller would look it up."""
    by_key = {(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]): o for o in objects}
    found = []
    for release in (o for o in objects if o["kind"] == "HelmRelease"):
        spec = release["spec"]
        ref = spec.get("chartRef") or spec["chart"]["spec"]["sourceRef"]
        namespace = ref.get("namespace") or release["metadata"].get("namespace")
        found.append(by_key[(ref["kind"], namespace, ref["name"])]["spec"]["url"])
    return found


def _internal_tags(services, repository: str) -> list[str]:
    """The tags of a repository on the internal registry, read with curl (an independent client)."""
    done = subprocess.run(
        [
            "curl",
            "-sf",
            "--cacert",
            str(services.ca_file),
            "-u",
            f"{services.internal_user}:{services.internal_password}",
            f"https://{services.internal}/v2/{repository}/tags/list",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return sorted(json.loads(done.stdout).get("tags") or [])


def _carried(bundle: Path) -> set[tuple[str, str]]:
    """(kind, source) of every artifact the bundle's inventory lists."""
    with tarfile.open(bundle) as tar:
        member = tar.extractfile("inventory.json")
        assert member is not None
        inventory = json.loads(member.read())
    return {(artifact["kind"], artifact["source"]) for artifact in inventory["artifacts"]}


@pytest.fixture
def nights(tmp_path, mirror_cli, services, realfleet, keys, internal_env, internal_url, target_prefix) -> list[dict]:
    """Two nights into the same --flux-out directory, the second after a new podinfo chart version upstream (which
    the production overlay's `>=1.0.0` follows); after each, the cluster played from the internal Git server."""
    git_base = f"{services.git_internal}/{target_prefix}"
    played = []
    for night in (1, 2):
        if night == 2:
            _publish_podinfo(realfleet["podinfo"], realfleet["prefix"], realfleet["image"], ["6.15.0"])
        out = _night(tmp_path, mirror_cli, services, realfleet, keys, internal_env, internal_url, git_base, night)
        objects = play(out, services, tmp_path / f"cluster{night}")
        played.append(
            {
                "objects": objects,
                "podinfo": _internal_tags(services, f"{target_prefix}/charts/podinfo"),
                "carried": _carried(tmp_path / f"night{night}.tar"),
            }
        )
    return played


def test_a_real_fleet_played_from_the_internal_git_server_points_only_inside_two_nights_in_a_row(
    services, nights, target_prefix
):
    inside = (f"{services.git_internal}/{target_prefix}/", f"oci://{services.internal}/{target_prefix}/")
    for night in nights:
        objects = night["objects"]
        names = {(o["kind"], o["metadata"]["name"]) for o in objects}
        assert {
            ("Kustomization", "flux-system"),
            ("Kustomization", "infra-controllers"),
            ("Kustomization", "infra-configs"),
            ("Kustomization", "apps"),
            ("OCIRepository", "cert-manager"),
            ("OCIRepository", "gateway-helm"),
            ("HelmRepository", "podinfo"),
            ("HelmRelease", "podinfo"),
            ("ClusterIssuer", "letsencrypt"),
        } <= names
        assert outside(objects, inside) == []
        assert [url for url in _helm_charts(objects) if not url.startswith(inside)] == []


def test_the_bundle_names_every_artifact_by_its_real_upstream_identity_not_the_loopback_it_came_through(nights):
    assert nights[1]["carried"] == {
        ("git", FLEET_URL),
        ("flux", f"{FLEET_URL}:clusters/production"),
        ("chart", f"{PODINFO_REPO}/podinfo-6.15.0.tgz"),
        ("image", PODINFO_IMAGE.format(version="6.15.0")),
        ("image", REDIS_IMAGE),
        *(("chart", f"{repository}:{version}") for repository, (version, _) in OCI_CHARTS.items()),
        *(("image", f"{repository}:{version}") for repository, (version, _) in OCI_CHARTS.items()),
        *(("image", image) for _, image in OCI_CHARTS.values()),
    }


def test_the_real_fleets_cluster_objects_and_bootstrap_validate_against_fluxs_schemas(nights):
    for night in nights:
        checked = [o for o in night["objects"] if o["apiVersion"].split("/")[0] not in NO_SCHEMA]
        assert {o["kind"] for o in checked} >= {
            "GitRepository", "HelmRepository", "OCIRepository", "Kustomization", "HelmRelease", "Secret"
        }  # fmt: skip
        assert invalid(checked) == {}


def test_the_second_night_carries_the_new_chart_and_the_fleets_upstream_commit_stays_verifiable(
    tmp_path, services, realfleet, nights, target_prefix
):
    assert [night["podinfo"] for night in nights] == [["6.14.1"], ["6.14.1", "6.15.0"]]
    landed = f"{services.git_internal}/{target_prefix}/fluxcd/flux2-kustomize-helm-example.git"  # its real path
    clone = tmp_path / "landed.git"
    run_git(["clone", "-q", "--bare", landed, clone], env=git_env(services, auth=True))
    upstream = realfleet["fleet"]["heads"]["main"]
    assert run_git(["rev-parse", "main", "mirror/main^"], git_dir=clone).stdout.decode().split() == [upstream] * 2
