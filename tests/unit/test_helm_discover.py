"""Image discovery in charts: annotations, values.yaml shapes, vendored sub-charts and `helm template`.

Charts are built here in memory; layer 3 runs a small fake `helm` script that prints fixed YAML.
"""

from __future__ import annotations

import io
import stat
import tarfile
import textwrap
import time
from pathlib import Path

import pytest

from mirror.helm.archive import Chart, read_chart
from mirror.helm.discover import FoundImage, discover_images
from mirror.yamlio import YamlBudgetError

DIGEST = "sha256:" + "a" * 64
HEX = "b" * 64


def tgz(files: dict[str, str | bytes], top: str = "demo") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, content in files.items():
            data = content.encode() if isinstance(content, str) else content
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size, info.mtime = len(data), 0
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def chart_yaml(name: str = "demo", app_version: str | None = "4.5.6", extra: str = "") -> str:
    text = f"apiVersion: v2\nname: {name}\nversion: 1.2.3\n"
    if app_version is not None:
        text += f"appVersion: {app_version}\n"
    return text + extra


def make(values: str = "", *, chart: str | None = None, files: dict[str, str | bytes] | None = None) -> Chart:
    contents: dict[str, str | bytes] = {"Chart.yaml": chart if chart is not None else chart_yaml()}
    if values:
        contents["values.yaml"] = textwrap.dedent(values)
    contents.update(files or {})
    return read_chart(tgz(contents), where="demo.tgz")


def refs(chart: Chart, **options) -> list[str]:
    return [found.reference for found in discover_images(chart, **options)]


def only(chart: Chart, **options) -> FoundImage:
    (found,) = discover_images(chart, **options)
    return found


def annotated(key: str, body: str) -> str:
    return chart_yaml(extra=f"annotations:\n  {key}: |\n" + textwrap.indent(textwrap.dedent(body), "    "))


# Layer 1: annotations.


def test_artifacthub_images_annotation_is_found():
    chart = make(chart=annotated("artifacthub.io/images", "- name: app\n  image: ghcr.io/acme/app:1.0\n"))
    assert only(chart) == FoundImage(
        "ghcr.io/acme/app:1.0",
        "annotation artifacthub.io/images",
        "demo",
        (("demo", "annotation artifacthub.io/images"),),
    )


def test_annotation_short_names_are_normalised():
    chart = make(chart=annotated("artifacthub.io/images", "- name: agent\n  image: jenkins/inbound-agent:3385.v1\n"))
    assert refs(chart) == ["docker.io/jenkins/inbound-agent:3385.v1"]


def test_bitnami_images_annotation_is_found():
    chart = make(
        chart=annotated("images", "- name: wordpress\n  image: docker.io/bitnami/wordpress:6.8.2-debian-12-r4\n")
    )
    assert only(chart).how == "annotation images"


def test_annotation_that_is_not_yaml_gives_a_warning():
    warnings: list[str] = []
    chart = make(chart=annotated("artifacthub.io/images", "- name: [broken\n"))
    assert discover_images(chart, warnings=warnings) == []
    assert "annotation artifacthub.io/images is not valid YAML" in warnings[0]


def test_annotation_entry_with_a_bad_image_gives_a_warning():
    warnings: list[str] = []
    discover_images(
        make(chart=annotated("artifacthub.io/images", "- name: x\n  image: Not A Ref\n")), warnings=warnings
    )
    assert "without a valid image" in warnings[0]


def test_an_unrelated_images_annotation_is_ignored_quietly():
    warnings: list[str] = []
    chart = make(chart=chart_yaml(extra="annotations:\n  images: three\n"))
    assert discover_images(chart, warnings=warnings) == [] and warnings == []


# Layer 2: values.yaml.


def test_values_image_string_is_found():
    found = only(make("sidecar:\n  image: busybox:1.36\n"))
    assert (found.reference, found.how) == ("docker.io/library/busybox:1.36", "values: .sidecar.image")


def test_values_image_string_with_a_digest_is_found():
    assert refs(make(f"image: quay.io/acme/app@{DIGEST}\n")) == [f"quay.io/acme/app@{DIGEST}"]


