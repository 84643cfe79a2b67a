"""The bootstrap objects an operator applies once on the high side: each fleet's root GitRepository and
Kustomization on the internal Git server, and Secret templates (names and keys, no values) for every secretRef
and certSecretRef the sources need to reach the internal endpoints."""

from __future__ import annotations

import shutil
import subprocess
import textwrap

import pytest
import yaml

from mirror.errors import UsageError
from mirror.flux.bootstrap import (
    BOOTSTRAP_DIR,
    EndpointAccess,
    FleetRoot,
    bootstrap_files,
    reference_internal_secrets,
    rewrites,
)
from mirror.flux.objects import objects_from_documents, parse_yaml_documents
from mirror.flux.rewrite import InternalEndpoints, render_objects, rewrite_objects
from mirror.importer.flux_out import write_files
from tests.support.kubeschemas import invalid
from tests.support.realdata import realdata

INTERNAL = InternalEndpoints("registry.internal:5000/mirror", git_base="https://git.internal/fleet")
WITH_CA = EndpointAccess(git_auth=True, registry_auth=True, ca=True)
ROOT = FleetRoot(git="fleet", url="https://github.com/example/fleet", ref={"branch": "main"}, path="clusters/prod")

SOURCES = """
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata: {name: apps, namespace: flux-system}
spec: {interval: 5m, url: "https://github.com/example/apps", ref: {branch: main}, secretRef: {name: apps-auth}}
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: HelmRepository
metadata: {name: bitnami, namespace: flux-system}
spec: {interval: 30m, url: "https://charts.bitnami.com/bitnami"}
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: OCIRepository
metadata: {name: manifests, namespace: apps}
spec: {interval: 10m, url: "oci://ghcr.io/example/manifests", ref: {tag: "1.0.0"}}
"""

ROOT_DEFINED = """
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata: {name: flux-system, namespace: flux-system}
spec: {interval: 1m, url: "ssh://git@github.com/example/fleet", ref: {branch: main}, secretRef: {name: flux-system}}
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: flux-system, namespace: flux-system}
spec: {interval: 10m, path: ./clusters/prod, prune: true, sourceRef: {kind: GitRepository, name: flux-system}}
"""


def rewritten(text: str):
    objects = objects_from_documents(parse_yaml_documents(textwrap.dedent(text)), "fleet.yaml")
    return rewrite_objects(objects, INTERNAL)


def documents(files: dict[str, str]) -> list[dict]:
    return [
        doc
        for name, text in sorted(files.items())
        if name.startswith(BOOTSTRAP_DIR + "/") and not name.endswith("/kustomization.yaml")
        for doc in yaml.safe_load_all(text)
        if isinstance(doc, dict)
    ]


def by_kind(files: dict[str, str], kind: str) -> dict[tuple[str, str], dict]:
    return {(d["metadata"]["namespace"], d["metadata"]["name"]): d for d in documents(files) if d["kind"] == kind}


def test_a_fleet_without_its_own_root_gets_a_gitrepository_and_kustomization_on_the_internal_git_server():
    files = bootstrap_files([ROOT], rewritten(SOURCES), INTERNAL, EndpointAccess())
    source = by_kind(files, "GitRepository")[("flux-system", "flux-system")]
    assert source["spec"]["url"] == "https://git.internal/fleet/example/fleet.git"
    assert source["spec"]["ref"] == {"branch": "main"}
    root = by_kind(files, "Kustomization")[("flux-system", "flux-system")]
    assert root["spec"]["path"] == "./clusters/prod"
    assert root["spec"]["sourceRef"] == {"kind": "GitRepository", "name": "flux-system", "namespace": "flux-system"}


def test_a_fleet_that_defines_its_root_gets_the_same_names_so_the_fleet_takes_them_over():
    files = bootstrap_files([ROOT], rewritten(ROOT_DEFINED), INTERNAL, EndpointAccess())
    assert set(by_kind(files, "GitRepository")) == {("flux-system", "flux-system")}
    assert set(by_kind(files, "Kustomization")) == {("flux-system", "flux-system")}
    fleet_root = next(r.body for r in rewritten(ROOT_DEFINED) if r.source.kind == "GitRepository")
    bootstrap_root = by_kind(files, "GitRepository")[("flux-system", "flux-system")]
    assert bootstrap_root["spec"]["url"] == fleet_root["spec"]["url"]
    assert bootstrap_root["spec"]["secretRef"] == fleet_root["spec"]["secretRef"]


def test_sources_without_credentials_get_a_secretref_for_the_internal_endpoints():
    objects = reference_internal_secrets(rewritten(SOURCES), INTERNAL, WITH_CA)
    specs = {(o.source.kind, o.source.name): o.body["spec"] for o in objects}
    assert specs[("GitRepository", "apps")]["secretRef"] == {"name": "apps-auth"}  # kept
    assert specs[("HelmRepository", "bitnami")]["secretRef"] == {"name": "mirror-registry"}
    assert specs[("OCIRepository", "manifests")]["secretRef"] == {"name": "mirror-registry"}
    # GitRepository has no certSecretRef: its secret carries ca.crt beside the credentials.
    assert "certSecretRef" not in specs[("GitRepository", "apps")]
    assert specs[("HelmRepository", "bitnami")]["certSecretRef"] == {"name": "mirror-ca"}
    assert specs[("OCIRepository", "manifests")]["certSecretRef"] == {"name": "mirror-ca"}


