"""Flux objects rewritten for the high side (current API versions, internal endpoints), checked against Flux's own
CRD schemas. The nodes' registry mirror files: tests/unit/test_mirror_config_render.py."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

from mirror.errors import UsageError
from mirror.flux.objects import FluxObject, objects_from_documents, parse_yaml_documents
from mirror.flux.rewrite import (
    InternalEndpoints,
    RewrittenObject,
    dump_object,
    parse_registry,
    rewrite_objects,
)
from mirror.importer.flux_out import write_objects

DIGEST = "sha256:" + "9f" * 32
INTERNAL = InternalEndpoints("registry.internal:5000/mirror", git_base="https://git.internal/fleet")


def objects(text: str) -> list[FluxObject]:
    return objects_from_documents(parse_yaml_documents(textwrap.dedent(text)), "fleet.yaml")


FLEET = f"""
---
apiVersion: source.toolkit.fluxcd.io/v1beta2
kind: GitRepository
metadata:
  name: flux-system
  namespace: flux-system
  resourceVersion: "12345"
  annotations:
    kubectl.kubernetes.io/last-applied-configuration: "{{}}"
spec:
  interval: 1m0s
  gitImplementation: go-git
  ref: {{branch: main}}
  secretRef: {{name: flux-system}}
  url: ssh://git@github.com/example/fleet
status:
  artifact: {{revision: main@sha1:abc}}
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata: {{name: tenant, namespace: apps}}
spec:
  interval: 5m
  url: https://github.com/example/tenant.git
  ref: {{commit: "{"a" * 40}", branch: dev}}
  provider: github
---
apiVersion: source.toolkit.fluxcd.io/v1beta2
kind: HelmRepository
metadata: {{name: bitnami, namespace: flux-system}}
spec:
  interval: 30m
  url: https://charts.bitnami.com/bitnami
  passCredentials: true
  timeout: 60s
---
apiVersion: source.toolkit.fluxcd.io/v1beta2
kind: HelmRepository
metadata: {{name: podinfo, namespace: apps}}
spec: {{type: oci, interval: 12h, url: "oci://ghcr.io/stefanprodan/charts"}}
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: HelmRepository
metadata: {{name: bitnamicharts, namespace: apps}}
spec: {{type: oci, url: "oci://registry-1.docker.io/bitnamicharts", provider: generic}}
---
apiVersion: source.toolkit.fluxcd.io/v1beta2
kind: OCIRepository
metadata: {{name: manifests, namespace: flux-system}}
spec:
  interval: 10m
  url: oci://123456789012.dkr.ecr.eu-west-1.amazonaws.com/platform/manifests
  provider: aws
  ref: {{digest: "{DIGEST}"}}
  layerSelector: {{mediaType: application/vnd.cncf.flux.content.v1.tar+gzip, operation: extract}}
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: OCIRepository
metadata: {{name: redis, namespace: flux-system}}
spec:
  interval: 1h
  url: oci://docker.io/redis
  ref: {{semver: ">=7.0.0"}}
---
apiVersion: source.toolkit.fluxcd.io/v1beta2
kind: HelmChart
metadata: {{name: redis, namespace: flux-system}}
spec:
  chart: redis
  version: 16.x
  interval: 10m
  valuesFile: values-prod.yaml
  valuesFiles: [values.yaml]
  sourceRef: {{kind: HelmRepository, name: bitnami}}
  accessFrom: {{namespaceSelectors: [{{matchLabels: {{team: a}}}}]}}
---
apiVersion: helm.toolkit.fluxcd.io/v2beta1
kind: HelmRelease
metadata: {{name: redis, namespace: redis}}
spec:
  interval: 5m
  chart:
    spec:
      chart: redis
      version: 16.x
      valuesFile: values-prod.yaml
      sourceRef: {{kind: HelmRepository, name: bitnami, namespace: flux-system}}
  values:
    script: |
      #!/bin/sh
      echo ${{HOME}}
    enabled: "yes"
  postRenderers:
    - kustomize:
        patchesStrategicMerge:
          - apiVersion: apps/v1
            kind: StatefulSet
            metadata: {{name: redis-master}}
            spec: {{replicas: 2}}
        patchesJson6902:
          - target: {{kind: Service, name: redis}}
            patch:
              - {{op: add, path: /metadata/labels/x, value: y}}
