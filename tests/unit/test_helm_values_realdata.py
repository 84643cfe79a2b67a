"""Discovery with values on real charts from ../shared/realdata, rendered by the real helm (skipped without them).

ingress-nginx renders its default backend only when `defaultBackend.enabled`; jenkins's agent image is set in
values and read by the values walk (the chart's artifacthub.io/images annotation still names its default).
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

from mirror.helm.archive import read_chart
from mirror.helm.discover import FoundImage, discover_images
from mirror.manifest.model import ChartValues
from tests.support.helmtool import real_helm
from tests.support.realdata import realdata


def packaged(directory: Path) -> bytes:
    """The chart directory as a .tgz, the way `helm package` lays it out (one top directory, the chart's name)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path in sorted(directory.rglob("*")):
            if path.is_file():
                archive.add(path, f"{directory.name}/{path.relative_to(directory)}")
    return buffer.getvalue()


def discovered(directory: Path, values: ChartValues) -> dict[str, FoundImage]:
    data = packaged(directory)
    chart = read_chart(data, where=str(directory))
    notes: list[str] = []
    found = discover_images(chart, helm=real_helm(), archive=data, values=values, warnings=notes)
    assert not any("helm template" in note for note in notes), notes
    return {f.reference: f for f in found}


def test_ingress_nginx_renders_its_default_backend_only_with_the_values_that_enable_it():
    chart = realdata("kubernetes__ingress-nginx", "charts", "ingress-nginx")
    backend = "registry.k8s.io/defaultbackend-amd64:1.5"
    assert "helm template" not in discovered(chart, ChartValues(kube_version="1.31.0"))[backend].how
    values = ChartValues(inline=b"defaultBackend: {enabled: true}\n", kube_version="1.31.0")
    assert (
        "helm template: Deployment/release-name-ingress-nginx-defaultbackend" in discovered(chart, values)[backend].how
    )


def test_ingress_nginx_controller_tag_set_in_values_is_the_one_found():
    chart = realdata("kubernetes__ingress-nginx", "charts", "ingress-nginx")
    values = ChartValues(inline=b"controller:\n  image: {tag: v1.12.0, digest: ''}\n")
    found = discovered(chart, values)
    controller = [r for r in found if r.startswith("registry.k8s.io/ingress-nginx/controller:")]
    assert controller == ["registry.k8s.io/ingress-nginx/controller:v1.12.0"]
    assert "with the MirrorSet's values" in found[controller[0]].how


def test_jenkins_agent_image_set_in_values_is_found_beside_the_annotated_default():
    chart = realdata("jenkinsci__helm-charts", "charts", "jenkins")
    values = ChartValues(
        inline=b"agent:\n  image: {repository: jenkins/inbound-agent, tag: '3355.v388858a_47b_33-3'}\n"
    )
    found = discovered(chart, values)
    assert (
        found["docker.io/jenkins/inbound-agent:3355.v388858a_47b_33-3"].how
        == "values: .agent.image (with the MirrorSet's values)"
    )
    defaults = [f for r, f in found.items() if r.startswith("docker.io/jenkins/inbound-agent:") and "3355" not in r]
    assert [f.how for f in defaults] == ["annotation artifacthub.io/images"]