def test_endpoints_the_import_reached_without_credentials_or_over_plain_http_get_no_secret_references():
    plain = InternalEndpoints("http://registry.internal:5000", git_base="http://git.internal")
    anonymous = EndpointAccess(git_auth=False, registry_auth=False, ca=True)
    sources = rewrite_objects(objects_from_documents(parse_yaml_documents(textwrap.dedent(SOURCES)), "f.yaml"), plain)
    for obj in reference_internal_secrets(sources, plain, anonymous):
        assert "certSecretRef" not in obj.body["spec"], obj.source.kind
        assert obj.source.name == "apps" or "secretRef" not in obj.body["spec"], obj.source.kind
    root = by_kind(bootstrap_files([ROOT], [], plain, anonymous), "GitRepository")[("flux-system", "flux-system")]
    assert "secretRef" not in root["spec"]


def test_every_secret_named_by_a_source_has_a_template_without_values():
    objects = reference_internal_secrets(rewritten(SOURCES), INTERNAL, WITH_CA)
    files = bootstrap_files([ROOT], objects, INTERNAL, WITH_CA)
    secrets = by_kind(files, "Secret")
    assert set(secrets) == {
        ("flux-system", "apps-auth"),
        ("flux-system", "mirror-registry"),
        ("flux-system", "mirror-ca"),
        ("flux-system", "mirror-git"),  # the root GitRepository's
        ("apps", "mirror-registry"),
        ("apps", "mirror-ca"),
    }
    assert set(secrets[("flux-system", "apps-auth")]["stringData"]) == {"username", "password", "ca.crt"}
    assert secrets[("apps", "mirror-registry")]["type"] == "kubernetes.io/dockerconfigjson"
    assert set(secrets[("apps", "mirror-ca")]["stringData"]) == {"ca.crt"}
    values = [
        value
        for secret in secrets.values()
        for key, value in secret["stringData"].items()
        if key != ".dockerconfigjson"
    ]
    assert values and all(value == "" for value in values)
    auths = yaml.safe_load(secrets[("apps", "mirror-registry")]["stringData"][".dockerconfigjson"])["auths"]
    assert auths == {"registry.internal:5000": {"username": "", "password": ""}}


def test_bootstrap_objects_are_valid_against_fluxs_schemas():
    objects = reference_internal_secrets(rewritten(SOURCES), INTERNAL, WITH_CA)
    assert invalid(documents(bootstrap_files([ROOT], objects, INTERNAL, WITH_CA))) == {}


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (Debian kubernetes-client) is not installed")
def test_kubectl_kustomize_builds_the_bootstrap_and_the_rewritten_objects(tmp_path):
    objects = reference_internal_secrets(rewritten(SOURCES), INTERNAL, WITH_CA)
    files = {**render_objects(objects), **bootstrap_files([ROOT], objects, INTERNAL, WITH_CA)}
    write_files(files, tmp_path)
    for directory in (tmp_path / BOOTSTRAP_DIR, tmp_path):
        built = subprocess.run(
            ["kubectl", "kustomize", str(directory)], capture_output=True, text=True, timeout=60, check=False
        )
        assert built.returncode == 0, built.stderr
        kinds = {d["kind"] for d in yaml.safe_load_all(built.stdout) if d}
        assert "GitRepository" in kinds


def test_two_fleets_from_one_git_source_and_path_would_collide_and_are_refused():
    with pytest.raises(UsageError):
        bootstrap_files([ROOT, ROOT], [], INTERNAL, EndpointAccess())


def test_the_rewrites_are_listed_for_the_report_each_object_with_its_old_and_new_endpoint():
    objects = reference_internal_secrets(rewritten(SOURCES), INTERNAL, WITH_CA)
    listed = {entry["object"]: entry for entry in rewrites(objects)}
    apps = listed["GitRepository flux-system/apps"]
    assert apps["file"] == "fleet.yaml"
    assert apps["url"] == {
        "from": "https://github.com/example/apps",
        "to": "https://git.internal/fleet/example/apps.git",
    }
    assert "secretRef" not in apps  # kept as it was
    bitnami = listed["HelmRepository flux-system/bitnami"]
    assert bitnami["url"]["to"] == "oci://registry.internal:5000/mirror/charts"
    assert bitnami["secretRef"] == "mirror-registry" and bitnami["certSecretRef"] == "mirror-ca"
    assert list(listed) == sorted(listed)


def test_a_real_flux_bootstrap_root_is_taken_over_with_its_names_secret_and_path():
    """billimek/k8s-gitops' gotk-sync.yaml: an ssh:// root at path ./ that `flux bootstrap` wrote."""
    sync = realdata("billimek__k8s-gitops", "_history-2024-05", "flux-system", "gotk-sync.yaml")
    objects = rewrite_objects(
        objects_from_documents(parse_yaml_documents(sync.read_text()), "gotk-sync.yaml"), INTERNAL
    )
    root = FleetRoot(git="k8s-gitops", url="https://github.com/billimek/k8s-gitops", ref={"branch": "master"}, path="")
    files = bootstrap_files([root], reference_internal_secrets(objects, INTERNAL, WITH_CA), INTERNAL, WITH_CA)
    source = by_kind(files, "GitRepository")[("flux-system", "flux-system")]
    assert source["spec"]["url"] == "https://git.internal/fleet/billimek/k8s-gitops.git"
    assert source["spec"]["secretRef"] == {"name": "flux-system"}
    assert by_kind(files, "Kustomization")[("flux-system", "flux-system")]["spec"]["path"] == "./"
    assert set(by_kind(files, "Secret")[("flux-system", "flux-system")]["stringData"]) == {
        "username",
        "password",
        "ca.crt",
    }
    assert invalid(documents(files)) == {}
