"""A .tar collect is its own resume state: with the cache on, new blobs go only into the tar (each byte written
once), a killed or interrupted collect keeps its partial tar beside OUT (`.OUT.partial`), and the next collect to
OUT keeps what it finds there whose bytes hash to the recorded digest, downloading only the rest. Nothing in a
partial tar is trusted: a tampered one, or one another MirrorSet left, is hashed and what does not match is
downloaded again. Two collects never write one OUT. See docs/collector.md ("Resuming a .tar collect").

Upstream is the local registry behind a forwarding proxy that records every request and can hold one blob's
GET, so the kill lands at a known point: every blob before the held one in the tar, none after it.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import tarfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mirror.importer.run import verify_checksums
from mirror.limits import DEFAULT_LIMITS
from mirror.progress import Progress
from tests.conftest import MIRROR
from tests.support.hostile import Answer, HostileServer, Request
from tests.support.hostile.forwarding import forward_to
from tests.support.images import BigImage, push, write_big_image_layout
from tests.support.mirrorsets import write_mirrorset
from tests.support.services import UPSTREAM_REGISTRY
from tests.support.written import run_counting_writes

IMAGES = 5
LAYER_BYTES = 3 * 1024 * 1024


def partial_of(out: Path) -> Path:
    return out.with_name(f".{out.name}.partial")


class Holding:
    """A forwarding proxy's hook: the GET of one blob is held (until released or the server stops)."""

    def __init__(self) -> None:
        self.digest: str | None = None
        self.arrived = threading.Event()

    def __call__(self, request: Request) -> Answer | None:
        if self.digest is not None and request.method == "GET" and request.path.endswith(f"/blobs/{self.digest}"):
            self.arrived.set()
            return Answer(503, delay_s=120)  # cut short when the proxy stops
        return None


@dataclass
class Upstream:
    proxy: HostileServer
    holding: Holding
    images: dict[str, BigImage]  # reference → image
    manifest: Path  # every image
    subset: Path  # the first two images only: another MirrorSet

    def blob_gets(self, since: int) -> list[str]:
        """The digests of the blob GETs the proxy received after its first `since` requests."""
        return [
            r.path.rsplit("/", 1)[1] for r in self.proxy.requests[since:] if r.method == "GET" and "/blobs/" in r.path
        ]


@pytest.fixture(scope="module")
def upstream(services, tmp_path_factory) -> Iterator[Upstream]:
    work = tmp_path_factory.mktemp("tar-resume")
    run = uuid.uuid4().hex[:8]
    images = {}
    for number in range(IMAGES):
        layout = work / f"layout-{number}"
        image = write_big_image_layout(layout, "big", LAYER_BYTES, labels={"run": f"{run}-{number}"})
        reference = f"{services.upstream}/tar-resume-{run}/big{number}:1"
        push(layout, "big", reference)
        images[reference] = image
    holding = Holding()
    with HostileServer(forward_to(f"http://{services.upstream}", answer=holding)) as proxy:
        registries = {UPSTREAM_REGISTRY: {"endpoint": proxy.url}}
        manifest = write_mirrorset(work / "all.yaml", list(images), registries=registries)
        subset = write_mirrorset(work / "two.yaml", list(images)[:2], registries=registries)
        yield Upstream(proxy, holding, images, manifest, subset)


def _args(manifest: Path, out: Path, cache: Path, *more: object) -> list[str]:
    return [str(MIRROR), "collect", str(manifest), "-o", str(out), "--cache-dir", str(cache), "-q", *map(str, more)]


