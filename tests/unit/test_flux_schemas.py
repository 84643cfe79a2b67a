"""The rewritten Flux objects are valid against Flux's own CRD schemas (pinned in tests/schemas)."""

from __future__ import annotations

from mirror.flux.rewrite import InternalEndpoints, rewrite_objects
from tests.support.kubeschemas import invalid, schema_errors
from tests.unit.test_flux_rewrite import FLEET, INTERNAL, objects

# Flux 2.7's ArtifactGenerator is passed through as it came; the pinned schemas do not describe it yet.
UNDESCRIBED_GROUPS = ("source.extensions.fluxcd.io/",)


def rewritten_bodies(urls: InternalEndpoints) -> list[dict]:
    bodies = [item.body for item in rewrite_objects(objects(FLEET), urls, warnings=[])]
    return [body for body in bodies if not body["apiVersion"].startswith(UNDESCRIBED_GROUPS)]


def test_every_rewritten_object_of_a_mixed_version_fleet_is_valid() -> None:
    bodies = rewritten_bodies(INTERNAL)
    assert len(bodies) == 11
    assert invalid(bodies) == {}


def test_rewritten_objects_for_a_plain_http_registry_without_prefix_are_valid() -> None:
    bodies = rewritten_bodies(InternalEndpoints("http://10.0.0.5:5000", git_base="http://git.internal"))
    assert invalid(bodies) == {}


def test_the_schemas_refuse_what_flux_would_refuse() -> None:
    # Without this, a validator that accepts anything would pass the tests above.
    verdicts = schema_errors(
        [
            {
                "apiVersion": "source.toolkit.fluxcd.io/v1",
                "kind": "HelmRepository",
                "metadata": {"name": "bad-type"},
                "spec": {"type": "tarball", "url": "oci://r/charts", "interval": "1h"},
            },
            {
                "apiVersion": "source.toolkit.fluxcd.io/v1",
                "kind": "OCIRepository",
                "metadata": {"name": "bad-url"},
                "spec": {"url": "https://r/charts/app", "interval": "1h"},
            },
            {
                "apiVersion": "source.toolkit.fluxcd.io/v1",
                "kind": "GitRepository",
                "metadata": {"name": "no-url"},
                "spec": {"interval": "1h"},
            },
            {"apiVersion": "helm.toolkit.fluxcd.io/v2beta9", "kind": "HelmRelease", "metadata": {"name": "old"}},
        ]
    )
    assert verdicts["source.toolkit.fluxcd.io/v1 HelmRepository/bad-type"] == [
        "data/spec/type must be equal to one of the allowed values"
    ]
    assert verdicts["source.toolkit.fluxcd.io/v1 OCIRepository/bad-url"] == [
        'data/spec/url must match pattern "^oci://.*$"'
    ]
    assert verdicts["source.toolkit.fluxcd.io/v1 GitRepository/no-url"] == ["data/spec must have required property url"]
    assert verdicts["helm.toolkit.fluxcd.io/v2beta9 HelmRelease/old"] == [
        "no schema for helm.toolkit.fluxcd.io/v2beta9 HelmRelease"
    ]
