"""Resolving Flux objects into sources: refs by Flux's precedence, charts, OCI artifacts, images, Kustomizations
followed through the callback with cycle protection, and postBuild substitution as kustomize-controller does it."""

from __future__ import annotations

import base64
import textwrap
from collections.abc import Mapping

import pytest

from mirror.errors import UsageError
from mirror.flux.objects import FluxObject, objects_from_documents, parse_yaml_documents
from mirror.flux.plan import FluxPlan, FluxResolutionError, SourceKey
from mirror.flux.substitute import SubstitutionError, envsubst, parse_flux_vars
from mirror.flux.walk import FluxWalker
from mirror.manifest.model import GitSource
from mirror.oci.reference import parse_reference

FLUX_SYSTEM = SourceKey("GitRepository", "flux-system", "flux-system")
DIGEST = "sha256:" + "c2" * 32


def objects(text: str, file: str = "fleet.yaml") -> list[FluxObject]:
    return objects_from_documents(parse_yaml_documents(textwrap.dedent(text)), file)


class Trees:
    """A read_tree callback over inline trees, recording each call."""

    def __init__(self, trees: Mapping[tuple[SourceKey, str], str] | None = None) -> None:
        self.trees = dict(trees or {})
        self.calls: list[tuple[SourceKey, str]] = []

    def __call__(self, key: SourceKey, path: str) -> list[FluxObject] | None:
        self.calls.append((key, path))
        text = self.trees.get((key, path))
        return None if text is None else objects(text, f"{path}/all.yaml")


def plan_of(text: str, trees: Trees | None = None, **kwargs: object) -> FluxPlan:
    return FluxWalker(trees or Trees(), **kwargs).walk(objects(text))  # type: ignore[arg-type]


def doc(text: str) -> str:
    """One inline YAML piece, dedented on its own so that pieces of different indentation concatenate."""
    return "\n" + textwrap.dedent(text).strip("\n") + "\n"


def git_repo(name: str, ref: str = "", namespace: str = "flux-system", url: str = "") -> str:
    return doc(f"""
    ---
    apiVersion: source.toolkit.fluxcd.io/v1
    kind: GitRepository
    metadata: {{name: {name}, namespace: {namespace}}}
    spec:
      interval: 1m
      url: {url or f"https://github.com/example/{name}"}
      {ref}
    """)


class TestGitRepositories:
    @pytest.mark.parametrize(
        ("ref", "expected"),
        [
            ("ref: {branch: main}", {"branch": "main"}),
            ("ref: {tag: v1.2.3, branch: main}", {"tag": "v1.2.3"}),
            ("ref: {semver: '>=1.0.0', tag: v1.2.3}", {"semver": ">=1.0.0"}),
            ("ref: {name: refs/pull/42/head, semver: '1.x'}", {"name": "refs/pull/42/head"}),
            (f"ref: {{commit: '{'a' * 40}', name: refs/heads/x, tag: v1}}", {"commit": "a" * 40}),
            (f"ref: {{commit: '{'a' * 40}', branch: main}}", {"commit": "a" * 40, "branch": "main"}),
            ("", {"branch": "master"}),  # Flux's default branch, not the remote's HEAD
            ("ref: {}", {"branch": "master"}),
            ("ref: {branch: ''}", {"branch": "master"}),
        ],
    )
    def test_ref_precedence(self, ref: str, expected: dict[str, str]) -> None:
        plan = plan_of(git_repo("fleet", ref))
        assert plan.problems == []
        [git] = plan.git
        assert dict(git.ref) == expected
        assert git.name == "flux-system.fleet"
        assert git.url == "https://github.com/example/fleet"
        assert git.origin == "fleet.yaml: GitRepository flux-system/fleet"

    def test_names_are_unique_and_short(self) -> None:
        long = "a" * 60
        plan = plan_of(git_repo("app", namespace="team-a") + git_repo("app", namespace="team-b") + git_repo(long))
        names = [g.name for g in plan.git]
        assert names[:2] == ["team-a.app", "team-b.app"]
        assert len(names[2]) == 63 and names[2].startswith("flux-system.aaaa")
        assert plan.git_by_key[SourceKey("GitRepository", "team-b", "app")].name == "team-b.app"

    def test_bad_urls_and_includes_are_problems(self) -> None:
        text = (
            git_repo("creds", url="https://user:token@github.com/example/x")
            + git_repo("scp", url="git@github.com:example/x.git")
            + git_repo("ssh", url="ssh://git@github.com/example/x")
            + git_repo("number", "ref: {tag: 1.10}")
            + doc("""
            ---
            apiVersion: source.toolkit.fluxcd.io/v1
            kind: GitRepository
            metadata: {name: with-include, namespace: flux-system}
            spec:
              url: https://github.com/example/app
              include:
                - repository: {name: ssh}
                - repository: {name: missing}
            """)
        )
        plan = plan_of(text)
        assert [g.name for g in plan.git] == ["flux-system.ssh", "flux-system.with-include"]
        assert plan.problems == [
            "fleet.yaml: GitRepository flux-system/creds: spec.url: the URL carries credentials; Flux takes them "
            "from spec.secretRef",
            "fleet.yaml: GitRepository flux-system/scp: spec.url: 'git@github.com:example/x.git' must be an "
            "https://, http:// or ssh:// repository URL",
            "fleet.yaml: GitRepository flux-system/number: spec.ref.tag: 1.1 was read as a number; quote it",
            "fleet.yaml: GitRepository flux-system/with-include: spec.include[1]: GitRepository "
            "flux-system/missing is not among the objects collected",
        ]
        with pytest.raises(FluxResolutionError) as caught:
            plan.check()
        assert caught.value.problems == plan.problems
        assert caught.value.exit_code == 2
        assert "4 Flux problem(s)" in str(caught.value)


