"""An import streams its big blobs into upload sessions while it hashes them, and commits nothing until the whole
bundle has verified (issue 19): no finished upload, mount, manifest or tag before the last byte has hashed right.

A counting proxy in front of the real plain-HTTP registry of the services records every request: a corrupt
bundle's bytes reach upload sessions (the overlap) and yet nothing of it is visible on the registry afterwards,
and a good bundle's chunks all go up before the first upload is finished. See docs/importer.md ("The
transaction").
"""

from __future__ import annotations

import subprocess
import uuid
from collections import Counter
from pathlib import Path

import httpx
import pytest

from mirror.limits import DEFAULT_LIMITS
from tests.conftest import MIRROR
from tests.support.benchcorpus import Pushed, Pusher, tar_layer
from tests.support.hostile import HostileServer, Request
from tests.support.hostile.forwarding import forward_to
from tests.support.importrequests import request_kind
from tests.support.mirrorsets import write_mirrorset

BIG = DEFAULT_LIMITS.stream_upload_min_bytes + 1024 * 1024  # streamed while it is hashed
INTEGRITY_EXIT = 3
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def collect(services, work: Path, images: list[Pushed]) -> Path:
    manifest = write_mirrorset(
        work / "m.yaml", [p.reference for p in images], registries={services.upstream: {"plainHTTP": True}}
    )
    out = work / "bundle"
    subprocess.run([MIRROR, "collect", str(manifest), "-o", str(out), "-q"], check=True)
    return out


def blob_file(bundle: Path, digest: str) -> Path:
    return bundle / "blobs" / "sha256" / digest.removeprefix("sha256:")


def corrupt_near_the_end(path: Path) -> None:
    """One byte flipped 100 bytes before the end: sizes still match, only hashing the whole file tells."""
    with path.open("r+b") as handle:
        handle.seek(-100, 2)
        byte = handle.read(1)
        handle.seek(-100, 2)
        handle.write(bytes([byte[0] ^ 0xFF]))


def layer_digests(services, image: Pushed) -> list[str]:
    repository, tag = image.repository, image.reference.rsplit(":", 1)[1]
    response = httpx.get(
        f"http://{services.upstream}/v2/{repository}/manifests/{tag}",
        headers={"Accept": OCI_MANIFEST},
    )
    manifest = response.json()
    return [manifest["config"]["digest"], *(layer["digest"] for layer in manifest["layers"])]


@pytest.fixture(scope="module")
def pushed(services) -> dict[str, Pushed]:
    """Two images of two random layers each, the first layer big enough to be streamed."""
    prefix = f"overlap{uuid.uuid4().hex[:8]}"
    with Pusher(services.upstream) as pusher:
        return {
            name: pusher.image(f"{prefix}/{name}", "1", [tar_layer(BIG, "big.bin"), tar_layer(4096)])
            for name in ("first", "second")
        }


@pytest.fixture
def proxy(services):
    with HostileServer(forward_to(f"http://{services.upstream}"), max_body_bytes=1024 * 1024 * 1024) as server:
        yield server


def import_through(mirror_cli, bundle: Path, proxy: HostileServer, prefix: str, *flags: str):
    before = len(proxy.requests)
    result = mirror_cli("import", bundle, "--registry", f"{proxy.url}/{prefix}", "--allow-unsigned", "-q", *flags)
    return result, proxy.requests[before:]


def kinds(requests: list[Request]) -> Counter[str]:
    return Counter(request_kind(r) for r in requests)


def on_registry(services, prefix: str, image: Pushed, digests: list[str]) -> dict[str, int]:
    """What the target registry answers for the image's tag list, its tag, and each of its blobs."""
    base = f"http://{services.upstream}/v2/{prefix}/{image.repository}"
    answers = {
        "tags": httpx.get(f"{base}/tags/list").status_code,
        "manifest": httpx.head(f"{base}/manifests/1", headers={"Accept": OCI_MANIFEST}).status_code,
    }
    answers |= {digest: httpx.head(f"{base}/blobs/{digest}").status_code for digest in digests}
    return answers


