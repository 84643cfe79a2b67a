"""`mirror serve` speaks the read side of the distribution API from verified bundles: manifests by tag and digest,
blobs (with Range), tags/list and _catalog (paginated), referrers; every write is refused, every unknown name is
NAME_UNKNOWN, and a request path is parsed by the distribution grammar, never used to open a file."""

from __future__ import annotations

import hashlib
import json
import socket

import httpx
import pytest

from mirror.oci import mediatypes as mt
from mirror.supplychain.attached import FOUND_COSIGN_TAG, FOUND_TAG_SCHEMA, SPDX_JSON, cosign_tag, tag_schema_tag
from tests.support.attachedcraft import cosign_signature, other_referrer, sbom_referrer, spdx
from tests.support.servebundles import ChainBundle, layer_of, manifest_of, serving
from tests.support.signedbundles import make_trust, sign

APP = "registry.example/team/app:1.0"
TOOL = "registry.example/team/tool:2.1"
LAYER = bytes(range(256)) * 40  # 10 KiB


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> ChainBundle:
    root = tmp_path_factory.mktemp("serve-api")
    trust = make_trust(root / "trust")
    bundle = ChainBundle(root / "bundle", "night-1")
    bundle.image_with_layer(APP, LAYER)
    bundle.image(TOOL)
    for n in range(5):
        bundle.image(f"registry.example/team/many:v{n}")
    bundle.chart("podinfo", "6.5.0+build.1")
    subject, _ = manifest_of(bundle, APP)
    bundle.attach(APP, sbom_referrer(subject, spdx(2)), found=FOUND_TAG_SCHEMA)
    bundle.attach(APP, other_referrer(subject, "application/vnd.example.note"), found=FOUND_TAG_SCHEMA)
    bundle.attach(APP, cosign_signature(subject), found=FOUND_COSIGN_TAG)
    bundle.finish()
    sign(bundle.root, trust)
    bundle.policy = trust.policy  # type: ignore[attr-defined]
    return bundle


@pytest.fixture(scope="module")
def served(bundle):
    with serving([bundle.root], trust=bundle.policy) as running:
        yield running


@pytest.fixture(scope="module")
def client(served):
    with httpx.Client(base_url=served.url, timeout=10) as http:
        yield http


def _error(response: httpx.Response) -> str:
    body = response.json()
    assert set(body) == {"errors"} and len(body["errors"]) == 1
    return str(body["errors"][0]["code"])


def test_the_base_endpoint_answers_200_with_the_distribution_api_version(client):
    response = client.get("/v2/")

    assert response.status_code == 200
    assert response.headers["Docker-Distribution-API-Version"] == "registry/2.0"


def test_a_manifest_by_tag_is_its_signed_bytes_with_its_media_type_and_digest(client, bundle):
    digest, raw = manifest_of(bundle, APP)

    response = client.get("/v2/team/app/manifests/1.0", headers={"Accept": mt.ACCEPT})

    assert response.status_code == 200
    assert response.content == raw
    assert response.headers["Content-Type"] == mt.OCI_MANIFEST
    assert response.headers["Docker-Content-Digest"] == digest


def test_a_manifest_by_digest_is_served_in_its_repository(client, bundle):
    digest, raw = manifest_of(bundle, TOOL)

    response = client.get(f"/v2/team/tool/manifests/{digest}")

    assert response.status_code == 200 and response.content == raw


def test_head_of_a_manifest_gives_its_length_and_digest_without_a_body(client, bundle):
    digest, raw = manifest_of(bundle, APP)

    response = client.head("/v2/team/app/manifests/1.0")

    assert response.status_code == 200 and response.content == b""
    assert response.headers["Content-Length"] == str(len(raw))
    assert response.headers["Docker-Content-Digest"] == digest


def test_a_chart_is_served_at_its_landing_name_with_the_version_as_tag(client):
    response = client.get("/v2/charts/podinfo/manifests/6.5.0_build.1")

    assert response.status_code == 200
    assert json.loads(response.content)["config"]["mediaType"] == "application/vnd.cncf.helm.config.v1+json"


