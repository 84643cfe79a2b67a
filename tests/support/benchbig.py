"""scripts/bench step `big`: one single-layer image of --big-size (2 GB; --big-size 4G for the 4 GB run) pushed to the
upstream by a streaming pusher, collected by mirror, then imported into the internal TLS registry by `mirror
import` and by `skopeo copy` from an OCI layout, in turns, each into fresh repositories: wall time, CPU and peak RSS
(flat whatever the size). Issue 19's target: the import at most 0.8x skopeo's wall time.

skopeo runs with an empty blob-info cache of its own (a tmpfs over /var/lib/containers/cache in a private mount
namespace): its cache would otherwise turn the second copy of the same layer into a mount and win by not working.

Also the verify step's yardstick: hashlib's one-core SHA-256 rate, measured in-process on this machine.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shlex
import statistics
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from tests.support.benchcorpus import OCI_CONFIG, OCI_LAYER_TAR, OCI_MANIFEST, Pushed, Pusher, tar_layer
from tests.support.benchfloor import (
    big_floor,
    describe_big_floor,
    describe_read_floor,
    describe_service_cpu,
    with_service_cpu,
)
from tests.support.mirrorsets import write_mirrorset

if TYPE_CHECKING:
    from tests.support.bench import Bench, Row, Sample

MiB = 1 << 20
TARGET_BIG_IMPORT_RATIO = 0.8
PUSH_CHUNK_BYTES = 16 * MiB  # the pusher holds one such chunk: its memory is flat whatever the layer's size
SKOPEO_CACHE = "/var/lib/containers/cache"


# -- the verify step's yardstick ---------------------------------------------------------------------------


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def one_core_sha256_rate(cpu_seconds: float = 0.5) -> float:
    """Bytes hashlib's SHA-256 hashes per CPU second of one thread (4 MiB updates, as verify reads); CPU time,
    not wall time, so other work on the machine does not lower it."""
    data = memoryview(os.urandom(4 * MiB))
    hasher = hashlib.sha256()
    hashed = 0
    start = time.thread_time()
    while (spent := time.thread_time() - start) < cpu_seconds:
        hasher.update(data)
        hashed += len(data)
    return hashed / spent


@dataclass(frozen=True)
class Yardstick:
    cores: int
    rate: float  # bytes per second, one core
    size: int

    @property
    def name(self) -> str:
        return f"{self.cores} cores x hashlib"

    @property
    def sample(self) -> Sample:
        """What all the cores hashing at hashlib's rate would take: the wall time mirror verify is held to."""
        from tests.support.bench import Sample

        return Sample(self.size / (self.cores * self.rate), 0.0, self.size / self.rate)

    @property
    def note(self) -> str:
        return f"hashlib {self.rate / 1e9:.2f} GB/s on one core"


def hashing_yardstick(size: int) -> Yardstick:
    return Yardstick(cores(), one_core_sha256_rate(), size)


def verify_row(bench: Bench, verify: list[str], bundle: Path, key: Path, target_share: float) -> Row:
    """`mirror verify` of `bundle` held to its size over (cores x hashlib's one-core rate), measured between the
    runs. Its rate is that of the hashing: the time beyond verify's fixed cost (start-up, inventory, signatures),
    which a verify of a one-image bundle signed by the same `key` measures in the same turn; the whole command's
    share is in the note."""
    from tests.support.bench import Row, Sample, _timed

    with Pusher(bench.services.upstream) as pusher:
        tiny = pusher.image(f"bench-{bench.run_id}-verify/tiny", "1", [tar_layer(1024)])
    manifest = write_mirrorset(bench.work / "verify-tiny.yaml", [tiny.reference], registries=bench.registries)
    fixed_bundle = bench.work / "verify-tiny"
    _timed(
        "mirror collect (tiny)",
        [bench.mirror, "collect", str(manifest), "-o", str(fixed_bundle), "--key", str(key), "-q"],
    )
    size = sum(p.stat().st_size for p in bundle.rglob("*") if p.is_file())
    row = Row("verify", f"{size / 1e6:.0f} MB bundle")
    whole: list[Sample] = []
    fixed: list[Sample] = []
    for _ in range(bench.repeat):
        whole.append(_timed("mirror verify", [*verify, str(bundle)]))
        fixed.append(_timed("mirror verify (one tiny image)", [*verify, str(fixed_bundle)]))
        yardstick = hashing_yardstick(size)  # measured between the runs, on the machine as busy as they found it
        row.other.append(yardstick.sample)
        seconds = max(whole[-1].seconds - fixed[-1].seconds, 1e-3)
        row.mirror.append(Sample(seconds, whole[-1].peak_rss_mb, whole[-1].cpu_seconds - fixed[-1].cpu_seconds))
    row.other_tool = yardstick.name
    row.target = f">= {target_share:.0%} of {yardstick.name}"
    row.met = row.ratio is not None and 1 / row.ratio >= target_share
    ideal = statistics.median(s.seconds for s in row.other)
    command = statistics.median(s.seconds for s in whole)
    cpu = statistics.median(s.cpu_seconds for s in row.mirror)
    row.note = (
        f"{yardstick.note}; the whole command {command:.2f} s ({ideal / command:.0%}), of it "
        f"{statistics.median(s.seconds for s in fixed):.2f} s fixed"
    )
    if cpu > 0:  # a small bundle's hashing can cost less than the clock's tick of CPU time
        row.note += f"; {size / cpu / 1e9:.2f} GB hashed per CPU second"
    row.note += f"; {describe_read_floor(bundle, cores(), bench.repeat)}"
    return row