def test_values_keys_ending_in_image_are_found():
    assert refs(make("kubectlImage: bitnami/kubectl:1.31\n")) == ["docker.io/bitnami/kubectl:1.31"]


def test_values_repository_and_tag_map_is_found():
    found = only(make("image:\n  repository: ghcr.io/stefanprodan/podinfo\n  tag: 6.14.1\n"))
    assert (found.reference, found.how) == ("ghcr.io/stefanprodan/podinfo:6.14.1", "values: .image")


def test_values_registry_is_joined_to_the_repository():
    assert refs(make("image:\n  registry: quay.io\n  repository: prometheus/prometheus\n  tag: v3.0.0\n")) == [
        "quay.io/prometheus/prometheus:v3.0.0"
    ]


def test_values_digest_pins_the_image():
    values = f"image:\n  registry: docker.io\n  repository: bitnami/redis\n  tag: '7.4'\n  digest: {DIGEST}\n"
    assert refs(make(values)) == [f"docker.io/bitnami/redis:7.4@{DIGEST}"]


def test_values_sha_field_is_a_digest():
    values = f"image:\n  registry: quay.io\n  repository: thanos/thanos\n  tag: v0.42.4\n  sha: {HEX}\n"
    assert refs(make(values)) == [f"quay.io/thanos/thanos:v0.42.4@sha256:{HEX}"]


def test_values_empty_digest_is_ignored():
    assert refs(make("image:\n  repository: nginx\n  tag: '1.27'\n  digest: ''\n")) == ["docker.io/library/nginx:1.27"]


def test_values_garbage_digest_drops_the_image_quietly():
    assert refs(make("image:\n  repository: nginx\n  tag: '1.27'\n  digest: sha256:nothex\n")) == []


def test_bitnami_global_image_registry_overrides_the_registry():
    values = """\
        global:
          imageRegistry: registry.internal:5000
        image:
          registry: docker.io
          repository: bitnami/wordpress
          tag: 6.8.2-debian-12-r4
        """
    found = only(make(values))
    assert found.reference == "registry.internal:5000/bitnami/wordpress:6.8.2-debian-12-r4"
    assert found.how == "values: .image (registry from .global.imageRegistry)"


def test_bitnami_empty_global_image_registry_keeps_the_registry():
    values = "global:\n  imageRegistry: ''\nimage:\n  registry: docker.io\n  repository: bitnami/nginx\n  tag: '1.29'\n"
    assert refs(make(values)) == ["docker.io/bitnami/nginx:1.29"]


def test_ingress_nginx_image_takes_the_global_registry_tag_and_digest():
    values = f"""\
        global:
          image:
            registry: registry.k8s.io
        controller:
          image:
            image: ingress-nginx/controller
            tag: "v1.15.1"
            digest: {DIGEST}
            pullPolicy: IfNotPresent
        """
    found = only(make(values))
    assert found.reference == f"registry.k8s.io/ingress-nginx/controller:v1.15.1@{DIGEST}"
    assert found.how == "values: .controller.image (registry from .global.image.registry)"


def test_ingress_nginx_own_registry_wins_over_the_global_one():
    values = """\
        global:
          image:
            registry: registry.k8s.io
        backend:
          image:
            registry: mirror.example
            image: defaultbackend-amd64
            tag: '1.5'
        """
    assert refs(make(values)) == ["mirror.example/defaultbackend-amd64:1.5"]


def test_repository_without_a_tag_takes_the_app_version():
    found = only(make("image:\n  repository: ghcr.io/acme/app\n"))
    assert (found.reference, found.how) == ("ghcr.io/acme/app:4.5.6", "values: .image (tag from appVersion)")


def test_empty_tag_takes_the_app_version():
    assert refs(make("image:\n  repository: quay.io/argoproj/argocd\n  tag: ''\n")) == ["quay.io/argoproj/argocd:4.5.6"]