def test_a_blob_is_served_whole_with_its_digest(client, bundle):
    digest, _ = layer_of(bundle, APP)

    response = client.get(f"/v2/team/app/blobs/{digest}")

    assert response.status_code == 200
    assert response.content == LAYER
    assert response.headers["Docker-Content-Digest"] == digest
    assert response.headers["Accept-Ranges"] == "bytes"


def test_head_of_a_blob_gives_its_length(client, bundle):
    digest, _ = layer_of(bundle, APP)

    response = client.head(f"/v2/team/app/blobs/{digest}")

    assert response.status_code == 200 and response.headers["Content-Length"] == str(len(LAYER))


@pytest.mark.parametrize(
    ("header", "first", "last"),
    [
        ("bytes=100-199", 100, 199),
        ("bytes=10000-", 10000, len(LAYER) - 1),
        ("bytes=-24", len(LAYER) - 24, len(LAYER) - 1),
    ],
    ids=["closed", "open-ended", "suffix"],
)
def test_a_blob_range_is_answered_206_with_its_content_range(client, bundle, header, first, last):
    digest, _ = layer_of(bundle, APP)

    response = client.get(f"/v2/team/app/blobs/{digest}", headers={"Range": header})

    assert response.status_code == 206
    assert response.content == LAYER[first : last + 1]
    assert response.headers["Content-Range"] == f"bytes {first}-{last}/{len(LAYER)}"


def test_a_range_past_the_end_of_the_blob_is_416(client, bundle):
    digest, _ = layer_of(bundle, APP)

    response = client.get(f"/v2/team/app/blobs/{digest}", headers={"Range": f"bytes={len(LAYER)}-"})

    assert response.status_code == 416
    assert response.headers["Content-Range"] == f"bytes */{len(LAYER)}"


def test_a_blob_of_another_repository_is_blob_unknown(client, bundle):
    digest, _ = layer_of(bundle, APP)

    response = client.get(f"/v2/team/tool/blobs/{digest}")

    assert response.status_code == 404 and _error(response) == "BLOB_UNKNOWN"


def test_tags_list_names_every_tag_of_the_repository_sorted(client):
    response = client.get("/v2/team/many/tags/list")

    assert response.json() == {"name": "team/many", "tags": [f"v{n}" for n in range(5)]}


def test_tags_list_pages_with_n_and_last_and_links_the_next_page(client):
    first = client.get("/v2/team/many/tags/list", params={"n": 2})
    second = client.get("/v2/team/many/tags/list", params={"n": 2, "last": "v1"})
    end = client.get("/v2/team/many/tags/list", params={"n": 2, "last": "v3"})

    assert first.json()["tags"] == ["v0", "v1"]
    assert first.headers["Link"] == '</v2/team/many/tags/list?n=2&last=v1>; rel="next"'
    assert second.json()["tags"] == ["v2", "v3"]
    assert end.json()["tags"] == ["v4"] and "Link" not in end.headers


def test_an_invalid_page_size_is_refused(client):
    response = client.get("/v2/team/many/tags/list", params={"n": "lots"})

    assert response.status_code == 400 and _error(response) == "PAGINATION_NUMBER_INVALID"


def test_the_catalog_lists_every_repository_paginated(client):
    everything = client.get("/v2/_catalog").json()
    page = client.get("/v2/_catalog", params={"n": 1, "last": "team/app"})

    assert everything == {"repositories": ["charts/podinfo", "team/app", "team/many", "team/tool"]}
    assert page.json() == {"repositories": ["team/many"]}
    assert page.headers["Link"] == '</v2/_catalog?n=1&last=team%2Fmany>; rel="next"'


def test_a_repository_not_in_the_bundles_is_name_unknown(client):
    for path in (
        "/v2/team/nothere/manifests/1.0",
        "/v2/team/nothere/tags/list",
        "/v2/team/nothere/blobs/" + _digest(b""),
    ):
        response = client.get(path)
        assert response.status_code == 404 and _error(response) == "NAME_UNKNOWN", path


