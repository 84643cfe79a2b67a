"""What a step would cost with no mirror in it: the floor the services and the machine set, printed beside the rows
whose targets are absolute (the night), or held to a yardstick the machine cannot reach (verify, the big import).

- night: curl sending the requests a nothing-changed night sends (a manifest HEAD per image, a tag list per
  repository, one referrers probe), keep-alive, as many at a time as mirror's default --jobs;
- verify: the bundle's files read into one page-aligned buffer per thread and hashed, one thread per core, in this
  process (no start-up): the kernel's copy out of the page cache is the part hashlib's yardstick leaves out;
- big: curl streaming the blob into the internal registry (POST, one PATCH, PUT), as a client with no hashing,
  no chunking and no verification would.

Beside the night and the big import, the CPU time the registry spent while mirror ran: on a machine where the
registry shares the cores, no client can finish sooner than the work of both spread over every core.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import shlex
import statistics
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from mirror.oci import mediatypes as mt

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.support.bench import Bench, Sample

JOBS = 4  # mirror's default --jobs
READ_BYTES = 1 << 20


def night_requests_config(references: list[str]) -> str:
    """A curl config sending a nothing-changed night's requests to plain-HTTP registries, each as mirror asks it
    (`next` starts a request afresh: its header and output are given again)."""
    each = ["next", f'header = "Accept: {mt.ACCEPT}"', 'output = "/dev/null"']
    lines = ["silent"]
    repositories: dict[str, None] = {}
    for reference in references:
        name, _, tag = reference.rpartition(":")
        host, _, repository = name.partition("/")
        lines += [*each, "head", f'url = "http://{host}/v2/{repository}/manifests/{tag}"']
        repositories.setdefault(f"{host}/{repository}", None)
    for where in repositories:
        host, _, repository = where.partition("/")
        lines += [*each, f'url = "http://{host}/v2/{repository}/tags/list"']
    host, _, repository = next(iter(repositories)).partition("/")
    lines += [*each, f'url = "http://{host}/v2/{repository}/referrers/sha256:{"0" * 64}"']
    return "\n".join(lines) + "\n"


def night_floor(bench: Bench, references: list[str]) -> list[Sample]:
    from tests.support.bench import _timed

    config = bench.work / "night-floor.curl"
    config.write_text(night_requests_config(references))
    command = ["curl", "-s", "--parallel", "--parallel-max", str(JOBS), "--parallel-immediate", "-K", str(config)]
    return [_timed("curl (night floor)", command) for _ in range(bench.repeat)]


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of process `pid` so far, all its threads, as the kernel counts it (/proc/<pid>/stat)."""
    # The command name (field 2) may hold spaces and parentheses: the fields after its last ")" start at field 3.
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # fields 14 (utime) and 15 (stime)


def service_cpu_seconds(services_dir: Path, name: str) -> float | None:
    """CPU time so far of a service scripts/services started (its <dir>/<name>/pid); None when it is not running
    there (services started elsewhere, a stale pid file)."""
    try:
        return process_cpu_seconds(int((services_dir / name / "pid").read_text()))
    except (OSError, ValueError, IndexError):
        return None


def cpu_bound_seconds(client_cpu: float, service_cpu: float, cores: int) -> float:
    """The least wall time both could take on `cores` shared cores, each core busy all along."""
    return (client_cpu + service_cpu) / cores


def with_service_cpu(services_dir: Path, name: str, run: Callable[[], Sample]) -> tuple[Sample, float | None]:
    """`run()`'s sample, and the CPU time service `name` spent while it ran (None when that is not known)."""
    before = service_cpu_seconds(services_dir, name)
    sample = run()
    after = service_cpu_seconds(services_dir, name)
    return sample, None if before is None or after is None else after - before