def test_app_version_keeps_its_text():
    chart = make("image:\n  repository: acme/app\n", chart=chart_yaml(app_version="1.10"))
    assert refs(chart) == ["docker.io/acme/app:1.10"]


def test_empty_tag_without_app_version_is_left_to_the_templates_with_a_warning():
    warnings: list[str] = []
    chart = make("image:\n  repository: acme/app\n  tag: ''\n", chart=chart_yaml(app_version=None))
    assert refs(chart, warnings=warnings) == []
    assert warnings == [
        "demo: values: .image names acme/app without a tag; the tag comes from the templates, "
        "so this image is not discovered"
    ]


def test_tag_from_app_version_is_marked_guessed():
    assert only(make("image:\n  repository: ghcr.io/acme/app\n")).guessed


def test_tag_written_in_values_is_not_guessed():
    assert not only(make("image:\n  repository: ghcr.io/acme/app\n  tag: '1.0'\n")).guessed


def test_guess_confirmed_another_way_is_not_guessed():
    chart = make(
        "image:\n  repository: ghcr.io/acme/app\n",
        chart=annotated("artifacthub.io/images", "- name: app\n  image: ghcr.io/acme/app:4.5.6\n"),
    )
    assert not only(chart).guessed


def test_tag_label_is_appended_to_the_app_version():
    chart = make(
        "controller:\n  image:\n    registry: docker.io\n    repository: jenkins/jenkins\n"
        "    tag:\n    tagLabel: jdk21\n"
    )
    found = only(chart)
    assert found.reference == "docker.io/jenkins/jenkins:4.5.6-jdk21"
    assert "tag from appVersion and tagLabel" in found.how


def test_tag_written_with_a_digest_is_split():
    assert refs(make(f"image:\n  repository: ghcr.io/acme/app\n  tag: 1.2.0@{DIGEST}\n")) == [
        f"ghcr.io/acme/app:1.2.0@{DIGEST}"
    ]


def test_digest_without_a_tag_does_not_take_the_app_version():
    assert refs(make(f"image:\n  repository: ghcr.io/acme/app\n  digest: {DIGEST}\n")) == [f"ghcr.io/acme/app@{DIGEST}"]


def test_numeric_tag_is_written_as_helm_prints_it():
    assert refs(make("a:\n  repository: acme/a\n  tag: 8\nb:\n  repository: acme/b\n  tag: 2.0\n")) == [
        "docker.io/acme/a:8",
        "docker.io/acme/b:2",
    ]


def test_templated_values_are_skipped():
    values = (
        "a:\n  image: '{{ .Values.global.registry }}/app:1'\n"
        "b:\n  repository: acme/b\n  tag: '{{ .Chart.AppVersion }}'\n"
    )
    assert refs(make(values)) == []


def test_non_reference_strings_are_skipped_quietly():
    warnings: list[str] = []
    values = "image: 'not a reference'\nother:\n  image: ''\nthird:\n  repository: UPPER/Case\n  tag: x\n"
    assert discover_images(make(values), warnings=warnings) == [] and warnings == []


def test_images_in_lists_are_found():
    found = only(make("extraContainers:\n- name: shell\n  image: alpine:3.20\n"))
    assert found.how == "values: .extraContainers[0].image"


def test_nested_image_maps_are_each_found():
    values = """\
        crds:
          image:
            busybox:
              registry: docker.io
              repository: busybox
              tag: latest
            kubectl:
              registry: registry.k8s.io
              repository: kubectl
              tag: v1.33.0
        """
    assert refs(make(values)) == ["docker.io/library/busybox:latest", "registry.k8s.io/kubectl:v1.33.0"]


def test_the_same_image_found_twice_keeps_every_how():
    chart = make(
        "image:\n  repository: ghcr.io/acme/app\n  tag: '1.0'\n",
        chart=annotated("artifacthub.io/images", "- name: app\n  image: ghcr.io/acme/app:1.0\n"),
    )
    assert only(chart).how == "annotation artifacthub.io/images; values: .image"


def test_results_are_sorted_by_reference():
    assert refs(make("b:\n  image: zz/b:1\na:\n  image: aa/a:1\n")) == ["docker.io/aa/a:1", "docker.io/zz/b:1"]


