"""A .tar bundle is written in one pass: each blob's bytes go once to storage, straight into the tar, however
many downloads run at once; every reader accepts the member order; an interrupted collect leaves no OUT.
See docs/bundle-format.md ("Tar bundles") and docs/collector.md. With the cache on, and resuming from a partial
tar: test_tar_resume.py."""

from __future__ import annotations

import os
import signal
import subprocess
import tarfile
import time
import uuid
from pathlib import Path

import pytest

from mirror.importer.run import verify_checksums
from mirror.limits import DEFAULT_LIMITS
from mirror.progress import Progress
from tests.conftest import MIRROR
from tests.support.images import BigImage, push, write_big_image_layout
from tests.support.mirrorsets import write_mirrorset
from tests.support.written import run_counting_writes

IMAGES = 3
LAYER_BYTES = 4 * 1024 * 1024


@pytest.fixture(scope="module")
def corpus(services, tmp_path_factory) -> tuple[Path, dict[str, BigImage]]:
    """A few single-layer images of a few MB, fresh for the module: the layers are what a bundle's size is."""
    work = tmp_path_factory.mktemp("one-pass-corpus")
    run = uuid.uuid4().hex[:8]
    images = {}
    for number in range(IMAGES):
        image = write_big_image_layout(work / f"layout-{number}", "big", LAYER_BYTES, labels={"run": f"{run}-{number}"})
        reference = f"{services.upstream}/one-pass-{run}/big{number}:1"
        push(work / f"layout-{number}", "big", reference)
        images[reference] = image
    manifest = write_mirrorset(work / "m.yaml", list(images), registries={services.upstream: {"plainHTTP": True}})
    return manifest, images


def _collect_counting(manifest: Path, out: Path, *more: str) -> int:
    done = run_counting_writes([str(MIRROR), "collect", str(manifest), "-o", str(out), "-q", "--no-cache", *more])
    assert done.returncode == 0, done.stderr
    return done.bytes_written


def test_collect_to_tar_writes_each_byte_once(corpus, tmp_path):
    manifest, _ = corpus
    written = _collect_counting(manifest, tmp_path / "b.tar", "--jobs", "3")
    size = (tmp_path / "b.tar").stat().st_size
    assert written <= 1.1 * size, f"wrote {written} bytes for a {size}-byte bundle ({written / size:.2f}x)"


def test_collect_to_tar_writes_no_more_than_collect_to_a_directory(corpus, tmp_path):
    manifest, _ = corpus
    to_directory = _collect_counting(manifest, tmp_path / "b")
    to_tar = _collect_counting(manifest, tmp_path / "b.tar")
    assert to_tar <= 1.05 * to_directory, f"{to_tar} bytes to a .tar, {to_directory} to a directory"


def test_the_tar_holds_the_downloaded_blobs_first_and_the_inventory_last(corpus, tmp_path):
    manifest, images = corpus
    out = tmp_path / "b.tar"
    _collect_counting(manifest, out)
    names = subprocess.run(["tar", "-tf", str(out)], capture_output=True, text=True, check=True).stdout.split()
    layers = [f"blobs/sha256/{i.layer_digest.removeprefix('sha256:')}" for i in images.values()]
    assert names[:2] == ["blobs/", "blobs/sha256/"]
    assert max(names.index(layer) for layer in layers) < names.index("oci-layout") < names.index("index.json")
    assert names[-1] == "inventory.json"
    with tarfile.open(out) as tar:
        assert all((m.isreg() or m.isdir()) and not m.pax_headers for m in tar.getmembers())


def test_gnu_tar_extracts_what_the_inventory_lists(corpus, tmp_path):
    manifest, _ = corpus
    out = tmp_path / "b.tar"
    _collect_counting(manifest, out)
    (tmp_path / "x").mkdir()
    subprocess.run(["tar", "-xf", str(out), "-C", str(tmp_path / "x")], check=True)
    verify_checksums(tmp_path / "x", jobs=2, progress=Progress(quiet=True), limits=DEFAULT_LIMITS)


def test_verify_checksums_accepts_the_one_pass_tar(corpus, tmp_path):
    manifest, _ = corpus
    out = tmp_path / "b.tar"
    _collect_counting(manifest, out)
    verify_checksums(out, jobs=2, progress=Progress(quiet=True), limits=DEFAULT_LIMITS)


def test_an_interrupted_collect_to_tar_leaves_nothing_beside_out(corpus, tmp_path):
    manifest, _ = corpus
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    process = subprocess.Popen(
        [str(MIRROR), "collect", str(manifest), "-o", str(out_dir / "b.tar"), "-q", "--no-cache", "--jobs", "1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while process.poll() is None and time.monotonic() < deadline:
            partial = [p for p in out_dir.iterdir() if p.is_file() and p.stat().st_size > LAYER_BYTES // 2]
            if partial:  # a tar being filled: interrupt it there
                process.send_signal(signal.SIGINT)
                break
            time.sleep(0.005)
    finally:
        process.wait(timeout=60)
    if process.returncode == 0:
        pytest.skip("the collect ended before a tar was being filled")
    assert list(out_dir.iterdir()) == []
    assert not os.path.exists(out_dir / "b.tar")
