"""Killed runs complete on a re-run: an import or a collect killed (SIGKILL) at a random point, then run again.

The commands run as the installed console script, in a subprocess, so the kill is a real one. Kill points are
random but seeded (reproducible), spread over the duration of an uninterrupted run measured first, plus one
chosen by watching progress (a blob already on the target, a blob already in the cache or the partial tar of a
.tar OUT), so that every run
of the suite kills at least once in the middle of the transfer.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import ssl
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from mirror.importer.run import verify_checksums
from mirror.limits import DEFAULT_LIMITS
from mirror.progress import Progress
from tests.conftest import MIRROR
from tests.support.images import BigImage, push, write_big_image_layout
from tests.support.mirrorsets import write_mirrorset

IMAGES = 5
LAYER_BYTES = 3 * 1024 * 1024
RANDOM_KILLS = 3
SEED = 6


@dataclass(frozen=True)
class Corpus:
    manifest: Path
    images: dict[str, BigImage]  # repository path (without host) → image


@pytest.fixture(scope="module")
def corpus(services, tmp_path_factory) -> Corpus:
    """A few images of a few MB each, fresh for the module, so that a run lasts long enough to be killed."""
    work = tmp_path_factory.mktemp("resume-corpus")
    run = uuid.uuid4().hex[:8]
    images = {}
    for number in range(IMAGES):
        layout = work / f"layout-{number}"
        image = write_big_image_layout(layout, "big", LAYER_BYTES, labels={"resume": f"{run}-{number}"})
        repository = f"resume-{run}/big{number}"
        push(layout, "big", f"{services.upstream}/{repository}:1")
        images[repository] = image
    references = [f"{services.upstream}/{repository}:1" for repository in images]
    manifest = write_mirrorset(work / "m.yaml", references, registries={services.upstream: {"plainHTTP": True}})
    return Corpus(manifest, images)


def _run(args: list[object], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(MIRROR), *map(str, args)], capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=300
    )


def _killed(args: list[object], env: dict[str, str] | None, until: Callable[[], bool]) -> bool:
    """Start the command and SIGKILL it once `until()` holds; True if it was killed before it ended."""
    process = subprocess.Popen(
        [str(MIRROR), *map(str, args)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
    )
    try:
        while process.poll() is None:
            if until():
                process.kill()
                process.wait()
                return True
            time.sleep(0.01)
        return False
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _after(seconds: float) -> Callable[[], bool]:
    deadline = time.monotonic() + seconds
    return lambda: time.monotonic() >= deadline


def _timed(args: list[object], env: dict[str, str] | None = None) -> float:
    started = time.monotonic()
    done = _run(args, env)
    assert done.returncode == 0, done.stderr
    return time.monotonic() - started


def _delays(duration: float) -> list[float]:
    rng = random.Random(SEED)
    return [rng.uniform(0.05, 0.95) * duration for _ in range(RANDOM_KILLS)]


# ---------------------------------------------------------------------------------------------------- import


class Target:
    """The internal registry read with its own HTTP client, not mirror's."""

    def __init__(self, services, prefix: str) -> None:
        self.prefix = prefix
        self.client = httpx.Client(
            base_url=f"https://{services.internal}/v2/",
            auth=(services.internal_user, services.internal_password),
            verify=ssl.create_default_context(cafile=str(services.ca_file)),
            timeout=30,
        )

    def __enter__(self) -> Target:
        return self

    def __exit__(self, *_: object) -> None:
        self.client.close()

    def tags(self, repository: str) -> list[str]:
        response = self.client.get(f"{self.prefix}/{repository}/tags/list")
        return (response.json().get("tags") or []) if response.status_code == 200 else []

    def manifest(self, repository: str, reference: str) -> bytes | None:
        accept = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json"
        response = self.client.get(f"{self.prefix}/{repository}/manifests/{reference}", headers={"Accept": accept})
        return response.content if response.status_code == 200 else None

    def blob_digest(self, repository: str, digest: str) -> str | None:
        response = self.client.get(f"{self.prefix}/{repository}/blobs/{digest}", follow_redirects=True)
        return "sha256:" + hashlib.sha256(response.content).hexdigest() if response.status_code == 200 else None

    def blob_exists(self, repository: str, digest: str) -> bool:
        return self.client.head(f"{self.prefix}/{repository}/blobs/{digest}").status_code == 200

    def complete(self, repository: str, reference: str) -> bool:
        """The manifest exists and every blob it names exists, with the bytes its digest names."""
        raw = self.manifest(repository, reference)
        if raw is None:
            return False
        body = json.loads(raw)
        return all(self.blob_digest(repository, d["digest"]) == d["digest"] for d in [body["config"], *body["layers"]])