HELM = """
---
apiVersion: source.toolkit.fluxcd.io/v1beta2
kind: HelmRepository
metadata: {name: bitnami, namespace: flux-system}
spec: {interval: 30m, url: https://charts.bitnami.com/bitnami/}
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: HelmRepository
metadata: {name: podinfo, namespace: apps}
spec: {type: oci, interval: 12h, url: oci://ghcr.io/stefanprodan/charts}
---
apiVersion: helm.toolkit.fluxcd.io/v2beta1
kind: HelmRelease
metadata: {name: redis, namespace: redis}
spec:
  chart:
    spec:
      chart: redis
      version: 16.x
      sourceRef: {kind: HelmRepository, name: bitnami, namespace: flux-system}
  values:
    image:
      registry: docker.io
      repository: bitnami/redis
      tag: 6.2.7@sha256:AAAA
    sidecar:
      image: {repository: ghcr.io/example/sidecar, tag: v1@sha256:%s}
---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: {name: podinfo, namespace: apps}
spec:
  chart:
    spec:
      chart: podinfo
      sourceRef: {kind: HelmRepository, name: podinfo}
  values:
    redis: {enabled: true, repository: public.ecr.aws/docker/library/redis, tag: 8.6.2}
    script: |
      echo ${HOME}
""" % ("ab" * 32)


