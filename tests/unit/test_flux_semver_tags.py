"""Flux's `ref.semver` over OCI tags reads them as source-controller does: a leading `v` is accepted.

cert-manager publishes its chart at oci://quay.io/jetstack/charts/cert-manager under tags like `v1.19.1`, and
flux2-kustomize-helm-example asks for `semver: "1.x"` (../shared/realdata). Helm's own OCI tag listing
(StrictNewVersion) would skip every one of those tags; Flux does not.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from mirror.collector.chartindex import resolve_chart
from mirror.collector.flux import oci_sources
from mirror.errors import RegistryHTTPError, SourceNotFoundError, UsageError
from mirror.flux.kustomize import read_tree
from mirror.flux.plan import OciArtifact
from mirror.flux.walk import FluxWalker
from mirror.manifest.model import ChartImages, ChartSource
from mirror.oci.reference import ImageReference
from tests.support.realdata import realdata

# The newest version tags seen, newest first.
NOTHING_MATCHES = r"satisfies '2\.x'.*v1\.20\.0-alpha\.0, v1\.19\.1, v1\.18\.0, v1\.17\.2"
CERT_MANAGER_TAGS = ["v1.17.2", "v1.18.0", "v1.19.1", "v1.20.0-alpha.0", "latest"]


@dataclass
class _Registry:
    tags: list[str]
    asked: list[str] = field(default_factory=list)

    def for_host(self, host: str) -> _Registry:
        return self

    def iter_tags(self, repository: str) -> Iterator[str]:
        return iter(self.tags)

    def get_manifest(self, repository: str, reference: str) -> object:
        self.asked.append(reference)
        raise RegistryHTTPError("not here", status=404)


def _artifact(semver: str) -> OciArtifact:
    return OciArtifact(
        key=("OCIRepository", "cert-manager", "cert-manager"),  # type: ignore[arg-type]
        url="oci://quay.io/jetstack/charts/cert-manager",
        reference=ImageReference("quay.io", "jetstack/charts/cert-manager"),
        semver=semver,
        semver_filter=None,
        layer_media_type=None,
        is_chart=True,
        origin="infrastructure/controllers/cert-manager.yaml: OCIRepository cert-manager/cert-manager",
    )


def _flux_chart(semver: str) -> ChartSource:
    return ChartSource(
        name="cert-manager",
        repo="oci://quay.io/jetstack/charts",
        version=semver,
        images=ChartImages(discover=True),
        dependencies=True,
        platforms=None,
        origin="infrastructure/controllers/cert-manager.yaml: HelmRelease cert-manager/cert-manager",
        via="flux",
        flux_semver=True,
    )


def test_an_oci_repository_semver_range_matches_v_prefixed_tags() -> None:
    chosen = oci_sources(_Registry(CERT_MANAGER_TAGS), [_artifact("1.x")])  # type: ignore[arg-type]
    assert chosen[0].reference.tag == "v1.19.1"


def test_an_oci_repository_semver_that_matches_nothing_lists_the_tags_it_saw() -> None:
    with pytest.raises(UsageError, match=NOTHING_MATCHES):
        oci_sources(_Registry(CERT_MANAGER_TAGS), [_artifact("2.x")])  # type: ignore[arg-type]


def test_an_oci_repository_semver_reads_two_part_tags_as_flux_does_not_as_versions() -> None:
    chosen = oci_sources(_Registry(["v1.2", "v1.1.0"]), [_artifact("1.x")])  # type: ignore[arg-type]
    assert chosen[0].reference.tag == "v1.1.0"


def test_a_chart_from_a_flux_oci_repository_semver_is_chosen_among_v_prefixed_tags() -> None:
    registry = _Registry(CERT_MANAGER_TAGS)
    with pytest.raises(SourceNotFoundError, match=r"v1\.19\.1 not found upstream"):
        resolve_chart(_flux_chart("1.x"), None, registry)  # type: ignore[arg-type]
    assert registry.asked == ["v1.19.1"]


def test_a_chart_from_a_flux_oci_repository_semver_that_matches_nothing_lists_the_tags_it_saw() -> None:
    with pytest.raises(SourceNotFoundError, match=NOTHING_MATCHES):
        resolve_chart(_flux_chart("2.x"), None, _Registry(CERT_MANAGER_TAGS))  # type: ignore[arg-type]


def test_a_listed_oci_chart_range_still_reads_tags_as_helm_does() -> None:
    """Helm (not Flux) pulls a MirrorSet's own OCI charts: its StrictNewVersion skips `v` tags."""
    listed = ChartSource(
        name="cert-manager",
        repo="oci://quay.io/jetstack/charts",
        version="1.x",
        images=ChartImages(discover=True),
        dependencies=True,
        platforms=None,
        origin="platform.yaml: spec.charts[0]",
    )
    with pytest.raises(SourceNotFoundError, match="no tag satisfies"):
        resolve_chart(listed, None, _Registry(CERT_MANAGER_TAGS))  # type: ignore[arg-type]


def test_the_real_cert_manager_release_is_chosen_among_v_prefixed_tags() -> None:
    """flux2-kustomize-helm-example's cert-manager: an OCIRepository `semver: "1.x"` that a HelmRelease's chartRef
    names; quay.io lists the chart under tags like v1.19.1."""
    controllers = realdata("fluxcd__flux2-kustomize-helm-example", "infrastructure", "controllers")
    plan = FluxWalker(lambda key, path: None).walk(read_tree(controllers, "."))
    [chart] = [c for c in plan.charts if c.name == "cert-manager"]
    assert (chart.repo, chart.version, chart.flux_semver) == ("oci://quay.io/jetstack/charts", "1.x", True)
    registry = _Registry(CERT_MANAGER_TAGS)
    with pytest.raises(SourceNotFoundError, match=r"v1\.19\.1 not found upstream"):
        resolve_chart(chart, None, registry)  # type: ignore[arg-type]
    assert registry.asked == ["v1.19.1"]
    [artifact] = [a for a in plan.oci if a.url == "oci://quay.io/jetstack/charts/cert-manager"]
    assert oci_sources(_Registry(CERT_MANAGER_TAGS), [artifact])[0].reference.tag == "v1.19.1"  # type: ignore[arg-type]
