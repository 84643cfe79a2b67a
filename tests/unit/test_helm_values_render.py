"""The real helm renders what a chart entry's values, kubeVersion and apiVersions ask for, and discovery finds it.

One chart, three gated templates: an image rendered only when a value is set, one only when an API version is
available (.Capabilities.APIVersions.Has), one only for a Kubernetes version (.Capabilities.KubeVersion).
"""

from __future__ import annotations

from mirror.helm.archive import read_chart
from mirror.helm.discover import discover_images
from mirror.manifest.model import ChartValues
from tests.support.helmtool import real_helm
from tests.unit.test_helm_discover import tgz

CHART = "apiVersion: v2\nname: gated\nversion: 0.1.0\n"


def deployment(name: str, image: str) -> str:
    return (
        f"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec:\n  template:\n    spec:\n"
        f"      containers:\n        - name: {name}\n          image: {image}\n"
    )


TEMPLATES = {
    "Chart.yaml": CHART,
    "values.yaml": "extra:\n  enabled: false\n  repository: ghcr.io/acme/extra\n",
    "templates/always.yaml": deployment("always", "ghcr.io/acme/always:1.0"),
    "templates/extra.yaml": "{{- if .Values.extra.enabled }}\n"
    + deployment("extra", '"{{ .Values.extra.repository }}:{{ .Values.extra.tag }}"')
    + "{{- end }}\n",
    "templates/monitoring.yaml": '{{- if .Capabilities.APIVersions.Has "monitoring.coreos.com/v1" }}\n'
    + deployment("exporter", "quay.io/acme/exporter:2.0")
    + "{{- end }}\n",
    "templates/modern.yaml": '{{- if semverCompare ">=1.31.0-0" .Capabilities.KubeVersion.Version }}\n'
    + deployment("modern", "ghcr.io/acme/modern:3.0")
    + "{{- end }}\n",
}


def rendered(values: ChartValues, notes: list[str] | None = None) -> set[str]:
    data = tgz(TEMPLATES, top="gated")
    chart = read_chart(data, where="gated.tgz")
    notes = notes if notes is not None else []
    found = discover_images(chart, helm=real_helm(), archive=data, values=values, warnings=notes)
    return {f.reference for f in found if "helm template" in f.how}


def test_without_values_only_the_ungated_image_renders():
    notes: list[str] = []
    assert rendered(ChartValues(kube_version="1.29.0"), notes) == {"ghcr.io/acme/always:1.0"}
    assert not any("helm template" in note for note in notes)  # it rendered


def test_a_value_set_inline_renders_the_image_it_gates():
    values = ChartValues(inline=b"extra:\n  enabled: true\n  tag: '4.1'\n", kube_version="1.29.0")
    assert "ghcr.io/acme/extra:4.1" in rendered(values)


def test_a_values_file_renders_the_image_it_gates():
    values = ChartValues(files=(("on.yaml", b"extra: {enabled: true, tag: '4.2'}\n"),), kube_version="1.29.0")
    assert "ghcr.io/acme/extra:4.2" in rendered(values)


def test_an_api_version_renders_the_image_gated_on_it():
    values = ChartValues(api_versions=("monitoring.coreos.com/v1",), kube_version="1.29.0")
    assert "quay.io/acme/exporter:2.0" in rendered(values)


def test_a_kube_version_renders_the_image_gated_on_it():
    assert "ghcr.io/acme/modern:3.0" in rendered(ChartValues(kube_version="1.31.0"))
    assert "ghcr.io/acme/modern:3.0" not in rendered(ChartValues(kube_version="1.30.0"))