class TestCharts:
    def test_helm_repositories_and_releases(self) -> None:
        plan = plan_of(HELM)
        assert plan.problems == []
        assert plan.helm_repositories == {
            SourceKey("HelmRepository", "flux-system", "bitnami"): "https://charts.bitnami.com/bitnami",
            SourceKey("HelmRepository", "apps", "podinfo"): "oci://ghcr.io/stefanprodan/charts",
        }
        redis, podinfo = plan.charts
        assert (redis.repo, redis.name, redis.version) == ("https://charts.bitnami.com/bitnami", "redis", "16.x")
        assert redis.images.discover and redis.dependencies
        # The bad digest of the first image makes it no reference; the sidecar's tag@digest is split.
        assert [str(i) for i in redis.images.include] == [f"ghcr.io/example/sidecar:v1@sha256:{'ab' * 32}"]
        assert redis.origin == "fleet.yaml: HelmRelease redis/redis"
        assert (podinfo.repo, podinfo.name, podinfo.version) == ("oci://ghcr.io/stefanprodan/charts", "podinfo", None)
        assert podinfo.is_oci
        assert [str(i) for i in podinfo.images.include] == ["public.ecr.aws/docker/library/redis:8.6.2"]
        assert plan.chart_for[SourceKey("HelmRelease", "apps", "podinfo")] is podinfo

    def test_the_same_chart_twice_is_one_source_with_every_release_image(self) -> None:
        text = HELM + doc("""
            ---
            apiVersion: helm.toolkit.fluxcd.io/v2
            kind: HelmRelease
            metadata: {name: podinfo-2, namespace: apps}
            spec:
              chart: {spec: {chart: podinfo, sourceRef: {kind: HelmRepository, name: podinfo}}}
              values: {image: {repository: ghcr.io/stefanprodan/podinfo, tag: 6.5.0}}
            """)
        plan = plan_of(text)
        podinfo = [c for c in plan.charts if c.name == "podinfo"]
        assert len(podinfo) == 1
        assert [str(i) for i in podinfo[0].images.include] == [
            "ghcr.io/stefanprodan/podinfo:6.5.0",
            "public.ecr.aws/docker/library/redis:8.6.2",
        ]
        assert plan.chart_for[SourceKey("HelmRelease", "apps", "podinfo-2")] is podinfo[0]

    def test_unresolved_chart_references_name_file_and_object(self) -> None:
        plan = plan_of("""
            apiVersion: helm.toolkit.fluxcd.io/v2
            kind: HelmRelease
            metadata: {name: a, namespace: apps}
            spec:
              chart: {spec: {chart: a, version: 1.10, sourceRef: {kind: HelmRepository, name: charts}}}
            ---
            apiVersion: helm.toolkit.fluxcd.io/v2
            kind: HelmRelease
            metadata: {name: b, namespace: apps}
            spec:
              chart: {spec: {chart: b, sourceRef: {kind: HelmRepository, name: charts}}}
            ---
            apiVersion: helm.toolkit.fluxcd.io/v2
            kind: HelmRelease
            metadata: {name: patch-only}
            spec:
              chart: {spec: {version: ">=1.0.0"}}
            ---
            apiVersion: helm.toolkit.fluxcd.io/v2
            kind: HelmRelease
            metadata: {name: neither, namespace: apps}
            spec: {values: {}}
            ---
            apiVersion: helm.toolkit.fluxcd.io/v2
            kind: HelmRelease
            metadata: {name: artifact, namespace: apps}
            spec: {chartRef: {kind: ExternalArtifact, name: x}}
            """)
        assert plan.charts == []
        assert plan.problems == [
            "fleet.yaml: HelmRelease apps/a: spec.chart.spec.version: 1.1 was read as a number; quote the version",
            "fleet.yaml: HelmRelease apps/b: spec.chart.spec.sourceRef: HelmRepository apps/charts is not among the "
            "objects collected",
            "fleet.yaml: HelmRelease patch-only: spec.chart.spec.chart: missing",
            "fleet.yaml: HelmRelease apps/neither: has neither of spec.chart and spec.chartRef (a kustomize patch "
            "read as an object?)",
            "fleet.yaml: HelmRelease apps/artifact: spec.chartRef: ExternalArtifact charts are not supported",
        ]

    def test_chart_ref_to_oci_repositories(self) -> None:
        plan = plan_of(f"""
            apiVersion: source.toolkit.fluxcd.io/v1
            kind: OCIRepository
            metadata: {{name: cert-manager, namespace: cert-manager}}
            spec:
              url: oci://quay.io/jetstack/charts/cert-manager
              layerSelector: {{mediaType: application/vnd.cncf.helm.chart.content.v1.tar+gzip, operation: copy}}
              ref: {{semver: "1.x", semverFilter: ".*-rc.*"}}
            ---
            apiVersion: source.toolkit.fluxcd.io/v1
            kind: OCIRepository
            metadata: {{name: app-template, namespace: flux-system}}
            spec: {{url: oci://ghcr.io/bjw-s-labs/helm/app-template, ref: {{tag: 5.1.0}}}}
            ---
            apiVersion: source.toolkit.fluxcd.io/v1
            kind: OCIRepository
            metadata: {{name: kopiur, namespace: kube-system}}
            spec: {{url: oci://ghcr.io/home-operations/charts/kopiur, ref: {{tag: 0.10.3, digest: "{DIGEST}"}}}}
            ---
            apiVersion: source.toolkit.fluxcd.io/v1
            kind: OCIRepository
            metadata: {{name: pinned, namespace: kube-system}}
            spec: {{url: oci://registry-1.docker.io/example/pinned, ref: {{digest: "{DIGEST}", semver: "*"}}}}
            ---
            apiVersion: helm.toolkit.fluxcd.io/v2
            kind: HelmRelease
            metadata: {{name: cert-manager, namespace: cert-manager}}
            spec: {{chartRef: {{kind: OCIRepository, name: cert-manager}}}}
            ---
            apiVersion: helm.toolkit.fluxcd.io/v2
            kind: HelmRelease
            metadata: {{name: unifi-poller, namespace: monitoring}}
            spec:
              chartRef: {{kind: OCIRepository, name: app-template, namespace: flux-system}}
              values:
                controllers:
                  app:
                    containers:
                      app:
                        image:
                          repository: ghcr.io/unpoller/unpoller
                          tag: v4.0.0@{DIGEST}
            ---
            apiVersion: helm.toolkit.fluxcd.io/v2
            kind: HelmRelease
            metadata: {{name: kopiur, namespace: kube-system}}
            spec: {{chartRef: {{kind: OCIRepository, name: kopiur}}}}
            ---
            apiVersion: helm.toolkit.fluxcd.io/v2
            kind: HelmRelease
            metadata: {{name: pinned, namespace: kube-system}}
            spec:
              chartRef: {{kind: OCIRepository, name: pinned}}
              values: {{image: {{repository: example/app, tag: "1.0"}}}}
            """)
        assert plan.problems == []
        cert, template, kopiur, pinned = plan.oci
        assert cert.semver == "1.x" and cert.semver_filter == ".*-rc.*" and not cert.pinned
        assert str(cert.reference) == "quay.io/jetstack/charts/cert-manager"
        assert cert.is_chart and cert.layer_media_type == "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
        assert str(template.reference) == "ghcr.io/bjw-s-labs/helm/app-template:5.1.0" and template.is_chart
        assert str(kopiur.reference) == f"ghcr.io/home-operations/charts/kopiur:0.10.3@{DIGEST}"
        assert str(pinned.reference) == f"docker.io/example/pinned@{DIGEST}" and pinned.semver is None
        charts = {(c.repo, c.name, c.version) for c in plan.charts}
        assert charts == {
            ("oci://quay.io/jetstack/charts", "cert-manager", "1.x"),
            ("oci://ghcr.io/bjw-s-labs/helm", "app-template", "5.1.0"),
            ("oci://ghcr.io/home-operations/charts", "kopiur", "0.10.3"),
        }
        template_chart = plan.chart_for[SourceKey("HelmRelease", "monitoring", "unifi-poller")]
        assert [str(i) for i in template_chart.images.include] == [f"ghcr.io/unpoller/unpoller:v4.0.0@{DIGEST}"]
        # A chart pinned by digest only has no Helm version: its values' images become plain images.
        assert [str(i.reference) for i in plan.images] == ["docker.io/example/app:1.0"]
        assert any("semverFilter" in w for w in plan.warnings)
        assert any(
            "HelmRelease kube-system/pinned: chart oci://registry-1.docker.io/example/pinned" in w
            for w in plan.warnings
        )

    def test_values_from_collected_config_maps(self) -> None:
        plan = plan_of(
            HELM
            + doc("""
            ---
            apiVersion: v1
            kind: ConfigMap
            metadata: {name: web-values, namespace: apps}
            data:
              values.yaml: |
                image: {repository: ghcr.io/example/web, tag: "3.1"}
              other.yaml: |
                sidecar: {image: "quay.io/example/sidecar:0.9"}
            ---
            apiVersion: helm.toolkit.fluxcd.io/v2
            kind: HelmRelease
            metadata: {name: web, namespace: apps}
            spec:
              chart: {spec: {chart: web, version: "1.x", sourceRef: {kind: HelmRepository, name: podinfo}}}
              valuesFrom:
                - {kind: ConfigMap, name: web-values}
                - {kind: ConfigMap, name: web-values, valuesKey: other.yaml}
                - {kind: ConfigMap, name: generated-elsewhere}
                - {kind: Secret, name: web-secret-values}
                - {kind: ConfigMap, name: web-values, valuesKey: tag, targetPath: image.tag}
            """)
        )
        web = plan.chart_for[SourceKey("HelmRelease", "apps", "web")]
        assert [str(i) for i in web.images.include] == ["ghcr.io/example/web:3.1", "quay.io/example/sidecar:0.9"]
        assert [w.split(": ", 2)[2] for w in plan.warnings if "HelmRelease apps/web" in w] == [
            "spec.valuesFrom[2]: ConfigMap generated-elsewhere (key values.yaml) is not among the objects read "
            "(made by a configMapGenerator?); the images its values name are not collected",
            "spec.valuesFrom[3]: values from a Secret are not read for images",
            "spec.valuesFrom[4]: image.tag comes from ConfigMap web-values; that image part is not known here",
        ]

    def test_oci_artifacts_default_to_latest(self) -> None:
        plan = plan_of("""
            apiVersion: source.toolkit.fluxcd.io/v1beta2
            kind: OCIRepository
            metadata: {name: manifests, namespace: flux-system}
            spec: {url: "oci://ghcr.io/example/manifests", verify: {provider: cosign}}
            ---
            apiVersion: source.toolkit.fluxcd.io/v1
            kind: OCIRepository
            metadata: {name: bad, namespace: flux-system}
            spec: {url: "https://ghcr.io/example/manifests"}
            """)
        [artifact] = plan.oci
        assert str(artifact.reference) == "ghcr.io/example/manifests:latest"
        assert not artifact.is_chart and artifact.pinned
        assert plan.problems == [
            "fleet.yaml: OCIRepository flux-system/bad: spec.url: expected oci://host/path, got "
            "'https://ghcr.io/example/manifests'"
        ]
        assert any("spec.verify (cosign, keyless)" in w for w in plan.warnings)

    def test_a_key_based_oci_verify_is_not_warned_about_since_its_signatures_are_carried(self) -> None:
        plan = plan_of("""
            apiVersion: source.toolkit.fluxcd.io/v1
            kind: OCIRepository
            metadata: {name: manifests, namespace: flux-system}
            spec:
              url: oci://ghcr.io/example/manifests
              ref: {tag: "1.0"}
              verify: {provider: cosign, secretRef: {name: cosign-pub}}
            """)
        assert not any("spec.verify" in w for w in plan.warnings)

    def test_a_keyless_oci_verify_warns_that_the_cluster_needs_sigstore_online(self) -> None:
        plan = plan_of("""
            apiVersion: source.toolkit.fluxcd.io/v1
            kind: OCIRepository
            metadata: {name: manifests, namespace: flux-system}
            spec:
              url: oci://ghcr.io/example/manifests
              ref: {tag: "1.0"}
              verify: {provider: cosign, matchOIDCIdentity: [{issuer: "^https://token", subject: "^https://g"}]}
            """)
        [warning] = [w for w in plan.warnings if "spec.verify" in w]
        assert "keyless" in warning and "signatures are carried" in warning and "online" in warning

    def test_chart_ref_to_a_helm_chart_and_charts_from_git(self) -> None:
        plan = plan_of(
            git_repo("charts", "ref: {branch: main}", namespace="apps")
            + doc("""
            ---
            apiVersion: source.toolkit.fluxcd.io/v1
            kind: HelmRepository
            metadata: {name: podinfo, namespace: apps}
            spec: {url: https://stefanprodan.github.io/podinfo}
            ---
            apiVersion: source.toolkit.fluxcd.io/v1
            kind: HelmChart
            metadata: {name: podinfo, namespace: apps}
            spec: {chart: podinfo, version: "6.x", sourceRef: {kind: HelmRepository, name: podinfo}, interval: 1h}
            ---
            apiVersion: helm.toolkit.fluxcd.io/v2
            kind: HelmRelease
            metadata: {name: podinfo, namespace: apps}
            spec: {chartRef: {kind: HelmChart, name: podinfo}}
            ---
            apiVersion: helm.toolkit.fluxcd.io/v2
            kind: HelmRelease
            metadata: {name: local, namespace: apps}
            spec:
              chart: {spec: {chart: ./charts/local, sourceRef: {kind: GitRepository, name: charts}}}
              values: {image: {repository: ghcr.io/example/local, tag: "2.0.1"}}
            """)
        )
        assert plan.problems == []
        [chart] = plan.charts
        assert (chart.repo, chart.name, chart.version) == ("https://stefanprodan.github.io/podinfo", "podinfo", "6.x")
        assert plan.chart_for[SourceKey("HelmRelease", "apps", "podinfo")] is chart
        assert plan.chart_for[SourceKey("HelmChart", "apps", "podinfo")] is chart
        [git_chart] = plan.git_charts
        assert git_chart.source == SourceKey("GitRepository", "apps", "charts")
        assert git_chart.path == "charts/local"
        assert [str(i.reference) for i in plan.images] == ["ghcr.io/example/local:2.0.1"]


