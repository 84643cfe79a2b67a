"""Manifests and indexes parsed strictly from their exact bytes; ambiguous or unsupported documents are refused."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from mirror.errors import InvalidDocumentError
from mirror.oci import mediatypes as mt
from mirror.oci.document import parse_manifest
from mirror.oci.platform import Platform

CONFIG_DIGEST = "sha256:" + "c" * 64
LAYER_DIGEST = "sha256:" + "1" * 64
CHILD_DIGEST = "sha256:" + "a" * 64
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"


def descriptor(media_type: str, digest: str, size: int = 10, **extra: Any) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": digest, "size": size, **extra}


def oci_manifest(**overrides: Any) -> dict[str, Any]:
    body = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "config": descriptor("application/vnd.oci.image.config.v1+json", CONFIG_DIGEST, 100),
        "layers": [descriptor(OCI_LAYER, LAYER_DIGEST, 2000)],
    }
    body.update(overrides)
    return body


def oci_index(**overrides: Any) -> dict[str, Any]:
    body = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_INDEX,
        "manifests": [
            descriptor(mt.OCI_MANIFEST, CHILD_DIGEST, 500, platform={"os": "linux", "architecture": "amd64"}),
            descriptor(
                mt.OCI_MANIFEST,
                "sha256:" + "b" * 64,
                501,
                platform={"os": "linux", "architecture": "arm64", "variant": "v8"},
            ),
        ],
    }
    body.update(overrides)
    return body


def docker_manifest(**overrides: Any) -> dict[str, Any]:
    body = {
        "schemaVersion": 2,
        "mediaType": mt.DOCKER_MANIFEST,
        "config": descriptor("application/vnd.docker.container.image.v1+json", CONFIG_DIGEST, 100),
        "layers": [descriptor(DOCKER_LAYER, LAYER_DIGEST, 2000)],
    }
    body.update(overrides)
    return body


def docker_list(**overrides: Any) -> dict[str, Any]:
    body = {
        "schemaVersion": 2,
        "mediaType": mt.DOCKER_LIST,
        "manifests": [
            descriptor(mt.DOCKER_MANIFEST, CHILD_DIGEST, 500, platform={"os": "linux", "architecture": "amd64"}),
        ],
    }
    body.update(overrides)
    return body


def encode(body: Any) -> bytes:
    return json.dumps(body, indent=3).encode()


def parse(raw: bytes, declared: str | None = None):
    return parse_manifest(raw, declared_type=declared, where="ghcr.io/a/b@test")


def refuse(raw: bytes, declared: str | None = None) -> InvalidDocumentError:
    with pytest.raises(InvalidDocumentError) as caught:
        parse(raw, declared)
    assert caught.value.exit_code == 3
    return caught.value


# --- accepted documents ---------------------------------------------------------------------------------------


def test_oci_manifest_gives_config_and_layers():
    document = parse(encode(oci_manifest()), mt.OCI_MANIFEST)
    assert (document.media_type, document.config.digest, [d.digest for d in document.layers]) == (
        mt.OCI_MANIFEST,
        CONFIG_DIGEST,
        [LAYER_DIGEST],
    )


def test_manifest_digest_and_size_are_of_the_exact_bytes():
    raw = encode(oci_manifest())
    document = parse(raw, mt.OCI_MANIFEST)
    assert (document.digest, document.size, document.raw) == (
        "sha256:" + hashlib.sha256(raw).hexdigest(),
        len(raw),
        raw,
    )


def test_manifest_blobs_are_config_then_layers():
    document = parse(encode(oci_manifest()), mt.OCI_MANIFEST)
    assert [(d.digest, d.size) for d in document.blobs] == [(CONFIG_DIGEST, 100), (LAYER_DIGEST, 2000)]


def test_oci_manifest_without_media_type_field_takes_the_declared_type():
    body = oci_manifest()
    del body["mediaType"]
    assert parse(encode(body), mt.OCI_MANIFEST).media_type == mt.OCI_MANIFEST


def test_layer_with_unknown_media_type_is_accepted():
    body = oci_manifest(layers=[descriptor("application/vnd.example.unknown", LAYER_DIGEST)])
    assert parse(encode(body), mt.OCI_MANIFEST).layers[0].media_type == "application/vnd.example.unknown"


def test_oci_index_gives_children_with_platforms():
    document = parse(encode(oci_index()), mt.OCI_INDEX)
    assert document.is_index
    assert [(d.digest, d.platform) for d in document.manifests] == [
        (CHILD_DIGEST, Platform("linux", "amd64")),
        ("sha256:" + "b" * 64, Platform("linux", "arm64", "v8")),
    ]


def test_docker_manifest_is_recognised_from_its_field():
    document = parse(encode(docker_manifest()))
    assert (document.media_type, document.is_index, len(document.layers)) == (mt.DOCKER_MANIFEST, False, 1)


def test_docker_list_is_recognised_from_its_field():
    document = parse(encode(docker_list()), mt.DOCKER_LIST)
    assert (document.media_type, document.is_index, document.manifests[0].digest) == (
        mt.DOCKER_LIST,
        True,
        CHILD_DIGEST,
    )


def test_descriptor_annotations_and_artifact_type_are_kept():
    layer = descriptor(OCI_LAYER, LAYER_DIGEST, annotations={"a": "b"}, artifactType="application/x.test")
    document = parse(encode(oci_manifest(layers=[layer])), mt.OCI_MANIFEST)
    assert (dict(document.layers[0].annotations), document.layers[0].artifact_type) == (
        {"a": "b"},
        "application/x.test",
    )


# --- refused documents ----------------------------------------------------------------------------------------


def test_duplicate_json_key_is_refused():
    raw = encode(oci_manifest()).replace(b'"schemaVersion": 2', b'"schemaVersion": 2, "schemaVersion": 2', 1)
    assert "duplicate" in str(refuse(raw, mt.OCI_MANIFEST))


def test_duplicate_key_inside_a_descriptor_is_refused():
    raw = encode(oci_manifest()).replace(
        f'"digest": "{LAYER_DIGEST}"'.encode(), f'"digest": "{LAYER_DIGEST}", "digest": "{CHILD_DIGEST}"'.encode()
    )
    assert "duplicate" in str(refuse(raw, mt.OCI_MANIFEST))


@pytest.mark.parametrize(
    "declared",
    [pytest.param(mt.OCI_MANIFEST, id="declared-manifest"), pytest.param(mt.OCI_INDEX, id="declared-index")],
)
def test_document_with_both_manifests_and_layers_is_refused(declared):
    # CVE-2021-41190: one reader sees an image, another an index.
    body = oci_manifest(manifests=oci_index()["manifests"])
    del body["mediaType"]
    assert "ambiguous" in str(refuse(encode(body), declared))


def test_index_with_config_is_refused():
    body = oci_index(config=oci_manifest()["config"])
    refuse(encode(body), mt.OCI_INDEX)


@pytest.mark.parametrize(
    ("body", "declared"),
    [
        pytest.param(oci_manifest(), mt.OCI_INDEX, id="manifest-declared-as-index"),
        pytest.param(oci_index(), mt.OCI_MANIFEST, id="index-declared-as-manifest"),
        pytest.param(docker_manifest(), mt.OCI_MANIFEST, id="docker-declared-as-oci"),
        pytest.param(oci_manifest(), mt.DOCKER_MANIFEST, id="oci-declared-as-docker"),
    ],
)
def test_media_type_field_differing_from_declared_type_is_refused(body, declared):
    assert "differs" in str(refuse(encode(body), declared))


@pytest.mark.parametrize(
    ("body", "declared"),
    [
        pytest.param(docker_manifest(), mt.DOCKER_MANIFEST, id="docker-manifest"),
        pytest.param(docker_list(), mt.DOCKER_LIST, id="docker-list"),
    ],
)
def test_docker_document_without_media_type_field_is_refused(body, declared):
    del body["mediaType"]
    assert "mediaType" in str(refuse(encode(body), declared))


def test_document_with_no_media_type_anywhere_is_refused():
    body = oci_manifest()
    del body["mediaType"]
    refuse(encode(body), None)


@pytest.mark.parametrize("declared", [mt.DOCKER_SCHEMA1, mt.DOCKER_SCHEMA1_SIGNED], ids=["schema1", "schema1-signed"])
def test_schema1_media_type_is_refused(declared):
    body = docker_manifest()
    del body["mediaType"]
    assert "schema 1" in str(refuse(encode(body), declared))


def test_real_schema1_document_is_refused():
    body = {
        "schemaVersion": 1,
        "name": "library/x",
        "tag": "1",
        "architecture": "amd64",
        "fsLayers": [{"blobSum": LAYER_DIGEST}],
        "history": [{"v1Compatibility": "{}"}],
    }
    refuse(encode(body), mt.DOCKER_SCHEMA1_SIGNED)


@pytest.mark.parametrize(
    "version",
    [
        pytest.param(1, id="one"),
        pytest.param(3, id="three"),
        pytest.param("2", id="string"),
        pytest.param(None, id="null"),
        pytest.param(True, id="bool"),
    ],
)
def test_schema_version_other_than_2_is_refused(version):
    assert "schemaVersion" in str(refuse(encode(oci_manifest(schemaVersion=version)), mt.OCI_MANIFEST))


def test_missing_schema_version_is_refused():
    body = oci_manifest()
    del body["schemaVersion"]
    refuse(encode(body), mt.OCI_MANIFEST)


def test_unsupported_media_type_is_refused():
    refuse(encode(oci_manifest(mediaType="application/vnd.example.other+json")), None)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        pytest.param({"digest": "sha256:" + "A" * 64}, "layers[0].digest", id="digest-uppercase"),
        pytest.param({"digest": "sha256:" + "a" * 63}, "layers[0].digest", id="digest-short"),
        pytest.param({"digest": "sha256:../../etc/passwd"}, "layers[0].digest", id="digest-traversal"),
        pytest.param({"digest": "sha512:" + "a" * 128}, "layers[0].digest", id="digest-sha512"),
        pytest.param({"digest": None}, "layers[0].digest", id="digest-missing"),
        pytest.param({"size": -1}, "layers[0].size", id="size-negative"),
        pytest.param({"size": True}, "layers[0].size", id="size-bool"),
        pytest.param({"size": 10.0}, "layers[0].size", id="size-float"),
        pytest.param({"size": "10"}, "layers[0].size", id="size-string"),
        pytest.param({"mediaType": ""}, "layers[0].mediaType", id="media-type-empty"),
        pytest.param({"urls": ["https://foreign.example.com/layer"]}, "urls", id="foreign-layer-urls"),
        pytest.param({"annotations": {"a": 1}}, "layers[0].annotations", id="annotation-not-string"),
    ],
)
def test_bad_layer_descriptor_is_refused(change, expected):
    layer = {**descriptor(OCI_LAYER, LAYER_DIGEST), **change}
    assert expected in str(refuse(encode(oci_manifest(layers=[layer])), mt.OCI_MANIFEST))


def test_bad_digest_in_index_entry_is_refused():
    body = oci_index()
    body["manifests"][1]["digest"] = "sha256:../../x"
    assert "manifests[1].digest" in str(refuse(encode(body), mt.OCI_INDEX))


def test_bad_config_descriptor_is_refused():
    body = oci_manifest(config={"mediaType": "x", "digest": CONFIG_DIGEST, "size": -5})
    assert "config.size" in str(refuse(encode(body), mt.OCI_MANIFEST))


def test_manifest_without_config_is_refused():
    body = oci_manifest()
    del body["config"]
    refuse(encode(body), mt.OCI_MANIFEST)


def test_layers_not_a_list_is_refused():
    refuse(encode(oci_manifest(layers={"0": descriptor(OCI_LAYER, LAYER_DIGEST)})), mt.OCI_MANIFEST)


def test_index_manifests_not_a_list_is_refused():
    refuse(encode(oci_index(manifests=None)), mt.OCI_INDEX)


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"{", id="truncated"),
        pytest.param(b'{"a": "\xff"}', id="not-utf8"),
        pytest.param(b"schemaVersion: 2", id="yaml"),
    ],
)
def test_not_json_is_refused(raw):
    assert "JSON" in str(refuse(raw, mt.OCI_MANIFEST))


@pytest.mark.parametrize(
    "raw",
    [pytest.param(b"[]", id="list"), pytest.param(b'"manifest"', id="string"), pytest.param(b"2", id="number")],
)
def test_json_that_is_not_an_object_is_refused(raw):
    assert "object" in str(refuse(raw, mt.OCI_MANIFEST))


def test_schema_version_as_a_float_is_refused():
    raw = json.dumps(oci_manifest(schemaVersion=2.0)).encode()
    with pytest.raises(InvalidDocumentError, match="schemaVersion"):
        parse_manifest(raw, declared_type=mt.OCI_MANIFEST, where="m")


@pytest.mark.parametrize(
    "encode",
    [lambda text: b"\xef\xbb\xbf" + text.encode(), lambda text: text.encode("utf-16")],
    ids=["utf-8-with-bom", "utf-16"],
)
def test_json_that_is_not_plain_utf8_is_refused(encode):
    # Go's readers take UTF-8 only; a document that another reader decodes differently is refused.
    with pytest.raises(InvalidDocumentError):
        parse_manifest(encode(json.dumps(oci_manifest())), declared_type=mt.OCI_MANIFEST, where="m")
