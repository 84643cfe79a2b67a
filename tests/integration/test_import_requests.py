"""Requests per blob on import (issue 19): a counting reverse proxy in front of the real plain-HTTP registry of the
services sees every request an import sends. Each authenticated request costs the registry CPU (bcrypt, TLS), so
the count bounds an import of many small images: at most 2.5 requests per blob on a first import, no blob HEAD at
all, no manifest HEAD beyond one per image, and a second import of the same bundle sends only HEADs (one per
image) and the push check. An import interrupted half-way completes on a re-run without uploading a blob twice.
See docs/importer.md ("Requests per blob").
"""

from __future__ import annotations

import subprocess
import uuid
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import MIRROR
from tests.support.benchcorpus import Pusher, push_family
from tests.support.hostile import Answer, HostileServer, Request
from tests.support.hostile.forwarding import forward_to
from tests.support.importrequests import request_kind
from tests.support.mirrorsets import write_mirrorset

IMAGES = 20
BLOBS_PER_IMAGE = 3  # the shared base layer, the image's own layer, its config
MAX_REQUESTS_PER_BLOB = 2.5
PUSH_CHECK = 3  # GET /v2/, then an upload started and cancelled (POST, DELETE): before anything is written


@pytest.fixture(scope="module")
def bundle(services, tmp_path_factory) -> Path:
    """IMAGES small images sharing a base layer, collected into a bundle directory."""
    work = tmp_path_factory.mktemp("import-requests")
    prefix = f"reqs{uuid.uuid4().hex[:8]}"
    with Pusher(services.upstream) as pusher:
        pushed = push_family(pusher, prefix, IMAGES, 4096, 1024)
    manifest = write_mirrorset(
        work / "m.yaml", [p.reference for p in pushed], registries={services.upstream: {"plainHTTP": True}}
    )
    out = work / "bundle"
    subprocess.run([MIRROR, "collect", str(manifest), "-o", str(out), "-q"], check=True)
    return out


@pytest.fixture
def proxy(services):
    with HostileServer(forward_to(f"http://{services.upstream}")) as server:
        yield server


def import_through(mirror_cli, bundle: Path, proxy: HostileServer, prefix: str) -> tuple[dict, Counter[str]]:
    before = len(proxy.requests)
    result = mirror_cli("import", bundle, "--registry", f"{proxy.url}/{prefix}", "--allow-unsigned", "--json", "-q")
    assert result.exit_code == 0, result.stderr
    return dict(result.json()), Counter(request_kind(r) for r in proxy.requests[before:])


def test_a_first_import_sends_at_most_two_and_a_half_requests_per_blob(mirror_cli, bundle, proxy) -> None:
    report, kinds = import_through(mirror_cli, bundle, proxy, f"r{uuid.uuid4().hex[:8]}")
    blobs = IMAGES * BLOBS_PER_IMAGE

    assert report["blobsUploaded"] + report["blobsMounted"] + report["blobsPresent"] == blobs
    assert sum(kinds.values()) / blobs <= MAX_REQUESTS_PER_BLOB, kinds


def test_a_first_import_sends_no_blob_head(mirror_cli, bundle, proxy) -> None:
    _, kinds = import_through(mirror_cli, bundle, proxy, f"r{uuid.uuid4().hex[:8]}")
    assert kinds["HEAD blob"] == 0, kinds


def test_a_first_import_heads_each_image_once_and_puts_each_manifest_once(mirror_cli, bundle, proxy) -> None:
    _, kinds = import_through(mirror_cli, bundle, proxy, f"r{uuid.uuid4().hex[:8]}")
    assert kinds["HEAD manifest"] == IMAGES, kinds
    assert kinds["PUT manifest"] == IMAGES, kinds


def test_each_blob_upload_costs_two_requests_and_each_shared_blob_one_mount(mirror_cli, bundle, proxy) -> None:
    report, kinds = import_through(mirror_cli, bundle, proxy, f"r{uuid.uuid4().hex[:8]}")
    uploaded, mounted = report["blobsUploaded"], report["blobsMounted"]
    assert (uploaded, mounted) == (IMAGES * 2 + 1, IMAGES - 1)
    # The POST that offers a mount opens the upload session when the registry has no such blob to mount.
    assert kinds["POST upload"] == uploaded + mounted + 1, kinds  # + the push check's
    assert kinds["PUT upload"] == uploaded, kinds


def test_a_second_import_of_the_same_bundle_sends_one_head_per_image(mirror_cli, bundle, proxy) -> None:
    prefix = f"r{uuid.uuid4().hex[:8]}"
    import_through(mirror_cli, bundle, proxy, prefix)
    report, kinds = import_through(mirror_cli, bundle, proxy, prefix)
    assert {o["status"] for o in report["images"]} == {"unchanged"}
    assert kinds == Counter({"HEAD manifest": IMAGES, "GET base": 1, "POST upload": 1, "DELETE upload": 1}), kinds


def test_an_interrupted_import_completes_on_a_rerun_without_uploading_a_blob_twice(
    mirror_cli, bundle, services
) -> None:
    """The registry fails every manifest PUT of the first run: all blobs land, no image does; the re-run then
    finds every blob by offering it to the registry (a mount from its own repository) and uploads none."""

    def refuse_manifests(request: Request) -> Answer | None:
        if request.method == "PUT" and "/manifests/" in request.path:
            return Answer(400, {"Content-Type": "application/json"}, b'{"errors":[{"code":"UNSUPPORTED"}]}')
        return None

    prefix = f"r{uuid.uuid4().hex[:8]}"
    with HostileServer(forward_to(f"http://{services.upstream}", answer=refuse_manifests)) as failing:
        first = mirror_cli("import", bundle, "--registry", f"{failing.url}/{prefix}", "--allow-unsigned", "-q")
    assert first.exit_code != 0
    with HostileServer(forward_to(f"http://{services.upstream}")) as proxy:
        report, kinds = import_through(mirror_cli, bundle, proxy, prefix)
    assert report["blobsUploaded"] == 0
    assert kinds["PUT upload"] == 0, kinds
    assert {o["status"] for o in report["images"]} == {"pushed"}