GOTK = """
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: source-controller, namespace: flux-system}
spec:
  template:
    spec:
      containers:
        - name: manager
          image: ghcr.io/fluxcd/source-controller:v1.3.0
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: helm-controller, namespace: flux-system}
spec:
  template:
    spec:
      containers:
        - name: manager
          image: ghcr.io/fluxcd/helm-controller:v1.0.1
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: cleanup, namespace: flux-system}
spec:
  jobTemplate:
    spec:
      template:
        spec:
          initContainers: [{name: wait, image: "busybox"}]
          containers: [{name: run, image: ghcr.io/fluxcd/source-controller:v1.3.0}]
---
apiVersion: v1
kind: Pod
metadata: {name: broken, namespace: default}
spec:
  containers: [{name: x, image: "Not/A/Reference"}]
"""


class TestImages:
    def test_workload_images_including_flux_controllers(self) -> None:
        plan = plan_of(GOTK, platforms=None)
        assert [str(i.reference) for i in plan.images] == [
            "ghcr.io/fluxcd/source-controller:v1.3.0",
            "ghcr.io/fluxcd/helm-controller:v1.0.1",
            "docker.io/library/busybox:latest",
        ]
        assert plan.images[0].origin == (
            "fleet.yaml: Deployment flux-system/source-controller: spec.template.spec.containers[0].image"
        )
        assert plan.image_registries() == ["docker.io", "ghcr.io"]
        assert len(plan.problems) == 1
        assert plan.problems[0].startswith("fleet.yaml: Pod default/broken: spec.containers[0].image: invalid image")


def kustomization(
    name: str, path: str, source: str = "flux-system", namespace: str = "flux-system", extra: str = ""
) -> str:
    return doc(f"""
    ---
    apiVersion: kustomize.toolkit.fluxcd.io/v1
    kind: Kustomization
    metadata: {{name: {name}, namespace: {namespace}}}
    spec:
      interval: 10m
      prune: true
      path: {path}
      sourceRef: {{kind: GitRepository, name: {source}, namespace: flux-system}}
      {textwrap.indent(textwrap.dedent(extra), "      ").strip()}
    """)