def test_an_unknown_tag_or_digest_is_manifest_unknown(client):
    for reference in ("9.9", _digest(b"nothing")):
        response = client.get(f"/v2/team/app/manifests/{reference}")
        assert response.status_code == 404 and _error(response) == "MANIFEST_UNKNOWN"


def test_an_unknown_blob_is_blob_unknown(client):
    response = client.get(f"/v2/team/app/blobs/{_digest(b'nothing')}")

    assert response.status_code == 404 and _error(response) == "BLOB_UNKNOWN"


@pytest.mark.parametrize("method", ["PUT", "POST", "PATCH", "DELETE"])
def test_every_write_method_is_refused_as_unsupported(client, bundle, method):
    digest, raw = manifest_of(bundle, APP)
    for path in ("/v2/team/app/manifests/1.0", f"/v2/team/app/blobs/{digest}", "/v2/team/app/blobs/uploads/"):
        response = client.request(method, path, content=raw)
        assert response.status_code == 405 and _error(response) == "UNSUPPORTED", path


def test_the_bundle_is_unchanged_after_every_write_was_refused(client, bundle):
    digest, raw = manifest_of(bundle, APP)
    client.put("/v2/team/app/manifests/2.0", content=raw, headers={"Content-Type": mt.OCI_MANIFEST})
    client.delete(f"/v2/team/app/manifests/{digest}")

    assert client.get("/v2/team/app/manifests/2.0").status_code == 404
    assert client.get(f"/v2/team/app/manifests/{digest}").content == raw