def test_self_referencing_values_are_refused_as_helm_refuses_them():
    # Go's YAML reader: "anchor 'loop' value contains itself".
    with pytest.raises(YamlBudgetError, match="contains it"):
        make("a: &loop\n  image: acme/a:1\n  again: *loop\n")


def test_exponential_aliases_are_refused_quickly_before_any_walk():
    lines = ["l0: &l0 {image: acme/a:1}"] + [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, 12)]
    started = time.monotonic()
    with pytest.raises(YamlBudgetError, match=r"values\.yaml"):
        make("\n".join(lines) + "\n")
    assert time.monotonic() - started < 5


def test_unparsable_values_warning_reaches_the_caller():
    warnings: list[str] = []
    discover_images(make("image: [broken\n"), warnings=warnings)
    assert "values.yaml" in warnings[0]


# Sub-charts.

SUB_VALUES = "image:\n  registry: docker.io\n  repository: bitnami/redis\n  tag: 7.0.0\n"


def with_subchart(parent_values: str = "", *, extra: str = "", as_directory: bool = False) -> Chart:
    sub_files = {"Chart.yaml": chart_yaml("redis", "7.0.0"), "values.yaml": SUB_VALUES}
    files: dict[str, str | bytes]
    if as_directory:
        files = {f"charts/redis/{name}": text for name, text in sub_files.items()}
    else:
        files = {"charts/redis-17.0.0.tgz": tgz(sub_files, top="redis")}
    chart = chart_yaml(
        extra=extra or "dependencies:\n- name: redis\n  version: 17.x\n  repository: oci://r.example/charts\n"
    )
    return make(parent_values, chart=chart, files=files)


def test_vendored_subchart_archive_images_are_found():
    found = only(with_subchart())
    assert (found.reference, found.chart, found.how) == (
        "docker.io/bitnami/redis:7.0.0",
        "demo/charts/redis",
        "values: .image",
    )


def test_vendored_subchart_directory_images_are_found():
    assert refs(with_subchart(as_directory=True)) == ["docker.io/bitnami/redis:7.0.0"]


def test_parent_values_override_the_subchart_values():
    assert refs(with_subchart("redis:\n  image:\n    tag: 7.4.1\n")) == ["docker.io/bitnami/redis:7.4.1"]


def test_parent_global_values_reach_subcharts():
    found = only(with_subchart("global:\n  imageRegistry: mirror.internal\n"))
    assert found.reference == "mirror.internal/bitnami/redis:7.0.0"


def test_aliased_dependency_takes_values_under_its_alias():
    chart = with_subchart(
        "cache:\n  image:\n    tag: 7.2.0\n",
        extra="dependencies:\n- name: redis\n  alias: cache\n  version: 17.x\n  repository: oci://r.example/charts\n",
    )
    assert [(f.reference, f.chart) for f in discover_images(chart)] == [
        ("docker.io/bitnami/redis:7.2.0", "demo/charts/cache")
    ]


def test_subchart_disabled_by_its_condition_is_marked():
    chart = with_subchart(
        "redis:\n  enabled: false\n",
        extra="dependencies:\n- name: redis\n  version: 17.x\n  repository: oci://r.example/c\n"
        "  condition: redis.enabled\n",
    )
    assert only(chart).how == "values: .image (sub-chart disabled by default: redis.enabled)"


def test_subchart_without_a_dependency_entry_is_walked_under_its_name():
    assert refs(with_subchart("redis:\n  image:\n    tag: 7.4.1\n", extra="description: x\n")) == [
        "docker.io/bitnami/redis:7.4.1"
    ]


