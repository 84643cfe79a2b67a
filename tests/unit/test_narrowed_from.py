"""narrowed_from: whether an index the collector narrowed to some platforms is the upstream index, signed upstream,
less some of its children; pure, for checking a narrowed index against the signatures of its upstream."""

from __future__ import annotations

import json

from mirror.collector.images import _narrow_index
from mirror.oci import mediatypes as mt
from mirror.oci.document import ManifestDocument, parse_manifest
from mirror.oci.platform import parse_platform
from mirror.supplychain.narrowing import narrowed_from


def _entry(arch: str, digest_char: str) -> dict[str, object]:
    return {
        "mediaType": mt.OCI_MANIFEST,
        "digest": "sha256:" + digest_char * 64,
        "size": 500,
        "platform": {"os": "linux", "architecture": arch},
    }


UPSTREAM_BODY = {
    "schemaVersion": 2,
    "mediaType": mt.OCI_INDEX,
    "manifests": [_entry("amd64", "a"), _entry("arm64", "b"), _entry("s390x", "c")],
    "annotations": {"org.opencontainers.image.version": "1.0"},
}
UPSTREAM = json.dumps(UPSTREAM_BODY).encode()


def _index(body: dict[str, object]) -> ManifestDocument:
    return parse_manifest(json.dumps(body).encode(), declared_type=mt.OCI_INDEX, where="test")


def _narrowed() -> ManifestDocument:
    upstream = parse_manifest(UPSTREAM, declared_type=None, where="upstream")
    return _narrow_index(upstream, (parse_platform("linux/amd64"), parse_platform("linux/s390x")), "test")


def test_an_index_the_collector_narrowed_is_narrowed_from_its_upstream_index():
    assert narrowed_from(_narrowed(), UPSTREAM)


def test_the_upstream_index_itself_is_narrowed_from_itself():
    assert narrowed_from(parse_manifest(UPSTREAM, declared_type=None, where="upstream"), UPSTREAM)


def test_an_index_with_a_child_the_upstream_index_does_not_list_is_not_narrowed_from_it():
    body = {**UPSTREAM_BODY, "manifests": [_entry("amd64", "a"), _entry("arm64", "d")]}
    assert not narrowed_from(_index(body), UPSTREAM)


def test_an_index_whose_child_is_described_otherwise_is_not_narrowed_from_it():
    changed = {**_entry("amd64", "a"), "size": 501}
    assert not narrowed_from(_index({**UPSTREAM_BODY, "manifests": [changed]}), UPSTREAM)


def test_an_index_with_other_annotations_is_not_narrowed_from_it():
    body = {**UPSTREAM_BODY, "manifests": [_entry("amd64", "a")], "annotations": {"x": "y"}}
    assert not narrowed_from(_index(body), UPSTREAM)


def test_an_index_listing_a_child_twice_is_not_narrowed_from_it():
    body = {**UPSTREAM_BODY, "manifests": [_entry("amd64", "a"), _entry("amd64", "a")]}
    assert not narrowed_from(_index(body), UPSTREAM)


def test_bytes_that_are_not_an_index_narrow_nothing():
    image = {"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST, "config": _entry("amd64", "a"), "layers": []}
    assert not narrowed_from(_narrowed(), json.dumps(image).encode())
    assert not narrowed_from(_narrowed(), b"not json")