def _raw_request(url: str, target: bytes, method: bytes = b"GET") -> tuple[int, bytes]:
    """Send a request line exactly as given (no client normalises it); the status and body."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(method + b" " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


@pytest.mark.parametrize(
    "target",
    [
        b"/v2/../inventory.json",
        b"/v2/team/app/../../inventory.json",
        b"/v2/team/app/blobs/../../../inventory.json",
        b"/v2/team/app/blobs/sha256:..%2F..%2Finventory.json",
        b"/v2/%2e%2e/%2e%2e/blobs/sha256:" + b"a" * 64,
        b"/v2/team%2F..%2Fapp/manifests/1.0",
        b"/v2/team/app/manifests/1.0%00",
        b"/v2/team/app/manifests/%ff%fe",
        b"/v2/Team/App/manifests/1.0",
        b"/v2/" + b"a/" * 3000 + b"manifests/1.0",
        b"/inventory.json",
        b"/blobs/sha256/" + b"a" * 64,
        b"http://elsewhere.example/v2/team/app/manifests/1.0",
        b"http://[::1/v2/team/app/manifests/1.0",
        b"//[x/v2/team/app/manifests/1.0",
    ],
)
def test_a_hostile_path_is_refused_with_an_error_and_never_reads_a_file(served, target):
    status, body = _raw_request(served.url, target)

    assert status in (400, 404)
    assert "errors" in json.loads(body)


def test_a_request_line_longer_than_http_server_reads_is_refused_with_an_error(served):
    status, body = _raw_request(served.url, b"/v2/" + b"a" * 70_000)

    assert status == 414 and json.loads(body)["errors"][0]["code"] == "UNSUPPORTED"


def test_a_method_http_server_does_not_know_is_refused_with_an_error(served):
    status, body = _raw_request(served.url, b"/v2/", method=b"BREW")

    assert status == 501 and json.loads(body)["errors"][0]["code"] == "UNSUPPORTED"


def test_percent_encoded_names_are_read_as_decoded(served, bundle):
    _, raw = manifest_of(bundle, APP)

    status, body = _raw_request(served.url, b"/v2/team%2fapp/manifests/1%2e0")

    assert status == 200 and body == raw


def test_the_referrers_api_lists_the_manifests_attached_to_a_subject(client, bundle):
    subject, _ = manifest_of(bundle, APP)

    response = client.get(f"/v2/team/app/referrers/{subject}")

    assert response.status_code == 200
    assert response.headers["Content-Type"] == mt.OCI_INDEX
    index = response.json()
    assert index["mediaType"] == mt.OCI_INDEX
    assert sorted(d["artifactType"] for d in index["manifests"]) == [SPDX_JSON, "application/vnd.example.note"]


def test_the_referrers_api_filters_by_artifact_type_and_says_so(client, bundle):
    subject, _ = manifest_of(bundle, APP)

    response = client.get(f"/v2/team/app/referrers/{subject}", params={"artifactType": SPDX_JSON})

    assert [d["artifactType"] for d in response.json()["manifests"]] == [SPDX_JSON]
    assert response.headers["OCI-Filters-Applied"] == "artifactType"


def test_the_referrers_of_a_manifest_with_none_is_an_empty_index(client, bundle):
    subject, _ = manifest_of(bundle, TOOL)

    response = client.get(f"/v2/team/tool/referrers/{subject}")

    assert response.status_code == 200 and response.json()["manifests"] == []


def test_the_referrers_of_an_invalid_digest_is_400(client):
    response = client.get("/v2/team/app/referrers/sha256:abc")

    assert response.status_code == 400 and _error(response) == "DIGEST_INVALID"


def test_the_referrers_tag_schema_tag_serves_the_same_list_for_older_clients(client, bundle):
    subject, _ = manifest_of(bundle, APP)
    listed = client.get(f"/v2/team/app/referrers/{subject}").json()["manifests"]

    response = client.get(f"/v2/team/app/manifests/{tag_schema_tag(subject)}")

    assert response.status_code == 200 and response.headers["Content-Type"] == mt.OCI_INDEX
    assert response.json()["manifests"] == listed
    by_digest = client.get(f"/v2/team/app/manifests/{response.headers['Docker-Content-Digest']}")
    assert by_digest.content == response.content


def test_a_cosign_signature_is_served_under_its_cosign_tag(client, bundle):
    subject, _ = manifest_of(bundle, APP)
    signature = next(a for a in bundle.artifacts if a.extra.get("found") == FOUND_COSIGN_TAG)

    response = client.get(f"/v2/team/app/manifests/{cosign_tag(subject, '.sig')}")

    assert response.status_code == 200 and response.headers["Docker-Content-Digest"] == signature.digest


def test_tags_list_includes_the_cosign_and_tag_schema_tags(client, bundle):
    subject, _ = manifest_of(bundle, APP)

    tags = client.get("/v2/team/app/tags/list").json()["tags"]

    assert tags == sorted(["1.0", tag_schema_tag(subject), cosign_tag(subject, ".sig")])


def test_each_request_is_logged_on_one_line_with_method_path_status_and_bytes(served, client, bundle):
    digest, raw = manifest_of(bundle, TOOL)
    client.get(f"/v2/team/tool/manifests/{digest}")

    line = served.logged(lambda line: digest in line)

    assert line.split()[:2] == ["GET", f"/v2/team/tool/manifests/{digest}"]
    assert f" 200 {len(raw)} bytes" in line


def test_a_logged_path_shows_control_characters_escaped(served):
    _raw_request(served.url, b"/v2/team/app/manifests/\x1b[2J")

    served.logged(lambda line: "\\x1b[2J" in line)
    assert not any("\x1b" in line for line in served.log)


def test_the_request_log_can_be_json_lines(bundle):
    with serving([bundle.root], trust=bundle.policy, log_format="json") as running:
        httpx.get(f"{running.url}/v2/team/app/manifests/1.0")
        record = json.loads(running.logged(lambda line: "/v2/team/app/manifests/1.0" in line))

    assert record["event"] == "request"
    assert (record["method"], record["path"], record["status"]) == ("GET", "/v2/team/app/manifests/1.0", 200)


def test_the_server_names_itself_and_no_python_version(client):
    assert client.get("/v2/").headers["Server"] == "mirror-serve"
