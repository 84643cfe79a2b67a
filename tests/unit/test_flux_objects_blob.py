"""The Flux objects blob: built within its byte limit, and read back as bundle content (exit 3 when malformed)."""

from __future__ import annotations

import json

import pytest

from mirror.errors import InvalidDocumentError, UsageError
from mirror.flux.blob import objects_blob, parse_objects_blob
from mirror.flux.objects import object_from_document

REPOSITORY = {
    "apiVersion": "source.toolkit.fluxcd.io/v1",
    "kind": "HelmRepository",
    "metadata": {"name": "repo", "namespace": "flux-system"},
    "spec": {"url": "https://charts.example"},
}


def objects(count: int) -> list:
    documents = [{**REPOSITORY, "metadata": {"name": f"repo{i}", "namespace": "flux-system"}} for i in range(count)]
    return [object_from_document(d, f"repo{i}.yaml", 0) for i, d in enumerate(documents)]


def test_the_blob_is_the_sorted_compact_json_document_it_always_was():
    listed = objects(2)
    expected = json.dumps(
        {
            "apiVersion": "mirror/v1",
            "kind": "FluxObjects",
            "objects": [{"file": o.file, "index": o.index, "object": o.body} for o in listed],
        },
        sort_keys=True,
        separators=(",", ":"),
    ).encode()
    assert objects_blob(listed, max_bytes=10_000, where="fleet") == expected


def test_a_blob_exactly_at_the_limit_is_built():
    size = len(objects_blob(objects(3), max_bytes=10_000, where="fleet"))
    assert len(objects_blob(objects(3), max_bytes=size, where="fleet")) == size


def test_a_blob_over_the_limit_is_refused_naming_the_fleet_and_the_limit():
    size = len(objects_blob(objects(3), max_bytes=10_000, where="fleet"))
    with pytest.raises(UsageError) as caught:
        objects_blob(objects(3), max_bytes=size - 1, where="ms.yaml: spec.flux[0]")
    assert caught.value.exit_code == 2
    assert "ms.yaml: spec.flux[0]" in caught.value.message and f"{size - 1} bytes" in caught.value.message


def test_the_blob_reads_back_into_the_same_objects():
    listed = objects(2)
    assert parse_objects_blob(objects_blob(listed, max_bytes=10_000, where="fleet"), "fleet") == listed


@pytest.mark.parametrize(
    "blob",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b"not json",
        b'{"kind": "FluxObjects", "objects": [5]}',
        b'{"kind": "FluxObjects", "objects": [{"file": 5, "index": 0, "object": {}}]}',
        b'{"kind": "FluxObjects", "objects": [{"file": "a.yaml", "index": "x", "object": {}}]}',
    ],
    ids=["deep", "not-json", "item-not-an-object", "file-not-a-string", "index-not-an-integer"],
)
def test_a_malformed_blob_from_a_bundle_is_refused_with_exit_3(blob):
    with pytest.raises(InvalidDocumentError) as caught:
        parse_objects_blob(blob, "fleet")
    assert caught.value.exit_code == 3
