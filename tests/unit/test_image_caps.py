"""Images per chart, per HelmRelease and per Flux fleet are capped (Limits): refused naming the object, not cut."""

from __future__ import annotations

from dataclasses import replace

import pytest

from mirror.errors import UsageError
from mirror.flux.objects import objects_from_documents
from mirror.flux.walk import FluxWalker
from mirror.helm.archive import read_chart
from mirror.helm.discover import TooManyImagesError, discover_images
from mirror.limits import DEFAULT_LIMITS
from tests.support.charts import build_chart


def _deployment(name: str, images: list[str]) -> dict[str, object]:
    containers = [{"name": f"c{i}", "image": image} for i, image in enumerate(images)]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "apps"},
        "spec": {"template": {"spec": {"containers": containers}}},
    }


def _walk(documents: list[dict[str, object]], **limits: int) -> None:
    walker = FluxWalker(lambda key, path: None, limits=replace(DEFAULT_LIMITS, **limits))
    walker.walk(objects_from_documents(documents, "fleet.yaml"))


def test_a_fleet_naming_more_workload_images_than_the_cap_is_refused_naming_the_limit() -> None:
    documents = [_deployment(f"d{i}", [f"registry.example/team/app-{i}:1.0"]) for i in range(4)]
    _walk(documents, max_images_per_fleet=4)
    with pytest.raises(UsageError, match=r"Deployment apps/d3.*more than 3 images.*max_images_per_fleet"):
        _walk(documents, max_images_per_fleet=3)


def test_a_helm_release_naming_more_images_in_its_values_than_the_cap_is_refused_naming_it() -> None:
    release = {
        "apiVersion": "helm.toolkit.fluxcd.io/v2",
        "kind": "HelmRelease",
        "metadata": {"name": "many", "namespace": "apps"},
        "spec": {
            "chart": {"spec": {"chart": "app", "sourceRef": {"kind": "HelmRepository", "name": "charts"}}},
            "values": {"workers": [{"image": f"registry.example/team/w-{i}:1.0"} for i in range(6)]},
        },
    }
    repository = {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "HelmRepository",
        "metadata": {"name": "charts", "namespace": "apps"},
        "spec": {"url": "https://charts.example"},
    }
    _walk([repository, release], max_images_per_chart=6)
    with pytest.raises(TooManyImagesError, match=r"HelmRelease apps/many.*more than 5 images"):
        _walk([repository, release], max_images_per_chart=5)


def test_a_chart_naming_more_images_than_the_cap_is_refused_naming_chart_and_limit() -> None:
    values = {f"worker{i}": {"image": f"registry.example/team/w-{i}:1.0"} for i in range(6)}
    chart = read_chart(build_chart("many", "2.0.0", values=values), where="many")
    assert len(discover_images(chart, max_images=6)) == 6
    with pytest.raises(TooManyImagesError, match=r"chart many 2\.0\.0: names more than 5 images.*max_images_per_chart"):
        discover_images(chart, max_images=5)


def test_the_same_image_named_many_times_counts_once() -> None:
    values = {"workers": [{"image": "registry.example/team/same:1.0"} for _ in range(50)]}
    chart = read_chart(build_chart("same", "1.0.0", values=values), where="same")
    assert [i.reference for i in discover_images(chart, max_images=1)] == ["registry.example/team/same:1.0"]