class TestWalking:
    def test_kustomizations_are_followed_through_the_callback(self) -> None:
        root = git_repo("flux-system", "ref: {branch: main}") + kustomization("flux-system", "./clusters/prod")
        trees = Trees(
            {
                (FLUX_SYSTEM, "clusters/prod"): root
                + kustomization("infra", "./infrastructure")
                + kustomization("tenant", "./", source="tenant")
                + git_repo("tenant", "ref: {branch: dev}"),
                (FLUX_SYSTEM, "infrastructure"): GOTK.replace("Not/A/Reference", "ghcr.io/example/app:1")
                + kustomization("back-to-root", "clusters/prod/"),  # a cycle
                (SourceKey("GitRepository", "flux-system", "tenant"), "."): HELM,
            }
        )
        walker = FluxWalker(trees)
        plan = walker.walk(objects(root), source=FLUX_SYSTEM, path="clusters/prod")
        assert plan.problems == []
        assert trees.calls == [
            (FLUX_SYSTEM, "clusters/prod"),
            (FLUX_SYSTEM, "infrastructure"),
            (SourceKey("GitRepository", "flux-system", "tenant"), "."),
        ]
        assert [(k.key.name, k.status, k.path) for k in plan.kustomizations] == [
            ("flux-system", "read", "clusters/prod"),
            ("infra", "read", "infrastructure"),
            ("tenant", "read", "."),
            ("back-to-root", "seen", "clusters/prod"),
        ]
        assert [g.name for g in plan.git] == ["flux-system.flux-system", "flux-system.tenant"]
        assert {c.name for c in plan.charts} == {"redis", "podinfo"}
        assert len(plan.images) == 4
        redis = next(o for o in plan.objects if o.name == "redis" and o.kind == "HelmRelease")
        assert redis.file == "GitRepository flux-system/tenant:./all.yaml"

    def test_unavailable_failing_and_unsupported_sources_are_problems(self) -> None:
        def read(key: SourceKey, path: str) -> list[FluxObject] | None:
            if key.name == "broken":
                raise UsageError(f"{path}: the path leaves the source root")
            return None

        text = (
            git_repo("missing-content")
            + git_repo("broken")
            + kustomization("a", "./a", source="missing-content")
            + kustomization("b", "../..", source="broken")
            + doc("""
            ---
            apiVersion: kustomize.toolkit.fluxcd.io/v1
            kind: Kustomization
            metadata: {name: c, namespace: flux-system}
            spec: {sourceRef: {kind: Bucket, name: b}, prune: true, interval: 1m}
            ---
            apiVersion: kustomize.toolkit.fluxcd.io/v1
            kind: Kustomization
            metadata: {name: d, namespace: flux-system}
            spec: {sourceRef: {kind: GitRepository, name: undefined}, prune: true, interval: 1m}
            """)
        )
        plan = FluxWalker(read).walk(objects(text))
        assert [(k.key.name, k.status) for k in plan.kustomizations] == [
            ("a", "unavailable"),
            ("b", "failed"),
            ("c", "unsupported"),
            ("d", "unavailable"),
        ]
        assert plan.problems == [
            "fleet.yaml: Kustomization flux-system/a: the content of GitRepository flux-system/missing-content is "
            "not available, so the objects at a are not collected",
            "fleet.yaml: Kustomization flux-system/b: cannot read . of GitRepository flux-system/broken: .: the "
            "path leaves the source root",
            "fleet.yaml: Kustomization flux-system/c: spec.sourceRef: Bucket sources are not supported",
            "fleet.yaml: Kustomization flux-system/d: the content of GitRepository flux-system/undefined is not "
            "available, so the objects at . are not collected",
            "fleet.yaml: Kustomization flux-system/d: spec.sourceRef: GitRepository flux-system/undefined is not "
            "among the objects collected, so it is not carried",
        ]
        with pytest.raises(FluxResolutionError):
            FluxWalker(read).walk(objects(text), strict=True)

    def test_nesting_is_bounded(self) -> None:
        def read(key: SourceKey, path: str) -> list[FluxObject]:
            depth = int(path.rsplit("-", 1)[1])
            return objects(kustomization(f"level-{depth + 1}", f"./level-{depth + 1}"))

        plan = FluxWalker(read, max_depth=5, external={FLUX_SYSTEM: GitSource("root", "https://x/r", {}, "x")}).walk(
            objects(kustomization("level-0", "./level-0"))
        )
        assert len(plan.kustomizations) == 6
        assert plan.kustomizations[-1].status == "failed"
        assert plan.problems == [
            "GitRepository flux-system/flux-system:fleet.yaml: Kustomization flux-system/level-5: "
            "Kustomizations nested more than 5 deep; not followed"
        ]
        assert plan.git[0].name == "root"

    def test_target_namespace_patches_and_images_of_a_kustomization(self) -> None:
        extra = """
            targetNamespace: production
            patches:
              - patch: |
                  - op: add
                    path: /spec/chart/spec/version
                    value: "6.x"
                target: {kind: HelmRelease}
            images:
              - {name: ghcr.io/fluxcd/helm-controller, newTag: v1.1.0}
        """
        trees = Trees(
            {
                (FLUX_SYSTEM, "apps"): doc("""
                    apiVersion: source.toolkit.fluxcd.io/v1
                    kind: HelmRepository
                    metadata: {name: podinfo}
                    spec: {url: https://stefanprodan.github.io/podinfo}
                    ---
                    apiVersion: helm.toolkit.fluxcd.io/v2
                    kind: HelmRelease
                    metadata: {name: podinfo}
                    spec: {chart: {spec: {chart: podinfo, sourceRef: {kind: HelmRepository, name: podinfo}}}}
                """)
                + GOTK.replace("Not/A/Reference", "busybox"),
            }
        )
        plan = FluxWalker(trees).walk(objects(git_repo("flux-system") + kustomization("apps", "./apps", extra=extra)))
        assert plan.problems == []
        [chart] = plan.charts
        assert chart.version == "6.x"
        assert {o.namespace for o in plan.objects if o.file.startswith("GitRepository")} == {"production"}
        assert "ghcr.io/fluxcd/helm-controller:v1.1.0" in [str(i.reference) for i in plan.images]

    def test_external_artifacts_through_an_artifact_generator(self) -> None:
        root = """
            apiVersion: source.extensions.fluxcd.io/v1beta1
            kind: ArtifactGenerator
            metadata: {name: flux-system, namespace: flux-system}
            spec:
              sources: [{alias: monorepo, kind: GitRepository, name: flux-system}]
              artifacts:
                - name: infrastructure
                  copy: [{from: "@monorepo/infrastructure/**", to: "@artifact/"}]
                - name: apps
                  copy:
                    - {from: "@monorepo/apps/base/**", to: "@artifact/base/"}
                    - {from: "@monorepo/apps/production/**", to: "@artifact/production/"}
            ---
            apiVersion: kustomize.toolkit.fluxcd.io/v1
            kind: Kustomization
            metadata: {name: apps, namespace: flux-system}
            spec: {sourceRef: {kind: ExternalArtifact, name: apps}, path: ./production, prune: true, interval: 1h}
            ---
            apiVersion: kustomize.toolkit.fluxcd.io/v1
            kind: Kustomization
            metadata: {name: infra, namespace: flux-system}
            spec:
              sourceRef: {kind: ExternalArtifact, name: infrastructure}
              path: ./controllers
              prune: true
              interval: 1h
            ---
            apiVersion: kustomize.toolkit.fluxcd.io/v1
            kind: Kustomization
            metadata: {name: other, namespace: flux-system}
            spec: {sourceRef: {kind: ExternalArtifact, name: other}, path: ./, prune: true, interval: 1h}
        """
        trees = Trees()
        plan = FluxWalker(trees).walk(objects(root))
        assert trees.calls == [(FLUX_SYSTEM, "apps/production"), (FLUX_SYSTEM, "infrastructure/controllers")]
        assert (
            "fleet.yaml: Kustomization flux-system/other: spec.sourceRef: no ArtifactGenerator collected produces "
            "ExternalArtifact flux-system/other" in plan.problems
        )
        assert (
            "fleet.yaml: ArtifactGenerator flux-system/flux-system: spec.sources[0]: GitRepository "
            "flux-system/flux-system is not among the objects collected, so it is not carried (a root that only "
            "the cluster defines, as `flux bootstrap` does, is named with spec.flux[].gitRepository: "
            "flux-system/flux-system)" in plan.problems
        )

    def test_a_git_repository_read_but_not_collected_names_the_field_that_declares_a_root_defined_in_the_cluster(
        self,
    ) -> None:
        """flux2-kustomize-helm-example: `flux bootstrap` writes the root GitRepository; the fleet only names it."""
        plan = plan_of(kustomization("apps", "./apps"))
        [problem] = [p for p in plan.problems if "not among the objects collected" in p]
        assert problem.endswith(
            "is not among the objects collected, so it is not carried (a root that only the cluster defines, as "
            "`flux bootstrap` does, is named with spec.flux[].gitRepository: flux-system/flux-system)"
        )

    def test_duplicates_keep_the_first_definition(self) -> None:
        plan = plan_of(
            git_repo("a", "ref: {branch: one}")
            + git_repo("a", "ref: {branch: one}")
            + git_repo("a", "ref: {branch: two}")
        )
        assert [dict(g.ref) for g in plan.git] == [{"branch": "one"}]
        assert plan.warnings == [
            "fleet.yaml: GitRepository flux-system/a: defined again differently (first in fleet.yaml); the first "
            "definition is used"
        ]

    def test_the_callback_can_ask_what_a_source_is(self) -> None:
        seen: list[object] = []

        def read(key: SourceKey, path: str) -> list[FluxObject]:
            seen.append(walker.source(key))
            return []

        walker = FluxWalker(read)
        walker.walk(objects(git_repo("flux-system", "ref: {tag: v1}") + kustomization("x", "./x")))
        [git] = seen
        assert isinstance(git, GitSource) and dict(git.ref) == {"tag": "v1"}

    def test_flux_operator_objects_and_buckets(self) -> None:
        plan = plan_of("""
            apiVersion: fluxcd.controlplane.io/v1
            kind: FluxInstance
            metadata: {name: flux, namespace: flux-system}
            spec: {sync: {kind: GitRepository, url: "https://github.com/example/fleet.git", path: clusters/x}}
            ---
            apiVersion: source.toolkit.fluxcd.io/v1
            kind: Bucket
            metadata: {name: b, namespace: flux-system}
            spec: {bucketName: x, endpoint: minio.example.com, interval: 1m}
            """)
        assert plan.problems == ["fleet.yaml: Bucket flux-system/b: Bucket sources are not carried by mirror"]
        assert plan.warnings == [
            "fleet.yaml: FluxInstance flux-system/flux: flux-operator objects are not resolved; the sources they "
            "create are not collected"
        ]


