"""The OpenShift mirror sets --mirror-config writes are valid against the CRDs' own schemas (openshift/api, copied
into tests/schemas/crds/), and those schemas refuse what the API server would."""

from __future__ import annotations

import yaml

from mirror.nodeconfig.hosts import MirrorTarget
from mirror.nodeconfig.render import OPENSHIFT_DIGESTS, OPENSHIFT_TAGS, render
from tests.support.kubeschemas import invalid, schema_errors

SOURCES = ["docker.io", "ghcr.io", "quay.io:443", "127.0.0.1:25000", "localhost:5000", "Registry.Example"]


def mirror_sets(target: MirrorTarget) -> list[dict]:
    files = render(target, SOURCES)
    return [yaml.safe_load(files[OPENSHIFT_DIGESTS]), yaml.safe_load(files[OPENSHIFT_TAGS])]


def test_the_mirror_sets_for_a_registry_with_a_prefix_are_valid() -> None:
    documents = mirror_sets(MirrorTarget("https", "registry.internal:5000", "mirror/a__b.c-d"))
    assert [d["kind"] for d in documents] == ["ImageDigestMirrorSet", "ImageTagMirrorSet"]
    assert invalid(documents) == {}


def test_the_mirror_sets_for_a_bare_plain_http_registry_are_valid() -> None:
    assert invalid(mirror_sets(MirrorTarget("http", "10.0.0.5", ""))) == {}


def test_the_mirror_sets_for_a_registry_whose_name_needs_a_digest_are_valid() -> None:
    assert invalid(mirror_sets(MirrorTarget("https", "r.internal", "/".join(["x" * 60] * 5)))) == {}


def test_the_schemas_refuse_what_the_api_server_would() -> None:
    # Without this, a validator that accepts anything would pass the tests above.
    def digest_set(name: str, entries: list[dict]) -> dict:
        return {
            "apiVersion": "config.openshift.io/v1",
            "kind": "ImageDigestMirrorSet",
            "metadata": {"name": name},
            "spec": {"imageDigestMirrors": entries},
        }

    verdicts = schema_errors(
        [
            digest_set("bad-mirror", [{"source": "docker.io", "mirrors": ["https://registry.internal/mirror"]}]),
            digest_set("no-source", [{"mirrors": ["registry.internal"]}]),
            digest_set("Bad_Name", [{"source": "docker.io"}]),
            {"apiVersion": "config.openshift.io/v1", "kind": "ImageTagMirrorSet", "metadata": {"name": "no-spec"}},
        ]
    )
    assert verdicts["config.openshift.io/v1 ImageDigestMirrorSet/bad-mirror"] == [
        "data/spec/imageDigestMirrors/0/mirrors/0 must match pattern "
        + '"^((?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:(?:\\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*'
        + '[a-zA-Z0-9]))+)?(?::[0-9]+)?)(?:(?:/[a-z0-9]+(?:(?:(?:[._]|__|[-]*)[a-z0-9]+)+)?)+)?$"'
    ]
    assert verdicts["config.openshift.io/v1 ImageDigestMirrorSet/no-source"] == [
        "data/spec/imageDigestMirrors/0 must have required property 'source'"
    ]
    assert verdicts["config.openshift.io/v1 ImageDigestMirrorSet/Bad_Name"] == [
        "data/metadata/name must be a DNS-1123 subdomain"
    ]
    assert verdicts["config.openshift.io/v1 ImageTagMirrorSet/no-spec"] == ["data must have required property 'spec'"]