# -- the streaming pusher ----------------------------------------------------------------------------------


def tar_stream(size: int, name: str = "random.bin", chunk: int = PUSH_CHUNK_BYTES) -> Iterator[bytes]:
    """An uncompressed tar holding one file of `size` random bytes, made `chunk` bytes at a time."""
    info = tarfile.TarInfo(name)
    info.size, info.mtime = size, 0
    header = info.tobuf(format=tarfile.USTAR_FORMAT)
    yield header
    left = size
    while left:
        piece = min(chunk, left)
        yield os.urandom(piece)
        left -= piece
    tail = -size % tarfile.BLOCKSIZE + 2 * tarfile.BLOCKSIZE
    yield b"\0" * (tail + -(len(header) + size + tail) % tarfile.RECORDSIZE)


class StreamingPusher:
    """Pushes a single-layer image whose layer is made, hashed and uploaded (chunked PATCH) a chunk at a time, to
    an anonymous plain-HTTP registry; the layer is never held whole, in memory or on disk."""

    def __init__(self, registry: str) -> None:
        self.registry = registry
        self._http = httpx.Client(base_url=f"http://{registry}", timeout=300)

    def __enter__(self) -> StreamingPusher:
        return self

    def __exit__(self, *_: object) -> None:
        self._http.close()

    def _expect(self, response: httpx.Response, status: int, what: str) -> httpx.Response:
        if response.status_code != status:
            raise RuntimeError(f"bench pusher: {what} answered {response.status_code}: {response.text[:300]}")
        return response

    def upload(self, repository: str, chunks: Iterator[bytes]) -> dict[str, object]:
        started = self._expect(self._http.post(f"/v2/{repository}/blobs/uploads/"), 202, f"upload to {repository}")
        location = httpx.URL(self._http.base_url).join(started.headers["location"])
        hasher, offset = hashlib.sha256(), 0
        for chunk in _gathered(chunks, PUSH_CHUNK_BYTES):
            hasher.update(chunk)
            headers = {
                "Content-Type": "application/octet-stream",
                "Content-Range": f"{offset}-{offset + len(chunk) - 1}",
            }
            answered = self._expect(self._http.patch(location, content=chunk, headers=headers), 202, "upload chunk")
            location = location.join(answered.headers["location"])
            offset += len(chunk)
        digest = "sha256:" + hasher.hexdigest()
        self._expect(self._http.put(location.copy_merge_params({"digest": digest})), 201, f"upload of {digest}")
        return {"mediaType": OCI_LAYER_TAR, "digest": digest, "size": offset}

    def image(self, repository: str, tag: str, layer_bytes: int) -> Pushed:
        layer = self.upload(repository, tar_stream(layer_bytes))
        config = json.dumps(
            {
                "architecture": "amd64",
                "os": "linux",
                "rootfs": {"type": "layers", "diff_ids": [layer["digest"]]},
            }
        ).encode()
        config_descriptor = {**self.upload(repository, iter([config])), "mediaType": OCI_CONFIG}
        manifest = json.dumps(
            {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config_descriptor, "layers": [layer]}
        ).encode()
        self._expect(
            self._http.put(
                f"/v2/{repository}/manifests/{tag}", content=manifest, headers={"Content-Type": OCI_MANIFEST}
            ),
            201,
            f"manifest {repository}:{tag}",
        )
        digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
        size = int(layer["size"]) + len(config) + len(manifest)  # type: ignore[call-overload]
        return Pushed(f"{self.registry}/{repository}:{tag}", digest, size, len(manifest))


