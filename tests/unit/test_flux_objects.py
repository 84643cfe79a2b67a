"""Reading Flux trees: YAML as real fleets write it, and the kustomize features that decide what a path yields."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from mirror.errors import UsageError
from mirror.flux.kustomize import apply_images, json_patch, normalise_path, read_tree, selects, strategic_merge
from mirror.flux.objects import (
    FluxObject,
    object_from_document,
    parse_yaml_documents,
    read_yaml_files,
    split_image,
    workload_images,
)
from mirror.limits import Limits
from mirror.yamlio import YamlBudgetError

GOOD_REPOSITORY = """
    apiVersion: source.toolkit.fluxcd.io/v1
    kind: HelmRepository
    metadata: {name: good, namespace: default}
    spec: {url: https://charts.example}
    """
# Ten levels of ten aliases: 10**10 nodes once expanded.
CONFIGMAP_BOMB = (
    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bomb, namespace: default}\ndata:\n"
    "  l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n"
    + "".join(f"  l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]\n" for i in range(1, 11))
)


def write_tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return root


def by_kind(objects: list[FluxObject]) -> dict[str, list[FluxObject]]:
    result: dict[str, list[FluxObject]] = {}
    for obj in objects:
        result.setdefault(obj.kind, []).append(obj)
    return result


GIT_V1BETA2 = """
    ---
    apiVersion: source.toolkit.fluxcd.io/v1beta2
    kind: GitRepository
    metadata:
      name: flux-system
      namespace: flux-system
    spec:
      interval: 1m0s
      ref:
        branch: main
      url: ssh://git@github.com/example/fleet
    ---
    ---
    # a comment-only document
    ---
    apiVersion: kustomize.toolkit.fluxcd.io/v1beta2
    kind: Kustomization
    metadata:
      name: flux-system
      namespace: flux-system
    spec:
      interval: 10m0s
      path: ./clusters/staging
      prune: true
      sourceRef:
        kind: GitRepository
        name: flux-system
    """


class TestReadYamlFiles:
    def test_multi_document_files_old_api_versions_and_skipped_kinds(self, tmp_path: Path) -> None:
        write_tree(
            tmp_path,
            {
                "gotk-sync.yaml": GIT_V1BETA2,
                "release.yaml": """
                    apiVersion: helm.toolkit.fluxcd.io/v2beta1
                    kind: HelmRelease
                    metadata: {name: redis, namespace: redis}
                    spec:
                      chart:
                        spec: {chart: redis, version: 16.x, sourceRef: {kind: HelmRepository, name: bitnami}}
                    ---
                    apiVersion: v1
                    kind: Namespace
                    metadata: {name: redis}
                    ---
                    apiVersion: v1
                    kind: Service
                    metadata: {name: redis}
                    """,
                "placeholder.yaml": "# This file will be generated automatically by flux bootstrap.\n",
                "values.yaml": "image:\n  repository: redis\n  tag: 7.0.6\n",
                "notes.txt": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: not-yaml-suffix}\n",
            },
        )
        warnings: list[str] = []
        objects = read_yaml_files(tmp_path, warnings=warnings)
        assert [(o.api_version, o.kind, o.namespace, o.name) for o in objects] == [
            ("source.toolkit.fluxcd.io/v1beta2", "GitRepository", "flux-system", "flux-system"),
            ("kustomize.toolkit.fluxcd.io/v1beta2", "Kustomization", "flux-system", "flux-system"),
            ("helm.toolkit.fluxcd.io/v2beta1", "HelmRelease", "redis", "redis"),
        ]
        assert warnings == []
        release = objects[2]
        assert release.file == "release.yaml"
        assert release.index == 0
        assert release.where == "release.yaml: HelmRelease redis/redis"
        assert release.spec["chart"]["spec"]["version"] == "16.x"

    def test_new_and_unknown_flux_kinds_are_kept_other_groups_dropped(self, tmp_path: Path) -> None:
        write_tree(
            tmp_path,
            {
                "artifacts.yaml": """
                    apiVersion: source.extensions.fluxcd.io/v1beta1
                    kind: ArtifactGenerator
                    metadata: {name: flux-system, namespace: flux-system}
                    spec: {sources: [{alias: monorepo, kind: GitRepository, name: flux-system}]}
                    ---
                    apiVersion: example.com/v1
                    kind: Widget
                    metadata: {name: w}
                    ---
                    apiVersion: fluxcd.controlplane.io/v1
                    kind: ResourceSet
                    metadata: {name: apps, namespace: flux-system}
                    spec:
                      resources:
                        - apiVersion: v1
                          kind: ConfigMap
                          metadata: {name: << inputs.name >>}
                    """,
            },
        )
        objects = read_yaml_files(tmp_path)
        assert [o.kind for o in objects] == ["ArtifactGenerator", "ResourceSet"]
        assert all(o.is_flux for o in objects)

    def test_anchors_and_merge_keys(self, tmp_path: Path) -> None:
        write_tree(
            tmp_path,
            {
                "app.yaml": """
                    apiVersion: helm.toolkit.fluxcd.io/v2
                    kind: HelmRelease
                    metadata: {name: app, namespace: default}
                    spec:
                      chartRef: {kind: OCIRepository, name: app-template, namespace: flux-system}
                      values:
                        defaults: &probes
                          liveness: {enabled: true}
                          readiness: {enabled: true}
                        controllers:
                          app:
                            containers:
                              app:
                                probes:
                                  <<: *probes
                                  readiness: {enabled: false}
                    """,
            },
        )
        warnings: list[str] = []
        [release] = read_yaml_files(tmp_path, warnings=warnings)
        probes = release.spec["values"]["controllers"]["app"]["containers"]["app"]["probes"]
        assert probes == {"liveness": {"enabled": True}, "readiness": {"enabled": False}}
        assert warnings == []

    def test_files_pyyaml_cannot_parse_are_skipped_with_a_warning_naming_them(self, tmp_path: Path) -> None:
        write_tree(
            tmp_path,
            {
                "apps/undefined.yaml": """
                    apiVersion: helm.toolkit.fluxcd.io/v2
                    kind: HelmRelease
                    metadata: {name: undefined, namespace: default}
                    spec:
                      values:
                        a: *port
                    """,
                "apps/template.yaml": """
                    apiVersion: v1
                    kind: ConfigMap
                    metadata:
                      name: {{ .Release.Name }}
                    {{- if .Values.enabled }}
                    data: {}
                    {{- end }}
                    """,
                "apps/twice.yaml": """
                    apiVersion: source.toolkit.fluxcd.io/v1
                    kind: HelmRepository
                    metadata: {name: twice, namespace: default}
                    spec:
                      url: https://a.example
                      url: https://b.example
                    """,
                "apps/good.yaml": """
                    apiVersion: source.toolkit.fluxcd.io/v1
                    kind: HelmRepository
                    metadata: {name: good, namespace: default}
                    spec: {url: https://charts.example}
                    """,
            },
        )
        warnings: list[str] = []
        objects = read_yaml_files(tmp_path, warnings=warnings)
        assert [o.name for o in objects] == ["good"]
        assert len(warnings) == 3
        assert any(w.startswith("apps/undefined.yaml: skipped") and "undefined alias" in w for w in warnings)
        assert any(w.startswith("apps/template.yaml: skipped") for w in warnings)
        assert any(w.startswith("apps/twice.yaml: skipped") and "duplicate key" in w for w in warnings)

    def test_a_fleet_file_with_an_alias_bomb_is_refused_naming_it(self, tmp_path: Path) -> None:
        write_tree(tmp_path, {"apps/bomb.yaml": CONFIGMAP_BOMB, "apps/good.yaml": GOOD_REPOSITORY})
        with pytest.raises(YamlBudgetError, match=r"apps/bomb\.yaml"):
            read_tree(tmp_path, ".", warnings=[])

    def test_a_patch_file_with_an_alias_bomb_is_refused_naming_it(self, tmp_path: Path) -> None:
        write_tree(
            tmp_path,
            {
                "kustomization.yaml": "resources: [good.yaml]\npatches: [{path: bomb-patch.yaml}]\n",
                "good.yaml": GOOD_REPOSITORY,
                "bomb-patch.yaml": CONFIGMAP_BOMB,
            },
        )
        with pytest.raises(YamlBudgetError, match=r"bomb-patch\.yaml"):
            read_tree(tmp_path, ".", warnings=[])

    def test_an_inline_patch_with_an_alias_bomb_is_refused(self, tmp_path: Path) -> None:
        patch = textwrap.indent(textwrap.dedent(CONFIGMAP_BOMB), "      ")
        write_tree(
            tmp_path,
            {
                "kustomization.yaml": "resources: [good.yaml]\npatches:\n  - patch: |\n" + patch,
                "good.yaml": GOOD_REPOSITORY,
            },
        )
        with pytest.raises(YamlBudgetError, match=r"kustomization\.yaml"):
            read_tree(tmp_path, ".", warnings=[])

    def test_an_alias_that_contains_itself_is_refused_as_kustomize_does(self, tmp_path: Path) -> None:
        write_tree(tmp_path, {"loop.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: &m {name: a, x: *m}\n"})
        with pytest.raises(YamlBudgetError, match=r"loop\.yaml"):
            read_tree(tmp_path, ".", warnings=[])

    def test_kustomizations_nested_past_the_limit_are_not_read(self, tmp_path: Path) -> None:
        write_tree(
            tmp_path,
            {
                "kustomization.yaml": "resources: [a]\n",
                "a/kustomization.yaml": "resources: [b, repo.yaml]\n",
                "a/repo.yaml": GOOD_REPOSITORY,
                "a/b/kustomization.yaml": "resources: [repo.yaml]\n",
                "a/b/repo.yaml": GOOD_REPOSITORY.replace("good", "deep"),
            },
        )
        warnings: list[str] = []
        objects = read_tree(tmp_path, ".", warnings=warnings, limits=Limits(max_kustomize_depth=2))
        assert [o.name for o in objects] == ["good"]
        assert any("nested too deeply" in w for w in warnings)
        assert {o.name for o in read_tree(tmp_path, ".", warnings=[])} == {"good", "deep"}

    def test_yaml_1_2_scalars_as_kustomize_reads_them(self) -> None:
        [doc] = parse_yaml_documents("a: yes\nb: on\nc: true\nd: False\ne: 2024-05-01\nf: '1.10'\ng: 1.10\n")
        assert doc == {"a": "yes", "b": "on", "c": True, "d": False, "e": "2024-05-01", "f": "1.10", "g": 1.1}

    def test_hidden_directories_and_list_kinds(self, tmp_path: Path) -> None:
        write_tree(
            tmp_path,
            {
                ".github/workflows/ci.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: hidden}\n",
                "list.yaml": """
                    apiVersion: v1
                    kind: List
                    items:
                      - apiVersion: apps/v1
                        kind: Deployment
                        metadata: {name: web, namespace: default}
                        spec: {template: {spec: {containers: [{name: web, image: nginx:1.27}]}}}
                    """,
            },
        )
        objects = read_yaml_files(tmp_path)
        assert [(o.kind, o.name) for o in objects] == [("Deployment", "web")]

    def test_a_single_file(self, tmp_path: Path) -> None:
        write_tree(tmp_path, {"gotk-sync.yaml": GIT_V1BETA2})
        objects = read_yaml_files(tmp_path / "gotk-sync.yaml")
        assert [o.file for o in objects] == ["gotk-sync.yaml", "gotk-sync.yaml"]


class TestReadTree:
    def test_a_kustomization_yaml_decides_what_the_path_yields(self, tmp_path: Path) -> None:
        write_tree(
            tmp_path,
            {
                "apps/base/podinfo/kustomization.yaml": """
                    apiVersion: kustomize.config.k8s.io/v1beta1
                    kind: Kustomization
                    namespace: podinfo
                    resources: [namespace.yaml, repository.yaml, release.yaml]
                    """,
                "apps/base/podinfo/namespace.yaml": "apiVersion: v1\nkind: Namespace\nmetadata: {name: podinfo}\n",
                "apps/base/podinfo/repository.yaml": """
                    apiVersion: source.toolkit.fluxcd.io/v1
                    kind: HelmRepository
                    metadata: {name: podinfo}
                    spec: {interval: 5m, url: https://stefanprodan.github.io/podinfo}
                    """,
                "apps/base/podinfo/release.yaml": """
                    apiVersion: helm.toolkit.fluxcd.io/v2
                    kind: HelmRelease
                    metadata: {name: podinfo}
                    spec:
                      interval: 50m
                      chart:
                        spec:
                          chart: podinfo
                          sourceRef: {kind: HelmRepository, name: podinfo}
                    """,
                "apps/base/podinfo/unlisted.yaml": """
                    apiVersion: source.toolkit.fluxcd.io/v1
                    kind: HelmRepository
                    metadata: {name: not-a-resource}
                    spec: {url: https://example.com}
                    """,
                "apps/staging/kustomization.yaml": """
                    apiVersion: kustomize.config.k8s.io/v1beta1
                    kind: Kustomization
                    resources: [../base/podinfo]
                    patches:
                      - path: podinfo-values.yaml
                        target: {kind: HelmRelease}
                    """,
                "apps/staging/podinfo-values.yaml": """
                    apiVersion: helm.toolkit.fluxcd.io/v2
                    kind: HelmRelease
                    metadata: {name: podinfo}
                    spec:
                      chart:
                        spec:
                          version: ">=1.0.0-alpha"
                    """,
            },
        )
        warnings: list[str] = []
        objects = read_tree(tmp_path, "./apps/staging", warnings=warnings)
        assert warnings == []
        assert [(o.kind, o.namespace, o.name) for o in objects] == [
            ("HelmRepository", "podinfo", "podinfo"),
            ("HelmRelease", "podinfo", "podinfo"),
        ]
        release = objects[1]
        assert release.file == "apps/base/podinfo/release.yaml"
        assert release.spec["chart"]["spec"] == {
            "chart": "podinfo",
            "sourceRef": {"kind": "HelmRepository", "name": "podinfo"},
            "version": ">=1.0.0-alpha",
        }

    def test_patch_kinds(self, tmp_path: Path) -> None:
        write_tree(
            tmp_path,
            {
                "kustomization.yaml": """
                    apiVersion: kustomize.config.k8s.io/v1beta1
                    kind: Kustomization
                    namespace: apps
                    resources: [sync.yaml, deploy.yaml]
                    patchesStrategicMerge:
                      - sm-patch.yaml
                    patches:
                      - patch: |-
                          apiVersion: helm.toolkit.fluxcd.io/v2
                          kind: HelmRelease
                          metadata:
                            name: _
                          spec:
                            timeout: 10m
                        target:
                          group: helm.toolkit.fluxcd.io
                          kind: HelmRelease
                      - patch: |
                          - op: replace
                            path: /spec/ref/branch
                            value: release
                        target: {kind: GitRepository, name: "dev-.*"}
                      - path: dev-team-patch.yaml
                    patchesJson6902:
                      - target: {group: apps, version: v1, kind: Deployment, name: web}
                        patch:
                          - {op: add, path: /spec/template/spec/containers/-, value: {name: sidecar, image: busybox}}
                    images:
                      - name: nginx
                        newName: registry.example.com/nginx
                        newTag: "1.27"
                    """,
                "sync.yaml": """
                    apiVersion: source.toolkit.fluxcd.io/v1
                    kind: GitRepository
                    metadata: {name: dev-team}
                    spec: {url: https://github.com/example/dev-team, ref: {branch: main}}
                    ---
                    apiVersion: kustomize.toolkit.fluxcd.io/v1
                    kind: Kustomization
                    metadata: {name: dev-team, namespace: apps}
                    spec: {sourceRef: {kind: GitRepository, name: dev-team}, prune: true}
                    ---
                    apiVersion: helm.toolkit.fluxcd.io/v2
                    kind: HelmRelease
                    metadata: {name: web}
                    spec: {chart: {spec: {chart: web, sourceRef: {kind: HelmRepository, name: charts}}}}
                    """,
                "deploy.yaml": """
                    apiVersion: apps/v1
                    kind: Deployment
                    metadata: {name: web}
                    spec:
                      template:
                        spec:
                          containers:
                            - {name: web, image: nginx}
                    """,
                "sm-patch.yaml": """
                    apiVersion: apps/v1
                    kind: Deployment
                    metadata: {name: web}
                    spec:
                      template:
                        spec:
                          containers:
                            - {name: web, resources: {limits: {memory: 128Mi}}}
                    """,
                "dev-team-patch.yaml": """
                    apiVersion: kustomize.toolkit.fluxcd.io/v1
                    kind: Kustomization
                    metadata: {name: dev-team, namespace: apps}
                    spec: {path: ./staging}
                    """,
            },
        )
        warnings: list[str] = []
        objects = by_kind(read_tree(tmp_path, ".", warnings=warnings))
        assert warnings == []
        git = objects["GitRepository"][0]
        assert git.namespace == "apps"
        assert git.spec["ref"] == {"branch": "release"}
        assert objects["Kustomization"][0].spec["path"] == "./staging"
        assert objects["HelmRelease"][0].spec["timeout"] == "10m"
        assert objects["HelmRelease"][0].name == "web"  # the placeholder name `_` does not rename it
        deployment = objects["Deployment"][0]
        containers = deployment.body["spec"]["template"]["spec"]["containers"]
        assert containers == [
            {"name": "web", "image": "registry.example.com/nginx:1.27", "resources": {"limits": {"memory": "128Mi"}}},
            {"name": "sidecar", "image": "busybox"},
        ]

    def test_without_a_kustomization_every_manifest_and_nested_kustomizations(self, tmp_path: Path) -> None:
        write_tree(
            tmp_path,
            {
                "kubernetes/monitoring/gatus/gatus.yaml": """
                    apiVersion: helm.toolkit.fluxcd.io/v2
                    kind: HelmRelease
                    metadata: {name: gatus, namespace: monitoring}
                    spec: {chartRef: {kind: OCIRepository, name: app-template, namespace: flux-system}}
                    """,
                "kubernetes/flux-system/repos/app-template.yml": """
                    apiVersion: source.toolkit.fluxcd.io/v1
                    kind: OCIRepository
                    metadata: {name: app-template, namespace: flux-system}
                    spec: {url: oci://ghcr.io/bjw-s-labs/helm/app-template, ref: {tag: 5.1.0}}
                    """,
                "kubernetes/crds/kustomization.yaml": """
                    apiVersion: kustomize.config.k8s.io/v1beta1
                    kind: Kustomization
                    resources:
                      - https://github.com/example/crds/releases/download/v1/crds.yaml
                      - local.yaml
                    """,
                "kubernetes/crds/local.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: listed}\n",
                "kubernetes/crds/unlisted.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: unlisted}\n",
            },
        )
        warnings: list[str] = []
        objects = read_tree(tmp_path, "kubernetes", warnings=warnings)
        assert [o.name for o in objects] == ["listed", "app-template", "gatus"]
        assert [o.file for o in objects] == [
            "kubernetes/crds/local.yaml",
            "kubernetes/flux-system/repos/app-template.yml",
            "kubernetes/monitoring/gatus/gatus.yaml",
        ]
        assert len(warnings) == 1
        assert "remote resource https://github.com/example/crds/releases/download/v1/crds.yaml" in warnings[0]

    def test_the_source_root_confines_every_read(self, tmp_path: Path) -> None:
        root = tmp_path / "repo"
        write_tree(
            tmp_path,
            {
                "outside.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: outside}\n",
                "repo/app/kustomization.yaml": "resources: [../../outside.yaml, ok.yaml]\n",
                "repo/app/ok.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ok}\n",
            },
        )
        warnings: list[str] = []
        assert [o.name for o in read_tree(root, "app", warnings=warnings)] == ["ok"]
        assert warnings == [
            "app/kustomization.yaml: resources: ../../outside.yaml is outside the source root; not read"
        ]
        # `..` in a Flux path cannot climb above the root either: it is read from the root.
        assert normalise_path("../../app") == "app"
        with pytest.raises(UsageError, match="does not exist"):
            read_tree(root, "./missing")

    def test_config_map_generator_without_hash_suffix(self, tmp_path: Path) -> None:
        write_tree(
            tmp_path,
            {
                "redis/kustomization.yaml": """
                    apiVersion: kustomize.config.k8s.io/v1beta1
                    kind: Kustomization
                    namespace: redis
                    resources: [release.yaml]
                    configMapGenerator:
                      - name: redis-values
                        files: [values.yaml=values.yaml, extra.yaml]
                        literals: [MODE=standalone]
                      - name: broken
                        files: [../../../etc/passwd]
                    configurations: [kustomizeconfig.yaml]
                    """,
                "redis/release.yaml": """
                    apiVersion: helm.toolkit.fluxcd.io/v2beta1
                    kind: HelmRelease
                    metadata: {name: redis}
                    spec:
                      valuesFrom: [{kind: ConfigMap, name: redis-values}]
                    """,
                "redis/values.yaml": "image:\n  repository: bitnami/redis\n  tag: 6.2.7\n",
                "redis/extra.yaml": "x: 1\n",
            },
        )
        warnings: list[str] = []
        objects = read_tree(tmp_path, "redis", warnings=warnings)
        config = next(o for o in objects if o.kind == "ConfigMap" and o.name == "redis-values")
        assert config.namespace == "redis"
        assert config.body["data"] == {
            "MODE": "standalone",
            "values.yaml": "image:\n  repository: bitnami/redis\n  tag: 6.2.7\n",
            "extra.yaml": "x: 1\n",
        }
        assert warnings == [
            "redis/kustomization.yaml: configMapGenerator[1]: ../../../etc/passwd is not a file inside the source "
            "root; ignored"
        ]

    def test_kustomization_cycles_end(self, tmp_path: Path) -> None:
        write_tree(
            tmp_path,
            {
                "a/kustomization.yaml": "resources: [../b, a.yaml]\n",
                "a/a.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n",
                "b/kustomization.yaml": "resources: [../a]\n",
            },
        )
        warnings: list[str] = []
        assert [o.name for o in read_tree(tmp_path, "a", warnings=warnings)] == ["a"]
        assert warnings == ["a: kustomization cycle; not read again"]


class TestTransformations:
    def test_normalise_path(self) -> None:
        assert normalise_path("./clusters/production/") == "clusters/production"
        assert normalise_path("/clusters//production") == "clusters/production"
        assert normalise_path("") == "."
        assert normalise_path("./") == "."
        assert normalise_path("a/../b") == "b"

    def test_json_patch(self) -> None:
        doc = {"spec": {"args": ["--a"], "x": {"y": 1}}}
        out = json_patch(
            doc,
            [
                {"op": "add", "path": "/spec/args/-", "value": "--b"},
                {"op": "add", "path": "/spec/args/0", "value": "--first"},
                {"op": "replace", "path": "/spec/x/y", "value": 2},
                {"op": "copy", "from": "/spec/x", "path": "/spec/z"},
                {"op": "move", "from": "/spec/z/y", "path": "/spec/w"},
                {"op": "remove", "path": "/spec/x"},
                {"op": "test", "path": "/spec/w", "value": 2},
                {"op": "add", "path": "/metadata~1labels", "value": {"a~b": "c"}},
            ],
        )
        assert out == {
            "spec": {"args": ["--first", "--a", "--b"], "z": {}, "w": 2},
            "metadata/labels": {"a~b": "c"},
        }
        with pytest.raises(ValueError, match="does not exist"):
            json_patch({"spec": {}}, [{"op": "replace", "path": "/spec/missing", "value": 1}])

    def test_strategic_merge(self) -> None:
        base = {"spec": {"a": 1, "b": {"c": 2}, "list": [1, 2], "containers": [{"name": "x", "image": "a"}]}}
        patch = {"spec": {"a": None, "b": {"d": 3}, "list": [3], "containers": [{"name": "y", "image": "b"}]}}
        assert strategic_merge(base, patch, merge_lists_by_name=True) == {
            "spec": {
                "b": {"c": 2, "d": 3},
                "list": [3],
                "containers": [{"name": "x", "image": "a"}, {"name": "y", "image": "b"}],
            }
        }
        # Custom resources have no merge keys: lists are replaced.
        assert strategic_merge(base, patch, merge_lists_by_name=False)["spec"]["containers"] == [
            {"name": "y", "image": "b"}
        ]
        assert strategic_merge({"a": {"b": 1}}, {"a": {"$patch": "replace", "c": 2}}, merge_lists_by_name=False) == {
            "a": {"c": 2}
        }

    def test_selects(self) -> None:
        obj = object_from_document(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "helm-controller", "namespace": "flux-system", "labels": {"app": "helm"}},
            },
            "f.yaml",
        )
        assert obj is not None
        assert selects(obj, {"kind": "Deployment", "name": "(kustomize-controller|helm-controller)"})
        assert not selects(obj, {"kind": "Deployment", "name": "helm"})  # anchored
        assert selects(obj, {"group": "apps", "version": "v1", "namespace": "flux-.*"})
        assert selects(obj, {"labelSelector": "app=helm"})
        assert not selects(obj, {"labelSelector": "app!=helm"})
        assert not selects(obj, {"group": "batch"})

    def test_images_transformer_and_workload_images(self) -> None:
        cron = object_from_document(
            {
                "apiVersion": "batch/v1",
                "kind": "CronJob",
                "metadata": {"name": "backup", "namespace": "default"},
                "spec": {
                    "jobTemplate": {
                        "spec": {
                            "template": {
                                "spec": {
                                    "initContainers": [{"name": "init", "image": "busybox:1.36"}],
                                    "containers": [
                                        {"name": "main", "image": "ghcr.io/example/backup@sha256:" + "a" * 64}
                                    ],
                                }
                            }
                        }
                    }
                },
            },
            "cron.yaml",
        )
        assert cron is not None
        assert workload_images(cron) == [
            ("spec.jobTemplate.spec.template.spec.initContainers[0].image", "busybox:1.36"),
            ("spec.jobTemplate.spec.template.spec.containers[0].image", "ghcr.io/example/backup@sha256:" + "a" * 64),
        ]
        warnings: list[str] = []
        [changed] = apply_images(
            [cron],
            [{"name": "busybox", "newTag": "1.37"}, {"name": "ghcr.io/example/backup", "newName": "ghcr.io/x/backup"}],
            warnings,
            "test",
        )
        assert [value for _, value in workload_images(changed)] == [
            "busybox:1.37",
            "ghcr.io/x/backup@sha256:" + "a" * 64,
        ]
        assert workload_images(cron)[0][1] == "busybox:1.36"  # the input is not changed
        assert split_image("localhost:5000/a/b:1@sha256:" + "b" * 64) == (
            "localhost:5000/a/b",
            "1",
            "sha256:" + "b" * 64,
        )
        assert split_image("localhost:5000/a") == ("localhost:5000/a", None, None)