def describe_service_cpu(samples: list[Sample], service_cpu: list[float | None], service: str) -> str:
    """The service's CPU time while mirror ran, and the wall time the two could not go below on this machine."""
    known = [seconds for seconds in service_cpu if seconds is not None]
    if not known:
        return f"{service} CPU not known (not started by scripts/services)"
    spent = statistics.median(known)
    cores = os.cpu_count() or 1
    bound = cpu_bound_seconds(statistics.median(s.cpu_seconds for s in samples), spent, cores)
    return f"{service} CPU meanwhile: {spent:.2f} s; with mirror's, on {cores} cores, at least: {bound:.2f} s"


def describe_night_floor(samples: list[Sample], requests: int) -> str:
    seconds = statistics.median(s.seconds for s in samples)
    return f"the registry's answers alone: {seconds:.2f} s (curl, {requests} requests, {JOBS} at a time)"


def read_and_hash_seconds(paths: list[Path], threads: int) -> float:
    """Wall time to read and hash `paths` (largest first) on `threads` threads, each with its own buffer."""
    ordered = sorted(paths, key=lambda p: -p.stat().st_size)
    lock = threading.Lock()

    def work() -> None:
        buffer = memoryview(mmap.mmap(-1, READ_BYTES))
        while True:
            with lock:
                if not ordered:
                    return
                path = ordered.pop(0)
            digest = hashlib.sha256()
            descriptor = os.open(path, os.O_RDONLY)
            try:
                while count := os.readv(descriptor, [buffer]):
                    digest.update(buffer[:count])
            finally:
                os.close(descriptor)

    started = time.monotonic()
    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return time.monotonic() - started


def describe_read_floor(bundle: Path, threads: int, repeat: int) -> str:
    paths = [p for p in bundle.rglob("*") if p.is_file()]
    seconds = statistics.median(read_and_hash_seconds(paths, threads) for _ in range(repeat))
    return f"read and hashed in this process, {threads} threads, no start-up: {seconds:.2f} s"


def big_upload_script(host: str, repository: str, blob: Path, digest: str, config: Path, ca_file: Path) -> str:
    """bash: the blob streamed into `repository` with curl (POST, one PATCH, PUT); credentials from `config`."""
    curl = f"curl -sS -f -K {shlex.quote(str(config))} --cacert {shlex.quote(str(ca_file))}"
    absolute = f'case $location in http*) ;; *) location="https://{host}$location";; esac'
    location_of = "tr -d '\\r' | sed -n 's/^[Ll]ocation: //p'"
    return "\n".join(
        [
            "set -euo pipefail",
            f"location=$({curl} -X POST -D - -o /dev/null https://{host}/v2/{repository}/blobs/uploads/ "
            f"| {location_of})",
            absolute,
            f"location=$({curl} -X PATCH -H 'Content-Type: application/octet-stream' -T {shlex.quote(str(blob))} "
            f'-D - -o /dev/null "$location" | {location_of})',
            absolute,
            'case $location in *\\?*) separator="&";; *) separator="?";; esac',
            f'{curl} -X PUT -o /dev/null "$location${{separator}}digest={digest}"',
        ]
    )


def big_floor(bench: Bench, bundle: Path, runs: int) -> list[Sample]:
    from tests.support.bench import _timed

    blob = max((p for p in (bundle / "blobs" / "sha256").iterdir()), key=lambda p: p.stat().st_size)
    config = bench.work / "big-floor.curl"
    config.touch(mode=0o600)
    config.write_text(f'user = "{bench.services.internal_user}:{bench.services.internal_password}"\n')
    samples = []
    for r in range(runs):
        repository = f"bench-{bench.run_id}-big-floor-r{r}/image"
        script = big_upload_script(
            bench.services.internal, repository, blob, f"sha256:{blob.name}", config, bench.services.ca_file
        )
        samples.append(_timed("curl upload (big floor)", ["bash", "-c", script]))
    return samples


def describe_big_floor(samples: list[Sample]) -> str:
    seconds = statistics.median(s.seconds for s in samples)
    return f"curl streaming the blob alone: {seconds:.2f} s"