def test_v1_chart_with_requirements_and_a_vendored_subchart():
    sub = tgz({"Chart.yaml": "apiVersion: v1\nname: redis\nversion: 10.5.7\nappVersion: 5.0.7\n",
               "values.yaml": "image:\n  repository: bitnami/redis\n"}, top="redis")  # fmt: skip
    files = {
        "Chart.yaml": "apiVersion: v1\nname: demo\nversion: 1.0.0\n",
        "requirements.yaml": "dependencies:\n- name: redis\n  version: 10.5.7\n  repository: https://charts.example.com\n",
        "charts/redis-10.5.7.tgz": sub,
    }
    warnings: list[str] = []
    assert refs(read_chart(tgz(files), where="demo.tgz"), warnings=warnings) == ["docker.io/bitnami/redis:5.0.7"]
    assert warnings == []


def test_dependency_not_vendored_gives_a_warning():
    warnings: list[str] = []
    chart = make(
        chart=chart_yaml(extra="dependencies:\n- name: mariadb\n  version: 22.x.x\n  repository: oci://r.example/c\n")
    )
    discover_images(chart, warnings=warnings)
    assert warnings == [
        "demo: dependency mariadb 22.x.x from oci://r.example/c is not vendored in the archive; "
        "its images are not discovered"
    ]


def test_parent_values_for_a_vendored_subchart_are_found_in_the_subchart_only():
    found = only(with_subchart("redis:\n  image:\n    registry: quay.io\n    repository: acme/redis\n    tag: '8'\n"))
    assert (found.reference, found.chart, found.how) == ("quay.io/acme/redis:8", "demo/charts/redis", "values: .image")


MISSING_DEPENDENCY = "dependencies:\n- name: redis-ha\n  version: 4.38.0\n  repository: https://charts.example.com\n"


def test_values_for_a_missing_dependency_are_marked():
    chart = make(
        "redis-ha:\n  image:\n    repository: acme/redis\n    tag: '8'\n", chart=chart_yaml(extra=MISSING_DEPENDENCY)
    )
    assert only(chart).how == "values: .redis-ha.image (values for dependency redis-ha)"


def test_values_for_a_missing_dependency_do_not_take_this_charts_app_version():
    warnings: list[str] = []
    chart = make(
        "redis-ha:\n  haproxy:\n    image:\n      repository: acme/haproxy\n",
        chart=chart_yaml(extra=MISSING_DEPENDENCY),
    )
    assert refs(chart, warnings=warnings) == []
    assert "the tag comes from dependency redis-ha, which is not vendored" in warnings[0]


def test_a_subchart_used_under_many_aliases_stops_at_the_walk_cap():
    aliases = "".join(
        f"- name: redis\n  alias: r{i}\n  version: 17.x\n  repository: oci://r.example/c\n" for i in range(1200)
    )
    warnings: list[str] = []
    found = only(with_subchart(extra="dependencies:\n" + aliases), warnings=warnings)
    assert found.reference == "docker.io/bitnami/redis:7.0.0"
    assert "more than 1000 sub-charts to walk" in warnings[0]


def test_same_image_in_parent_and_subchart_names_both():
    found = only(with_subchart(SUB_VALUES))
    assert found.how == "values: .image; values: .image (in demo/charts/redis)"


# Layer 3: helm template, through a fake helm binary.

RENDERED = """\
---
# Source: demo/templates/deployment.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: demo
spec:
  template:
    spec:
      initContainers:
      - name: init
        image: busybox:1.36
      containers:
      - name: app
        image: ghcr.io/acme/app:1.0
---
# Source: demo/charts/redis/templates/statefulset.yaml
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: demo-redis
spec:
  template:
    spec:
      containers:
      - name: redis
        image: docker.io/bitnami/redis:7.0.0
---
# Source: demo/templates/cronjob.yaml
apiVersion: batch/v1
kind: CronJob
metadata:
  name: backup
spec:
  jobTemplate:
    spec:
      template:
        spec:
          containers:
          - name: backup
            image: acme/backup:2
          ephemeralContainers:
          - name: debug
            image: acme/debug:3
---
# Source: demo/templates/tests/test.yaml
apiVersion: v1
kind: Pod
metadata:
  name: demo-test
  annotations:
    helm.sh/hook: test
spec:
  containers:
  - name: curl
    image: curlimages/curl:8.10.1
---
# Source: demo/templates/prometheus.yaml
apiVersion: monitoring.coreos.com/v1
kind: Prometheus
metadata:
  name: demo
spec:
  image: quay.io/prometheus/prometheus:v3.0.0
---
# Source: demo/templates/configmap.yaml
apiVersion: v1
kind: ConfigMap
metadata:
  name: demo
data:
  key: value
"""