def _gathered(pieces: Iterator[bytes], size: int) -> Iterator[bytes]:
    """The pieces regrouped into chunks of `size` bytes (the last one shorter)."""
    pending = bytearray()
    for piece in pieces:
        pending += piece
        while len(pending) >= size:
            yield bytes(pending[:size])
            del pending[:size]
    if pending:
        yield bytes(pending)


# -- the step ----------------------------------------------------------------------------------------------


def with_empty_skopeo_cache(command: list[str]) -> list[str]:
    """`command` in a private mount namespace with an empty tmpfs over skopeo's blob-info cache."""
    script = f"mount -t tmpfs tmpfs {SKOPEO_CACHE} && exec {shlex.join(command)}"
    return ["unshare", "--mount", "sh", "-c", script]


def big_rows(bench: Bench) -> list[Row]:
    from tests.support.bench import TARGET_RSS_MB, Row, _in_turns, _timed

    size = bench.big_bytes
    label = f"one {size / 1e9:.1f} GB layer" if size >= 1e9 else f"one {size / 1e6:.0f} MB layer"
    repository = f"bench-{bench.run_id}-big/image"
    started = time.monotonic()
    with StreamingPusher(bench.services.upstream) as pusher:
        pushed = pusher.image(repository, "1", size)
    bench.log(f"big: {label} pushed in {time.monotonic() - started:.0f} s")
    manifest = write_mirrorset(bench.work / "big.yaml", [pushed.reference], registries=bench.registries)
    bundle, layout = bench.work / "big-bundle", bench.work / "big-layout"
    collected = Row("peak RSS", f"collect, {label}", unit="MB", target=f"< {TARGET_RSS_MB:.0f} MB")
    collected.mirror.append(
        _timed("mirror collect (big)", [bench.mirror, "collect", str(manifest), "-o", str(bundle), "-q"])
    )
    skopeo = ["skopeo", "--insecure-policy", "copy", "--preserve-digests", "-q"]
    source = [*skopeo, "--src-tls-verify=false", f"docker://{pushed.reference}", f"oci:{layout}:big"]
    _timed("skopeo copy to a layout (big)", with_empty_skopeo_cache(source))
    row = Row("big", f"import, {label}", other_tool="skopeo")
    imported = Row("peak RSS", f"import, {label}", unit="MB", target=f"< {TARGET_RSS_MB:.0f} MB")
    internal = bench.services.internal
    dest = [
        "--dest-cert-dir",
        str(bench.services.cert_dir),
        "--dest-creds",
        f"{bench.services.internal_user}:{bench.services.internal_password}",
    ]
    registry_cpu: list[float | None] = []
    for r in range(bench.repeat):
        target = f"bench-{bench.run_id}-big-r{r}"
        command = [bench.mirror, "import", str(bundle), "--registry", f"https://{internal}/{target}/mirror"]
        command += ["--allow-unsigned", "--ca-file", str(bench.services.ca_file), "-q"]
        copy = [*skopeo, *dest, f"oci:{layout}:big", f"docker://{internal}/{target}/skopeo/image:1"]

        def mirror_import(command: list[str] = command) -> None:
            sample, spent = with_service_cpu(
                bench.services.services_dir,
                "internal",
                functools.partial(_timed, "mirror import (big)", command, bench.internal_env),
            )
            registry_cpu.append(spent)
            row.mirror.append(sample)
            imported.mirror.append(sample)

        _in_turns(
            r,
            mirror_import,
            lambda copy=copy: row.other.append(_timed("skopeo copy (big)", with_empty_skopeo_cache(copy))),
        )
    floor = describe_big_floor(big_floor(bench, bundle, bench.repeat))
    bench._drop(bundle, layout)
    row.target = f"<= {TARGET_BIG_IMPORT_RATIO}x skopeo"
    row.met = row.ratio is not None and row.ratio <= TARGET_BIG_IMPORT_RATIO
    cpu = statistics.median(s.cpu_seconds for s in row.mirror), statistics.median(s.cpu_seconds for s in row.other)
    shared = describe_service_cpu(row.mirror, registry_cpu, "registry")
    row.note = f"CPU {cpu[0]:.1f} s mirror, {cpu[1]:.1f} s skopeo; {floor}; {shared}"
    for memory in (collected, imported):
        memory.met = (memory.value(memory.mirror) or 0) < TARGET_RSS_MB
    return [row, collected, imported]