T = "GitRepository flux-system/flux-system:tenants/all.yaml: "


class TestSubstitution:
    TENANT = """
        apiVersion: source.toolkit.fluxcd.io/v1
        kind: GitRepository
        metadata: {name: "${TENANT}", namespace: "${CLUSTER_NAME}"}
        spec:
          url: https://git.example.com/${ORG:=platform}/${TENANT}
          ref: {branch: "${BRANCH}"}
        ---
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: script, namespace: "${CLUSTER_NAME}"}
        data:
          run.sh: |
            echo ${HOME} ${CLUSTER_NAME}
        ---
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: app, namespace: "${CLUSTER_NAME}"}
        spec:
          template:
            spec:
              containers:
                - name: app
                  image: ghcr.io/example/app:${APP_TAG}
                  command: ["sh", "-c", "echo ${HOME}"]
        ---
        apiVersion: helm.toolkit.fluxcd.io/v2
        kind: HelmRelease
        metadata: {name: web, namespace: "${CLUSTER_NAME}"}
        spec:
          chart:
            spec:
              chart: web
              version: "${WEB_VERSION:=1.x}"
              sourceRef: {kind: HelmRepository, name: charts, namespace: flux-system}
          values: {image: {repository: ghcr.io/example/web, tag: "${APP_TAG}"}}
        ---
        apiVersion: source.toolkit.fluxcd.io/v1
        kind: HelmRepository
        metadata:
          name: literal
          namespace: flux-system
          annotations: {kustomize.toolkit.fluxcd.io/substitute: disabled}
        spec: {url: "https://charts.example.com/$${KEEP}"}
    """
    ROOT = """
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: cluster-vars, namespace: flux-system}
        data: {APP_TAG: "1.4.2", BRANCH: from-configmap}
        ---
        apiVersion: v1
        kind: Secret
        metadata: {name: cluster-secrets, namespace: flux-system}
        data: {BRANCH: BRANCH_B64}
        ---
        apiVersion: source.toolkit.fluxcd.io/v1
        kind: HelmRepository
        metadata: {name: charts, namespace: flux-system}
        spec: {url: https://charts.example.com}
        ---
        apiVersion: source.toolkit.fluxcd.io/v1
        kind: GitRepository
        metadata: {name: flux-system, namespace: flux-system}
        spec: {url: https://git.example.com/platform/fleet, ref: {branch: main}}
        ---
        apiVersion: kustomize.toolkit.fluxcd.io/v1
        kind: Kustomization
        metadata: {name: tenants, namespace: flux-system}
        spec:
          interval: 10m
          prune: true
          path: ./tenants
          sourceRef: {kind: GitRepository, name: flux-system}
          postBuild:
            substitute: {TENANT: team-a, CLUSTER_NAME: production}
            substituteFrom:
              - {kind: ConfigMap, name: cluster-vars}
              - {kind: Secret, name: cluster-secrets}
              - {kind: ConfigMap, name: optional-vars, optional: true}
    """.replace("BRANCH_B64", base64.b64encode(b"from-secret\n").decode())

    def walk(self, root: str, tenant: str, **kwargs: object) -> tuple[FluxPlan, Trees]:
        trees = Trees({(FLUX_SYSTEM, "tenants"): tenant})
        return FluxWalker(trees, **kwargs).walk(objects(root)), trees  # type: ignore[arg-type]

    def test_post_build_values_only_in_the_fields_mirror_reads(self) -> None:
        plan, _ = self.walk(self.ROOT, self.TENANT)
        assert plan.problems == []
        tenant = plan.git_by_key[SourceKey("GitRepository", "production", "team-a")]
        assert tenant.url == "https://git.example.com/platform/team-a"
        assert dict(tenant.ref) == {"branch": "from-secret"}  # later substituteFrom entries win, newlines dropped
        assert "ghcr.io/example/app:1.4.2" in [str(i.reference) for i in plan.images]
        web = plan.chart_for[SourceKey("HelmRelease", "production", "web")]
        assert web.version == "1.x"
        assert [str(i) for i in web.images.include] == ["ghcr.io/example/web:1.4.2"]
        script = next(o for o in plan.objects if o.kind == "ConfigMap" and o.name == "script")
        assert script.body["data"]["run.sh"] == "echo ${HOME} ${CLUSTER_NAME}\n"
        deployment = next(o for o in plan.objects if o.kind == "Deployment")
        container = deployment.body["spec"]["template"]["spec"]["containers"][0]
        assert container["command"] == ["sh", "-c", "echo ${HOME}"]
        literal = next(o for o in plan.objects if o.name == "literal")
        assert literal.spec["url"] == "https://charts.example.com/$${KEEP}"
        [followed] = plan.kustomizations
        assert followed.variables == {
            "APP_TAG": "1.4.2",
            "BRANCH": "from-secret",
            "TENANT": "team-a",
            "CLUSTER_NAME": "production",
        }

    def test_inline_values_win_over_substitute_from_and_flux_vars_fill_the_rest(self) -> None:
        root = self.ROOT.replace("{TENANT: team-a, CLUSTER_NAME: production}", "{TENANT: team-a, BRANCH: inline}")
        plan, _ = self.walk(root, self.TENANT, variables={"CLUSTER_NAME": "staging", "BRANCH": "from-flag"})
        assert plan.problems == []
        [tenant] = [g for g in plan.git if g.name.endswith("team-a")]
        assert tenant.name == "staging.team-a"
        assert dict(tenant.ref) == {"branch": "inline"}

    def test_unset_variables_are_problems_naming_file_object_and_field(self) -> None:
        root = self.ROOT.replace("CLUSTER_NAME: production", "OTHER: x").replace(
            'data: {APP_TAG: "1.4.2", BRANCH: from-configmap}', "data: {}"
        )
        plan, _ = self.walk(root, self.TENANT)
        assert plan.problems == [
            T + "GitRepository ${CLUSTER_NAME}/${TENANT}: metadata.namespace: variable ${CLUSTER_NAME} "
            "has no value and no default",
            T + "ConfigMap ${CLUSTER_NAME}/script: metadata.namespace: variable ${CLUSTER_NAME} has "
            "no value and no default",
            T + "Deployment ${CLUSTER_NAME}/app: metadata.namespace: variable ${CLUSTER_NAME} has no "
            "value and no default",
            T + "Deployment ${CLUSTER_NAME}/app: spec.template.spec.containers[0].image: variable "
            "${APP_TAG} has no value and no default",
            T + "HelmRelease ${CLUSTER_NAME}/web: metadata.namespace: variable ${CLUSTER_NAME} has no "
            "value and no default",
            T + "HelmRelease ${CLUSTER_NAME}/web: spec.values.image.tag: image value '${APP_TAG}' "
            "holds an unset variable",
        ]
        error = FluxResolutionError(plan.problems)
        assert "--flux-var" in (error.hint or "")

    def test_without_post_build_variables_stay_literal_and_are_named(self) -> None:
        root = self.ROOT.split("          postBuild:")[0]
        plan, _ = self.walk(root, self.TENANT)
        assert plan.kustomizations[0].variables is None
        assert (
            T + "GitRepository ${CLUSTER_NAME}/${TENANT}: spec.url: holds a ${…} variable, but no "
            "postBuild substitution applies to this object, so Flux leaves it as written (pass --flux-var if the root "
            "objects need it)" in plan.problems
        )
        # The ConfigMap's shell variables are nobody's business.
        assert not any(": data." in p or "command" in p for p in plan.problems)

    def test_substitute_strategy_always_uses_defaults_without_variables(self) -> None:
        root = git_repo("flux-system") + kustomization(
            "x", "./tenants", extra="postBuild: {substituteStrategy: Always}"
        )
        tenant = """
            apiVersion: source.toolkit.fluxcd.io/v1
            kind: OCIRepository
            metadata: {name: manifests, namespace: flux-system}
            spec: {url: "oci://${REGISTRY:=ghcr.io}/example/manifests", ref: {tag: "${TAG:-v1}"}}
        """
        plan, _ = self.walk(root, tenant)
        assert plan.problems == []
        assert str(plan.oci[0].reference) == "ghcr.io/example/manifests:v1"

    def test_flux_vars_substitute_the_root_objects(self) -> None:
        root = git_repo("fleet", "ref: {branch: '${BRANCH}'}")
        assert FluxWalker(Trees(), variables={"BRANCH": "release"}).walk(objects(root)).git[0].ref == {
            "branch": "release"
        }
        plan = FluxWalker(Trees()).walk(objects(root))
        assert plan.git[0].ref == {"branch": "${BRANCH}"}
        assert len(plan.problems) == 1 and "spec.ref.branch: holds a ${…} variable" in plan.problems[0]
        bad = FluxWalker(Trees(), variables={"1BAD": "x"}).walk([])
        assert bad.problems == ["--flux-var 1BAD: not a valid variable name"]

    def test_the_kustomization_applying_the_root_replaces_its_objects(self) -> None:
        root = (
            git_repo("flux-system", "ref: {branch: '${BRANCH}'}")
            + kustomization("apps", "./apps/${ENV}")
            + kustomization(
                "flux-system", "./clusters/prod", extra="postBuild: {substitute: {BRANCH: main, ENV: prod}}"
            )
        )
        trees = Trees({(FLUX_SYSTEM, "clusters/prod"): root, (FLUX_SYSTEM, "apps/prod"): ""})
        plan = FluxWalker(trees).walk(objects(root), source=FLUX_SYSTEM, path="./clusters/prod/")
        assert plan.problems == []
        assert plan.git[0].ref == {"branch": "main"}
        assert trees.calls == [(FLUX_SYSTEM, "clusters/prod"), (FLUX_SYSTEM, "apps/prod")]
        assert [(k.key.name, k.path, k.status) for k in plan.kustomizations] == [
            ("flux-system", "clusters/prod", "read"),
            ("apps", "apps/prod", "read"),
        ]