---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: {{name: podinfo, namespace: apps}}
spec:
  interval: 50m
  chartRef: {{kind: OCIRepository, name: podinfo}}
---
apiVersion: kustomize.toolkit.fluxcd.io/v1beta2
kind: Kustomization
metadata: {{name: apps, namespace: flux-system}}
spec:
  interval: 10m0s
  path: ./apps/staging
  prune: true
  validation: client
  sourceRef: {{kind: GitRepository, name: flux-system}}
  postBuild:
    substitute: {{CLUSTER_NAME: staging}}
  patchesStrategicMerge:
    - apiVersion: apps/v1
      kind: Deployment
      metadata: {{name: app}}
      spec: {{replicas: 1}}
  patchesJson6902:
    - target: {{group: apps, version: v1, kind: Deployment, name: app}}
      patch:
        - {{op: add, path: /spec/paused, value: true}}
  patches:
    - patch: |
        - op: add
          path: /spec/minReadySeconds
          value: 5
      target: {{kind: Deployment}}
---
apiVersion: source.extensions.fluxcd.io/v1beta1
kind: ArtifactGenerator
metadata: {{name: flux-system, namespace: flux-system}}
spec: {{sources: [{{alias: monorepo, kind: GitRepository, name: flux-system}}]}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: app, namespace: apps}}
spec: {{template: {{spec: {{containers: [{{name: app, image: nginx}}]}}}}}}
"""


class TestRewrite:
    def rewrite(
        self, text: str = FLEET, urls: InternalEndpoints = INTERNAL
    ) -> tuple[dict[str, RewrittenObject], list[str]]:
        warnings: list[str] = []
        rewritten = rewrite_objects(objects(text), urls, warnings=warnings)
        return {item.path: item for item in rewritten}, warnings

    def test_every_flux_object_is_written_and_nothing_else(self) -> None:
        rewritten, _ = self.rewrite()
        assert sorted(rewritten) == [
            "apps/gitrepository/tenant.yaml",
            "apps/helmrelease/podinfo.yaml",
            "apps/helmrepository/bitnamicharts.yaml",
            "apps/helmrepository/podinfo.yaml",
            "flux-system/artifactgenerator/flux-system.yaml",
            "flux-system/gitrepository/flux-system.yaml",
            "flux-system/helmchart/redis.yaml",
            "flux-system/helmrepository/bitnami.yaml",
            "flux-system/kustomization/apps.yaml",
            "flux-system/ocirepository/manifests.yaml",
            "flux-system/ocirepository/redis.yaml",
            "redis/helmrelease/redis.yaml",
        ]

    def test_git_repositories_point_at_the_internal_git(self) -> None:
        rewritten, warnings = self.rewrite()
        fleet = rewritten["flux-system/gitrepository/flux-system.yaml"].body
        assert fleet == {
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": "GitRepository",
            "metadata": {"name": "flux-system", "namespace": "flux-system"},
            "spec": {
                "interval": "1m0s",
                "ref": {"branch": "main"},
                "secretRef": {"name": "flux-system"},
                "url": "https://git.internal/fleet/example/fleet.git",
            },
        }
        tenant = rewritten["apps/gitrepository/tenant.yaml"].body["spec"]
        assert tenant == {
            "interval": "5m",
            "url": "https://git.internal/fleet/example/tenant.git",
            "ref": {"commit": "a" * 40, "branch": "dev"},
        }
        assert "fleet.yaml: GitRepository flux-system/flux-system: spec.gitImplementation is gone in " in warnings[0]
        assert any("spec.secretRef held SSH credentials" in w for w in warnings)
        assert any("GitRepository apps/tenant: spec.provider 'github' cannot authenticate" in w for w in warnings)

    def test_helm_repositories_become_oci(self) -> None:
        rewritten, _ = self.rewrite()
        bitnami = rewritten["flux-system/helmrepository/bitnami.yaml"].body
        assert bitnami["spec"] == {
            "interval": "30m",
            "url": "oci://registry.internal:5000/mirror/charts",
            "timeout": "60s",
            "type": "oci",
        }
        assert rewritten["apps/helmrepository/podinfo.yaml"].body["spec"] == {
            "type": "oci",
            "interval": "12h",
            "url": "oci://registry.internal:5000/mirror/stefanprodan/charts",
        }
        # Docker Hub's API host is docker.io, as the importer names it.
        assert rewritten["apps/helmrepository/bitnamicharts.yaml"].body["spec"]["url"] == (
            "oci://registry.internal:5000/mirror/bitnamicharts"
        )

    def test_oci_repositories_keep_their_path_and_ref(self) -> None:
        rewritten, warnings = self.rewrite()
        manifests = rewritten["flux-system/ocirepository/manifests.yaml"].body
        assert manifests["apiVersion"] == "source.toolkit.fluxcd.io/v1"
        assert manifests["spec"]["url"] == "oci://registry.internal:5000/mirror/platform/manifests"
        assert manifests["spec"]["ref"] == {"digest": DIGEST}
        assert "provider" not in manifests["spec"]
        assert any("OCIRepository flux-system/manifests: spec.provider 'aws'" in w for w in warnings)
        redis = rewritten["flux-system/ocirepository/redis.yaml"].body["spec"]
        assert redis["url"] == "oci://registry.internal:5000/mirror/library/redis"
        assert redis["ref"] == {"semver": ">=7.0.0"}

    def test_plain_http_registries_and_no_prefix(self) -> None:
        rewritten, _ = self.rewrite(urls=InternalEndpoints("http://10.0.0.5:5000", git_base="http://10.0.0.5:3000"))
        assert (
            rewritten["flux-system/ocirepository/redis.yaml"].body["spec"]["url"] == "oci://10.0.0.5:5000/library/redis"
        )
        assert rewritten["flux-system/ocirepository/redis.yaml"].body["spec"]["insecure"] is True
        assert rewritten["flux-system/helmrepository/bitnami.yaml"].body["spec"]["url"] == "oci://10.0.0.5:5000/charts"
        assert rewritten["flux-system/helmrepository/bitnami.yaml"].body["spec"]["insecure"] is True
        assert (
            rewritten["apps/gitrepository/tenant.yaml"].body["spec"]["url"] == "http://10.0.0.5:3000/example/tenant.git"
        )
        assert "insecure" not in rewritten["apps/gitrepository/tenant.yaml"].body["spec"]

    def test_an_upstream_insecure_flag_is_dropped_for_a_tls_registry(self) -> None:
        fleet = """
        apiVersion: source.toolkit.fluxcd.io/v1
        kind: OCIRepository
        metadata: {name: plain, namespace: flux-system}
        spec: {url: "oci://10.1.1.1:5000/manifests", insecure: true, ref: {tag: "1.0"}}
        ---
        apiVersion: source.toolkit.fluxcd.io/v1
        kind: HelmRepository
        metadata: {name: plain, namespace: flux-system}
        spec: {type: oci, url: "oci://10.1.1.1:5000/charts", insecure: true}
        """
        rewritten, _ = self.rewrite(fleet)
        assert "insecure" not in rewritten["flux-system/ocirepository/plain.yaml"].body["spec"]
        assert "insecure" not in rewritten["flux-system/helmrepository/plain.yaml"].body["spec"]

    def test_old_fields_are_converted(self) -> None:
        rewritten, _ = self.rewrite()
        chart = rewritten["flux-system/helmchart/redis.yaml"].body
        assert chart["spec"]["valuesFiles"] == ["values-prod.yaml", "values.yaml"]
        assert "valuesFile" not in chart["spec"] and "accessFrom" not in chart["spec"]
        release = rewritten["redis/helmrelease/redis.yaml"].body
        assert release["apiVersion"] == "helm.toolkit.fluxcd.io/v2"
        assert release["spec"]["chart"]["spec"]["valuesFiles"] == ["values-prod.yaml"]
        assert release["spec"]["chart"]["spec"]["version"] == "16.x"
        patches = release["spec"]["postRenderers"][0]["kustomize"]["patches"]
        assert yaml.safe_load(patches[0]["patch"]) == {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": {"name": "redis-master"},
            "spec": {"replicas": 2},
        }
        assert patches[1]["target"] == {"kind": "Service", "name": "redis"}
        assert yaml.safe_load(patches[1]["patch"]) == [{"op": "add", "path": "/metadata/labels/x", "value": "y"}]
        kustomization = rewritten["flux-system/kustomization/apps.yaml"].body
        assert kustomization["apiVersion"] == "kustomize.toolkit.fluxcd.io/v1"
        spec = kustomization["spec"]
        assert "validation" not in spec and "patchesStrategicMerge" not in spec
        assert [p.get("target") for p in spec["patches"]] == [
            None,
            {"group": "apps", "version": "v1", "kind": "Deployment", "name": "app"},
            {"kind": "Deployment"},
        ]
        assert spec["path"] == "./apps/staging" and spec["postBuild"] == {"substitute": {"CLUSTER_NAME": "staging"}}

    def test_names_are_checked_and_cannot_collide(self) -> None:
        with pytest.raises(UsageError, match="would both be written"):
            rewrite_objects(objects(FLEET + FLEET.split("---\napiVersion: source.toolkit.fluxcd.io/v1\n")[0]), INTERNAL)
        evil = """
            apiVersion: source.toolkit.fluxcd.io/v1
            kind: HelmRepository
            metadata: {name: ../../etc/passwd, namespace: x}
            spec: {url: https://x}
        """
        with pytest.raises(UsageError, match="is not a Kubernetes name"):
            rewrite_objects(objects(evil), INTERNAL)
        no_git = InternalEndpoints("registry.internal")
        with pytest.raises(UsageError, match="no internal Git URL"):
            rewrite_objects(objects(FLEET), no_git)


class TestWriting:
    def test_write_objects(self, tmp_path: Path) -> None:
        rewritten = rewrite_objects(objects(FLEET), INTERNAL)
        out = tmp_path / "flux-out"
        written = write_objects(rewritten, out)
        assert len(written) == len(rewritten) + 1
        text = (out / "redis/helmrelease/redis.yaml").read_text(encoding="utf-8")
        assert "script: |\n      #!/bin/sh\n      echo ${HOME}\n" in text  # block style, untouched
        assert "enabled: 'yes'" in text  # still a string for Go's YAML
        assert "&" not in text and "*id" not in text
        reread = yaml.safe_load(text)
        assert reread == rewritten[[r.path for r in rewritten].index("redis/helmrelease/redis.yaml")].body
        index = yaml.safe_load((out / "kustomization.yaml").read_text(encoding="utf-8"))
        assert index["resources"] == sorted(r.path for r in rewritten)
        for path in index["resources"]:
            assert (out / path).is_file()
        with pytest.raises(UsageError, match="is not empty"):
            write_objects(rewritten, out)
        write_objects(rewritten, out, overwrite=True)

    def test_dump_object_keeps_key_order(self) -> None:
        assert dump_object({"apiVersion": "v1", "kind": "X", "metadata": {"name": "a"}}) == (
            "apiVersion: v1\nkind: X\nmetadata:\n  name: a\n"
        )


class TestParseRegistry:
    def test_credentials_and_invalid_prefixes_are_refused(self) -> None:
        with pytest.raises(UsageError):
            parse_registry("https://user:pw@registry.internal")
        with pytest.raises(UsageError):
            parse_registry("registry.internal/Upper")
        with pytest.raises(UsageError):
            parse_registry("registry.internal:99999")