def _collect(manifest: Path, out: Path, cache: Path, *more: object) -> dict:
    report = out.with_name(out.name + ".report.json")
    done = subprocess.run(_args(manifest, out, cache, "--report", report, *more), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return json.loads(report.read_text())


def _resumed(report: dict) -> dict[str, int]:
    return {s["digest"]: s["size"] for s in report["skipped"] if s["reason"] == "resumed"}


def _verified(out: Path) -> None:
    verify_checksums(out, jobs=2, progress=Progress(quiet=True), limits=DEFAULT_LIMITS)


def _without_inventory(out: Path) -> tuple[list[tuple[str, int, int]], bytes, dict]:
    """Every member (name, offset, size), the bytes before the inventory, and the inventory without the two
    fields no two collects share (bundleId, created)."""
    with tarfile.open(out) as tar:
        members = [(m.name, m.offset, m.size) for m in tar.getmembers()]
        inventory = next(m for m in tar.getmembers() if m.name == "inventory.json")
        body = json.loads(tar.extractfile(inventory).read())  # type: ignore[union-attr]
    for name in ("bundleId", "created"):
        body.pop(name)
    with open(out, "rb") as handle:
        return members, handle.read(inventory.offset), body


@pytest.fixture(scope="module")
def reference(upstream, tmp_path_factory) -> tuple[Path, dict]:
    """An uninterrupted collect of every image to a .tar, with an empty cache: the bundle and its report."""
    work = tmp_path_factory.mktemp("tar-resume-reference")
    out = work / "b.tar"
    return out, _collect(upstream.manifest, out, work / "cache")


def _layer_data_offset(out: Path, digest: str) -> int:
    with tarfile.open(out) as tar:
        return tar.getmember(f"blobs/sha256/{digest.removeprefix('sha256:')}").offset_data


def test_a_collect_to_tar_with_the_cache_on_writes_each_byte_once_and_caches_no_blob(upstream, tmp_path):
    out, cache = tmp_path / "b.tar", tmp_path / "cache"
    done = run_counting_writes(_args(upstream.manifest, out, cache))
    assert done.returncode == 0, done.stderr
    size = out.stat().st_size
    assert done.bytes_written <= 1.05 * size, f"wrote {done.bytes_written} bytes for a {size}-byte bundle"
    assert not [p for p in (cache / "blobs" / "sha256").iterdir() if p.stat().st_size >= LAYER_BYTES]


def test_a_collect_to_tar_takes_the_blobs_the_cache_holds_without_downloading_them(upstream, tmp_path, reference):
    cache = tmp_path / "cache"
    _collect(upstream.manifest, tmp_path / "dir", cache)  # a directory bundle fills the cache
    report = _collect(upstream.manifest, tmp_path / "b.tar", cache)
    assert report["transfer"]["downloaded"] == 0
    assert report["transfer"]["reusedFromCache"] == reference[1]["transfer"]["downloaded"]
    assert _without_inventory(tmp_path / "b.tar") == _without_inventory(reference[0])


def test_a_collect_to_tar_killed_half_way_resumes_from_its_partial_tar_byte_identical(upstream, tmp_path, reference):
    layers = sorted(i.layer_digest for i in upstream.images.values())
    held = layers[len(layers) // 2]  # with --jobs 1 blobs are fetched in digest order: two layers before it
    out, cache = tmp_path / "b.tar", tmp_path / "cache"
    upstream.holding.digest = held
    upstream.holding.arrived.clear()
    process = subprocess.Popen(_args(upstream.manifest, out, cache, "--jobs", "1"), stderr=subprocess.DEVNULL)
    try:
        assert upstream.holding.arrived.wait(120), "the collect never asked for the held layer"
    finally:
        upstream.holding.digest = None
        process.kill()
        process.wait()
    had = [d for d in layers if d < held]
    assert not out.exists() and partial_of(out).is_file()
    assert not [p for p in (cache / "blobs" / "sha256").iterdir() if p.stat().st_size >= LAYER_BYTES]

    again = len(upstream.proxy.requests)
    report = _collect(upstream.manifest, out, cache)
    fetched = upstream.blob_gets(again)
    assert not set(had) & set(fetched), "a layer the partial tar held was downloaded again"
    assert held in fetched
    assert set(had) <= set(_resumed(report))
    full = reference[1]["transfer"]["downloaded"]
    assert report["transfer"]["downloaded"] + report["transfer"]["resumed"] == full
    assert not partial_of(out).exists()
    _verified(out)
    assert _without_inventory(out) == _without_inventory(reference[0])


def test_a_tampered_partial_tar_is_downloaded_again_not_trusted(upstream, tmp_path, reference):
    out = tmp_path / "b.tar"
    partial = partial_of(out)
    partial.write_bytes(reference[0].read_bytes())  # every blob in place, one of them altered below
    image = next(iter(upstream.images.values()))
    with open(partial, "r+b") as handle:
        handle.seek(_layer_data_offset(partial, image.layer_digest) + 1000)
        byte = handle.read(1)
        handle.seek(-1, os.SEEK_CUR)
        handle.write(bytes([byte[0] ^ 0xFF]))
    report = _collect(upstream.manifest, out, tmp_path / "cache")
    assert report["transfer"]["downloaded"] == image.layer_size
    assert image.layer_digest not in _resumed(report)
    _verified(out)
    assert _without_inventory(out) == _without_inventory(reference[0])


def test_a_partial_tar_another_mirrorset_left_is_hashed_and_only_what_matches_is_kept(upstream, tmp_path, reference):
    other = tmp_path / "other.tar"
    _collect(upstream.subset, other, tmp_path / "cache-other")
    out = tmp_path / "b.tar"
    other.rename(partial_of(out))
    report = _collect(upstream.manifest, out, tmp_path / "cache")
    full = reference[1]["transfer"]["downloaded"]
    assert report["transfer"]["downloaded"] + report["transfer"]["resumed"] == full
    _verified(out)
    assert _without_inventory(out) == _without_inventory(reference[0])


def test_an_interrupted_collect_to_tar_keeps_its_partial_tar_with_the_cache_on(upstream, tmp_path):
    out, cache = tmp_path / "b.tar", tmp_path / "cache"
    held = min(i.layer_digest for i in upstream.images.values())
    upstream.holding.digest = held
    upstream.holding.arrived.clear()
    process = subprocess.Popen(_args(upstream.manifest, out, cache), stderr=subprocess.PIPE)
    try:
        assert upstream.holding.arrived.wait(120), "the collect never asked for the held layer"
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    finally:
        upstream.holding.digest = None
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130, stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [partial_of(out).name, "cache"]


def test_a_second_collect_to_the_same_tar_is_refused_while_the_first_writes_it(upstream, tmp_path):
    out = tmp_path / "b.tar"
    partial = partial_of(out)
    partial.write_bytes(b"what the first collect wrote so far")
    with open(partial, "rb") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # what a running collect holds
        started = time.monotonic()
        done = subprocess.run(_args(upstream.manifest, out, tmp_path / "cache"), capture_output=True, text=True)
    assert done.returncode == 2, done.stderr
    assert "another collect" in done.stderr
    assert time.monotonic() - started < 60
    assert partial.read_bytes() == b"what the first collect wrote so far"
    assert not out.exists()


def test_a_link_at_the_partial_tar_name_is_refused_and_never_followed(upstream, tmp_path):
    out = tmp_path / "b.tar"
    target = tmp_path / "precious"
    target.write_bytes(b"keep me")
    partial_of(out).symlink_to(target)
    done = subprocess.run(_args(upstream.manifest, out, tmp_path / "cache"), capture_output=True, text=True)
    assert done.returncode == 2, done.stderr
    assert target.read_bytes() == b"keep me"
    assert partial_of(out).is_symlink() and not out.exists()


def test_with_no_cache_a_failed_collect_to_tar_keeps_no_partial_tar(upstream, tmp_path):
    out = tmp_path / "b.tar"
    upstream.holding.digest = min(i.layer_digest for i in upstream.images.values())
    upstream.holding.arrived.clear()
    process = subprocess.Popen(
        [str(MIRROR), "collect", str(upstream.manifest), "-o", str(out), "-q", "--no-cache"], stderr=subprocess.PIPE
    )
    try:
        assert upstream.holding.arrived.wait(120), "the collect never asked for the held layer"
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        upstream.holding.digest = None
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130, stderr
    assert list(tmp_path.iterdir()) == []