class TestVariables:
    def test_parse_flux_vars(self) -> None:
        assert parse_flux_vars(["CLUSTER_NAME=prod", "EMPTY=", "URL=https://x/?a=b"]) == {
            "CLUSTER_NAME": "prod",
            "EMPTY": "",
            "URL": "https://x/?a=b",
        }
        for bad in ["NOVALUE", "1X=2", "A-B=c", "=x"]:
            with pytest.raises(UsageError, match="--flux-var"):
                parse_flux_vars([bad])

    # fluxcd/pkg envsubst's own cases (eval_test.go).
    @pytest.mark.parametrize(
        ("params", "text", "expected"),
        [
            ({}, "abcdEFGH28ij", "abcdEFGH28ij"),
            ({"var01": "abcdEFGH28ij"}, "${#var01}", "12"),
            ({"var01": "abcdEFGH28ij"}, "${var01^}", "AbcdEFGH28ij"),
            ({"var01": "abcdEFGH28ij"}, "${var01^^}", "ABCDEFGH28IJ"),
            ({"var01": "ABCDEFGH28IJ"}, "${var01,}", "aBCDEFGH28IJ"),
            ({"var01": "ABCDEFGH28IJ"}, "${var01,,}", "abcdefgh28ij"),
            ({"path_name": "/home/bozo/ideas/thoughts.for.today"}, "${path_name:11}", "ideas/thoughts.for.today"),
            ({"path_name": "/home/bozo/ideas/thoughts.for.today"}, "${path_name:11:5}", "ideas"),
            ({"var": "abc"}, "${var=xyz}", "abc"),
            ({}, "${var=xyz}", "xyz"),
            ({"default_var": "foo"}, "something ${var=${default_var}}", "something foo"),
            ({"default_var": "foo1"}, "foo: ${var=prefix${default_var}-suffix}", "foo: prefixfoo1-suffix"),
            ({}, "${var:=xyz}", "xyz"),
            ({"var": ""}, "${var:-xyz}", "xyz"),
            ({"var": ""}, "${var-xyz}", ""),
            ({"stringZ": "abcABC123ABCabc"}, "${stringZ/%abc/XYZ}", "abcABC123ABCXYZ"),
            ({"stringZ": "abcABC123ABCabc"}, "${stringZ/#abc/XYZ}", "XYZABC123ABCabc"),
            ({"stringZ": "somevalue"}, "${stringZ/#/prefix-}", "prefix-somevalue"),
            ({"stringZ": "somevalue"}, "${stringZ/%/-suffix}", "somevalue-suffix"),
            ({"stringZ": "abcABC123ABCabc"}, "${stringZ//abc/xyz}", "xyzABC123ABCxyz"),
            ({"stringZ": "abcABC123ABCabc"}, "${stringZ/abc/xyz}", "xyzABC123ABCabc"),
            ({"filename": "bash.string.txt"}, "${filename#*.}", "string.txt"),
            ({"filename": "path/to/file"}, "${filename##*/}", "file"),
            ({"filename": "bash.string.txt"}, "${filename%.*}", "bash.string"),
            ({"filename": "bash.string.txt"}, "${filename%%.*}", "bash"),
            ({"var01": "abcdEFGH28ij"}, "${var=${var01^^}}", "ABCDEFGH28IJ"),
            ({"var01": "abcdEFGH28ij"}, "$${var01}", "${var01}"),
            (
                {"var01": "abcdEFGH28ij"},
                "some text ${var01}$${var$${var01}$var01${var01}",
                "some text abcdEFGH28ij${var${var01}$var01abcdEFGH28ij",
            ),
            ({"default_var": "foo"}, "something $${var=${default_var}}", "something ${var=foo}"),
            ({"stringZ": "foo/bar/baz"}, r"${stringZ//\//-}", "foo-bar-baz"),
            ({"stringZ": "foo.bar"}, "${stringZ/./}", "foobar"),
        ],
    )
    def test_envsubst(self, params: dict[str, str], text: str, expected: str) -> None:
        assert envsubst(text, params.get) == (expected, [])

    def test_envsubst_missing_and_unsupported(self) -> None:
        assert envsubst("a ${missing} ${#gone} $plain", {}.get) == ("a  0 $plain", ["missing", "gone"])
        for text in ["${unclosed", "${a:?x}", "${a:+x}", "${}"]:
            with pytest.raises(SubstitutionError):
                envsubst(text, {}.get)


def test_references_in_plans_parse_like_manifests() -> None:
    plan = plan_of(GOTK.replace("Not/A/Reference", "nginx"))
    assert plan.images[0].reference == parse_reference("ghcr.io/fluxcd/source-controller:v1.3.0")