def fake_helm(tmp_path: Path, body: str) -> str:
    script = tmp_path / "helm"
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(script)


def printing_helm(tmp_path: Path, output: str = RENDERED) -> str:
    (tmp_path / "rendered.yaml").write_text(output)
    return fake_helm(
        tmp_path,
        f'printf "%s\\n" "$*" > "{tmp_path}/args"\ncp "$3" "{tmp_path}/seen.tgz"\ncat "{tmp_path}/rendered.yaml"\n',
    )


def rendered(tmp_path: Path, **options) -> dict[str, FoundImage]:
    data = tgz({"Chart.yaml": chart_yaml()})
    chart = read_chart(data, where="demo.tgz")
    return {f.reference: f for f in discover_images(chart, helm=printing_helm(tmp_path), archive=data, **options)}


def test_an_alias_bomb_in_an_images_annotation_is_refused():
    bomb = "- &l0 {image: acme/a:1}\n" + "".join(
        f"- &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]\n" for i in range(1, 11)
    )
    chart = make(chart=annotated("artifacthub.io/images", bomb))
    with pytest.raises(YamlBudgetError, match=r"artifacthub\.io/images"):
        discover_images(chart, warnings=[])


def test_an_alias_bomb_in_helm_template_output_is_refused(tmp_path):
    bomb = "# Source: demo/templates/bomb.yaml\napiVersion: v1\nkind: ConfigMap\ndata:\n" + "".join(
        f"  l{i}: &l{i} [" + ", ".join([f"*l{i - 1}" if i else "x"] * 10) + "]\n" for i in range(11)
    )
    data = tgz({"Chart.yaml": chart_yaml()})
    with pytest.raises(YamlBudgetError, match=r"demo/templates/bomb\.yaml"):
        discover_images(read_chart(data, where="demo.tgz"), helm=printing_helm(tmp_path, bomb), archive=data)


def test_helm_template_finds_containers_and_init_containers(tmp_path):
    found = rendered(tmp_path)
    assert found["ghcr.io/acme/app:1.0"].how == "helm template: Deployment/demo containers app"
    assert found["docker.io/library/busybox:1.36"].how == "helm template: Deployment/demo initContainers init"


def test_helm_template_finds_cronjob_and_ephemeral_containers(tmp_path):
    found = rendered(tmp_path)
    assert found["docker.io/acme/backup:2"].how == "helm template: CronJob/backup containers backup"
    assert found["docker.io/acme/debug:3"].how == "helm template: CronJob/backup ephemeralContainers debug"


def test_helm_template_attributes_images_to_the_subchart_that_rendered_them(tmp_path):
    assert rendered(tmp_path)["docker.io/bitnami/redis:7.0.0"].chart == "demo/charts/redis"


def test_helm_template_marks_test_hook_images(tmp_path):
    assert rendered(tmp_path)["docker.io/curlimages/curl:8.10.1"].how.endswith("(helm.sh/hook test)")


def test_helm_template_finds_image_fields_of_other_kinds(tmp_path):
    assert (
        rendered(tmp_path)["quay.io/prometheus/prometheus:v3.0.0"].how == "helm template: Prometheus/demo .spec.image"
    )


def test_helm_template_is_given_the_archive_bytes(tmp_path):
    data = tgz({"Chart.yaml": chart_yaml()})
    discover_images(read_chart(data, where="demo.tgz"), helm=printing_helm(tmp_path), archive=data)
    assert (tmp_path / "seen.tgz").read_bytes() == data
    assert (tmp_path / "args").read_text().startswith("template release-name ")