def test_a_big_layer_corrupt_in_its_last_bytes_is_refused_and_leaves_nothing_on_the_registry(
    mirror_cli, services, pushed, proxy, tmp_path
) -> None:
    image = pushed["first"]
    digests = layer_digests(services, image)
    bundle = collect(services, tmp_path, [image])
    corrupt_near_the_end(blob_file(bundle, digests[1]))
    prefix = f"t{uuid.uuid4().hex[:8]}"

    result, _ = import_through(mirror_cli, bundle, proxy, prefix)

    assert result.exit_code == INTEGRITY_EXIT, result.stderr
    assert "FILE_DIGEST" in result.stderr
    assert set(on_registry(services, prefix, image, digests).values()) == {404}


def test_a_refused_bundle_had_its_big_layer_streamed_but_no_upload_finished(
    mirror_cli, services, pushed, proxy, tmp_path
) -> None:
    """The overlap, shown structurally: the bytes went up while they were hashed, the commit never came."""
    image = pushed["first"]
    bundle = collect(services, tmp_path, [image])
    corrupt_near_the_end(blob_file(bundle, layer_digests(services, image)[1]))

    result, requests = import_through(mirror_cli, bundle, proxy, f"t{uuid.uuid4().hex[:8]}")

    assert result.exit_code == INTEGRITY_EXIT, result.stderr
    counted = kinds(requests)
    assert counted["PATCH upload"] >= 1, counted
    assert counted["PUT upload"] == 0 and counted["PUT manifest"] == 0, counted


def test_a_corrupt_second_image_leaves_the_first_images_blobs_uncommitted(
    mirror_cli, services, pushed, proxy, tmp_path
) -> None:
    first, second = pushed["first"], pushed["second"]
    first_digests = layer_digests(services, first)
    bundle = collect(services, tmp_path, [first, second])
    corrupt_near_the_end(blob_file(bundle, layer_digests(services, second)[1]))
    prefix = f"t{uuid.uuid4().hex[:8]}"

    result, _ = import_through(mirror_cli, bundle, proxy, prefix)

    assert result.exit_code == INTEGRITY_EXIT, result.stderr
    assert set(on_registry(services, prefix, first, first_digests).values()) == {404}


def test_a_good_bundle_sends_every_chunk_before_it_finishes_any_upload(
    mirror_cli, services, pushed, proxy, tmp_path
) -> None:
    images = [pushed["first"], pushed["second"]]
    bundle = collect(services, tmp_path, images)
    prefix = f"t{uuid.uuid4().hex[:8]}"

    result, requests = import_through(mirror_cli, bundle, proxy, prefix, "--jobs", "1")

    assert result.exit_code == 0, result.stderr
    order = [request_kind(r) for r in requests]
    assert order.count("PATCH upload") >= 2, order  # each big layer streamed
    last_chunk = max(i for i, kind in enumerate(order) if kind == "PATCH upload")
    first_commit = min(i for i, kind in enumerate(order) if kind in ("PUT upload", "PUT manifest"))
    assert last_chunk < first_commit, order
    for image in images:
        answers = on_registry(services, prefix, image, layer_digests(services, image))
        assert set(answers.values()) == {200}, answers


def test_a_second_import_of_a_good_bundle_streams_nothing(mirror_cli, services, pushed, proxy, tmp_path) -> None:
    bundle = collect(services, tmp_path, [pushed["first"]])
    prefix = f"t{uuid.uuid4().hex[:8]}"
    first, _ = import_through(mirror_cli, bundle, proxy, prefix)
    assert first.exit_code == 0, first.stderr

    again, requests = import_through(mirror_cli, bundle, proxy, prefix)

    assert again.exit_code == 0, again.stderr
    counted = kinds(requests)
    assert counted["PATCH upload"] == 0 and counted["PUT upload"] == 0, counted


def test_a_dry_run_opens_no_upload_session(mirror_cli, services, pushed, proxy, tmp_path) -> None:
    bundle = collect(services, tmp_path, [pushed["first"]])

    result, requests = import_through(mirror_cli, bundle, proxy, f"t{uuid.uuid4().hex[:8]}", "--dry-run")

    assert result.exit_code == 0, result.stderr
    assert not [r for r in requests if r.method in ("POST", "PATCH", "PUT")], kinds(requests)