@pytest.fixture(scope="module")
def bundle(corpus, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("resume-bundle") / "b.tar"
    done = _run(["collect", corpus.manifest, "-o", out, "-q", "--no-cache"])
    assert done.returncode == 0, done.stderr
    return out


def _import_args(bundle: Path, services, prefix: str) -> list[object]:
    url = f"https://{services.internal}/{prefix}"
    return ["import", bundle, "--registry", url, "--allow-unsigned", "--ca-file", services.ca_file, "-q"]


def _no_tag_points_at_a_missing_manifest(target: Target, corpus: Corpus) -> None:
    for repository in corpus.images:
        for tag in target.tags(repository):
            assert target.complete(repository, tag), f"{repository}:{tag} is tagged but incomplete"


def _kill_then_complete_import(services, internal_env, corpus, bundle, until_for: Callable[[Target], Callable]) -> bool:
    prefix = f"resume{uuid.uuid4().hex[:10]}"
    args = _import_args(bundle, services, prefix)
    with Target(services, prefix) as target:
        killed = _killed(args, internal_env, until_for(target))
        _no_tag_points_at_a_missing_manifest(target, corpus)
        done = _run([*args, "--json"], internal_env)
        assert done.returncode == 0, done.stderr
        for repository, image in corpus.images.items():
            raw = target.manifest(repository, "1")
            assert raw is not None and "sha256:" + hashlib.sha256(raw).hexdigest() == image.digest
            assert target.complete(repository, image.digest)
    return killed


def test_an_import_killed_at_random_points_completes_on_a_rerun_with_every_digest_on_the_registry(
    services, internal_env, corpus, bundle
):
    duration = _timed(_import_args(bundle, services, f"resume{uuid.uuid4().hex[:10]}"), internal_env)
    for delay in _delays(duration):
        _kill_then_complete_import(services, internal_env, corpus, bundle, lambda target, d=delay: _after(d))


def test_an_import_killed_in_the_middle_of_its_uploads_completes_on_a_rerun(services, internal_env, corpus, bundle):
    repository, image = next(iter(corpus.images.items()))

    def first_layer_uploaded(target: Target) -> Callable[[], bool]:
        return lambda: target.blob_exists(repository, image.layer_digest)

    assert _kill_then_complete_import(services, internal_env, corpus, bundle, first_layer_uploaded)


# ---------------------------------------------------------------------------------------------------- collect


def _cached(cache: Path) -> dict[str, int]:
    """Complete cache entries (temporary files of the killed run excluded), digest → size."""
    blobs = cache / "blobs" / "sha256"
    if not blobs.is_dir():
        return {}
    return {f"sha256:{p.name}": p.stat().st_size for p in blobs.iterdir() if not p.name.startswith(".")}


def _kill_then_complete_collect(
    corpus: Corpus, work: Path, full: dict, until: Callable[[], bool] | None = None, name: str = "night"
) -> tuple[dict[str, int], dict[str, int]]:
    """Kill a collect to OUT `name` (a directory, or a .tar), run it again; what the re-run took from the cache
    and what it kept from the killed run's partial tar (a .tar OUT), each digest → size."""
    work.mkdir()
    out, cache, report = work / name, work / "cache", work / "report.json"
    args = ["collect", corpus.manifest, "-o", out, "--cache-dir", cache, "-q"]
    killed = _killed(args, None, until or (lambda: bool(_cached(cache))))
    assert killed or until is not None, "the collect ended before it cached a blob"
    if out.exists():
        # Killed after the rename (or it ended first): what is at OUT is whole. Start again from the cache.
        verify_checksums(out, jobs=2, progress=Progress(quiet=True), limits=DEFAULT_LIMITS)
        if out.is_dir():
            shutil.rmtree(out)
        else:
            out.unlink()
    cached = _cached(cache)
    done = _run([*args, "--report", report])
    assert done.returncode == 0, done.stderr
    written = json.loads(report.read_text())
    reused = {s["digest"]: s["size"] for s in written["skipped"] if s["reason"] == "cached"}
    resumed = {s["digest"]: s["size"] for s in written["skipped"] if s["reason"] == "resumed"}
    if out.suffix != ".tar":
        assert reused == cached
    assert written["transfer"]["reusedFromCache"] == sum(reused.values())
    assert written["transfer"]["resumed"] == sum(resumed.values())
    taken = written["transfer"]["downloaded"] + sum(reused.values()) + sum(resumed.values())
    assert taken == full["transfer"]["downloaded"]
    verified = verify_checksums(out, jobs=2, progress=Progress(quiet=True), limits=DEFAULT_LIMITS)
    assert {a.digest for a in verified.inventory.artifacts} == {i.digest for i in corpus.images.values()}
    return reused, resumed


@pytest.fixture(scope="module")
def full_collect(corpus, tmp_path_factory) -> tuple[float, dict]:
    """An uninterrupted collect with an empty cache: its duration, and its report."""
    work = tmp_path_factory.mktemp("resume-full")
    report = work / "r.json"
    args = ["collect", corpus.manifest, "-o", work / "b.tar", "--cache-dir", work / "cache", "--report", report]
    return _timed([*args, "-q"]), json.loads(report.read_text())


@pytest.mark.parametrize("name", ["night", "night.tar"])
def test_a_collect_killed_at_random_points_completes_on_a_rerun_fetching_only_what_it_lacked(
    corpus, tmp_path, full_collect, name
):
    duration, full = full_collect
    for number, delay in enumerate(_delays(duration)):
        _kill_then_complete_collect(corpus, tmp_path / f"kill-{number}", full, _after(delay), name)


def test_a_collect_to_a_directory_killed_after_its_first_downloads_fetches_only_the_rest(
    corpus, tmp_path, full_collect
):
    _, full = full_collect
    reused, _ = _kill_then_complete_collect(corpus, tmp_path / "kill", full)
    assert reused, "the killed collect had cached at least one blob"


def test_a_collect_to_tar_killed_after_its_first_downloads_keeps_them_from_its_partial_tar(
    corpus, tmp_path, full_collect
):
    _, full = full_collect
    partial = tmp_path / "kill" / ".night.tar.partial"
    layer = min(i.layer_size for i in corpus.images.values())

    def a_layer_in_the_partial_tar() -> bool:  # allocated blocks: the reserved room is a hole until written
        return partial.exists() and partial.stat().st_blocks * 512 > 1.5 * layer

    _, resumed = _kill_then_complete_collect(corpus, tmp_path / "kill", full, a_layer_in_the_partial_tar, "night.tar")
    assert resumed, "the killed collect had written at least one blob into its partial tar"


def test_a_damaged_cache_entry_is_downloaded_again_and_never_reaches_the_bundle(corpus, tmp_path):
    cache = tmp_path / "cache"
    first = ["collect", corpus.manifest, "-o", tmp_path / "one", "--cache-dir", cache, "-q"]
    assert _run(first).returncode == 0
    image = next(iter(corpus.images.values()))
    entry = cache / "blobs" / "sha256" / image.layer_digest.removeprefix("sha256:")
    entry.unlink()  # the first bundle holds a hard link to it: damage the cache's copy only
    entry.write_bytes(b"not the layer")
    report = tmp_path / "r.json"
    second = ["collect", corpus.manifest, "-o", tmp_path / "two.tar", "--cache-dir", cache, "--report", report]
    assert _run([*second, "-q"]).returncode == 0
    written = json.loads(report.read_text())
    assert written["transfer"]["downloaded"] == image.layer_size
    assert image.layer_digest not in {s["digest"] for s in written["skipped"]}
    verify_checksums(tmp_path / "two.tar", jobs=2, progress=Progress(quiet=True), limits=DEFAULT_LIMITS)


def test_a_collect_stopped_with_sigterm_cleans_up_and_reports_the_interruption(corpus, tmp_path):
    out, cache, report = tmp_path / "night", tmp_path / "cache", tmp_path / "report.json"
    args = ["collect", corpus.manifest, "-o", out, "--cache-dir", cache, "--report", report, "-q"]
    process = subprocess.Popen([str(MIRROR), *map(str, args)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    while process.poll() is None and not _cached(cache):
        time.sleep(0.01)
    assert process.poll() is None, "the collect ended before it cached a blob"
    process.terminate()
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "report.json"]  # no bundle, no staging area
    written = json.loads(report.read_text())
    assert (written["ok"], written["exitCode"], written["failed"][0]["message"]) == (False, 130, "interrupted")