def test_helm_template_and_values_findings_are_merged(tmp_path):
    data = tgz({"Chart.yaml": chart_yaml(), "values.yaml": "image:\n  repository: ghcr.io/acme/app\n  tag: '1.0'\n"})
    chart = read_chart(data, where="demo.tgz")
    found = {f.reference: f for f in discover_images(chart, helm=printing_helm(tmp_path), archive=data)}
    assert found["ghcr.io/acme/app:1.0"].how == "values: .image; helm template: Deployment/demo containers app"


def test_missing_helm_binary_is_a_warning(tmp_path):
    warnings: list[str] = []
    data = tgz({"Chart.yaml": chart_yaml()})
    assert (
        discover_images(read_chart(data, where="x"), helm=str(tmp_path / "absent"), archive=data, warnings=warnings)
        == []
    )
    assert "could not start" in warnings[0]


def test_failing_helm_render_is_a_warning(tmp_path):
    warnings: list[str] = []
    helm = fake_helm(
        tmp_path, 'echo "kind: Deployment"\necho "Error: missing in charts/ directory: mariadb" >&2\nexit 1\n'
    )
    data = tgz({"Chart.yaml": chart_yaml()})
    assert discover_images(read_chart(data, where="x"), helm=helm, archive=data, warnings=warnings) == []
    assert warnings == [
        "demo: helm template failed (exit 1): Error: missing in charts/ directory: mariadb; "
        "rendered images not discovered"
    ]


def test_helm_render_that_hangs_is_stopped_by_the_timeout(tmp_path):
    warnings: list[str] = []
    helm = fake_helm(tmp_path, "exec sleep 30\n")
    data = tgz({"Chart.yaml": chart_yaml()})
    started = time.monotonic()
    discover_images(read_chart(data, where="x"), helm=helm, archive=data, warnings=warnings, helm_timeout=0.5)
    assert time.monotonic() - started < 10
    assert "did not finish within 0.5 s" in warnings[0]


def test_helm_timeout_also_ends_children_that_hold_the_output_open(tmp_path):
    warnings: list[str] = []
    helm = fake_helm(tmp_path, "sleep 30 &\necho 'kind: Pod'\n")
    data = tgz({"Chart.yaml": chart_yaml()})
    started = time.monotonic()
    discover_images(read_chart(data, where="x"), helm=helm, archive=data, warnings=warnings, helm_timeout=0.5)
    assert time.monotonic() - started < 10
    assert "did not finish within 0.5 s" in warnings[0]


def test_helm_output_over_the_cap_is_a_warning(tmp_path):
    warnings: list[str] = []
    helm = fake_helm(tmp_path, "yes 'image: x' | head -c 70000000\n")
    data = tgz({"Chart.yaml": chart_yaml()})
    assert discover_images(read_chart(data, where="x"), helm=helm, archive=data, warnings=warnings) == []
    assert "printed more than 67108864 bytes" in warnings[0]


def test_helm_without_the_archive_is_a_warning(tmp_path):
    warnings: list[str] = []
    discover_images(make(), helm=printing_helm(tmp_path), warnings=warnings)
    assert "needs the chart archive" in warnings[0]


def test_helm_output_that_is_not_yaml_gives_a_warning_and_keeps_the_rest(tmp_path):
    warnings: list[str] = []
    output = "---\n# Source: demo/templates/bad.yaml\nkind: [broken\n" + RENDERED
    data = tgz({"Chart.yaml": chart_yaml()})
    helm = printing_helm(tmp_path, output)
    found = discover_images(read_chart(data, where="x"), helm=helm, archive=data, warnings=warnings)
    assert "demo/templates/bad.yaml is not valid YAML" in warnings[0]
    assert "ghcr.io/acme/app:1.0" in [f.reference for f in found]


def test_helm_rendering_a_container_without_a_valid_image_gives_a_warning(tmp_path):
    warnings: list[str] = []
    output = "kind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: c\n    image: 'repo:'\n"
    data = tgz({"Chart.yaml": chart_yaml()})
    discover_images(read_chart(data, where="x"), helm=printing_helm(tmp_path, output), archive=data, warnings=warnings)
    assert warnings == ["demo: helm template rendered Pod/p with image 'repo:', not a reference"]
