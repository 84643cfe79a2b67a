"""scripts/bench: mirror beside skopeo (and hashlib) doing the same work on the local services.

Steps, each repeated (--repeat, median reported) with the two tools taking turns to go first:
1. collect: `mirror collect` of N images into a bundle directory, against a loop of `skopeo copy` of each
   image into one OCI layout (skopeo copies one image per invocation; its `sync` cannot write an OCI layout).
2. import: `mirror import` of that bundle into the internal TLS registry, against a loop of `skopeo copy`
   from the layout to the same registry. Every run writes to fresh repositories, so nothing is skipped.
   Once, untimed: the requests that import sends per blob, counted by a proxy in front of the plain-HTTP
   registry (a first import, then a second of the same bundle; tests/support/importrequests.py).
3. verify: `mirror verify` of a signed bundle of about --verify-size, against what the machine's cores could do:
   its size over (cores x hashlib's one-core SHA-256 rate, measured in-process in the same run). A single huge
   blob can only use one core, so the corpus is cut into VERIFY_LAYER_BYTES layers.
4. night: a nothing-changed `mirror collect --since PREV` over --night-images small images (only when this
   build of mirror has --since).
10. audit: `mirror audit` of --night-images small images imported from a signed bundle into the TLS registry
    (only when this build of mirror has `audit`); every run must find the targets clean.
5. peak RSS of collect and import, from /usr/bin/time -v (the largest of the repeats).
8. attached: `mirror collect` of the collect corpus with each image signed upstream (a cosign `.sig`) and an
   SPDX SBOM attached (in the referrers tag schema index, distribution 2.8 having no referrers API), with the
   discovery of attached manifests against the same collect with `spec.attached: false`, in turns; each run
   with a blob cache of its own, so neither finds the other's blobs.
6. hostile upstreams (issue 20): `mirror resolve` against a 60 MB index.yaml and against a tag list whose
   Link points back to itself, on loopback servers: time and peak RSS, finished or refused.
7. hostile input (issue 12): wall time and peak RSS for mirror to refuse (a) a forged directory bundle (signed
   by a key the policy does not list) whose layer is a --hostile-sparse-size sparse file, (b) a bundle, signed by
   the trusted collector, as a tar stuffed with --hostile-blobs one-byte members its inventory does not list,
   (c) a collect of a Flux fleet holding a ten-level YAML alias bomb. Each runs once, under a --hostile-timeout
   and a 3 GB address-space cap; a run that is not refused in time is reported so, not waited for.
12. tar: `mirror collect` of the copy corpus to a .tar against the same collect to a directory, with the bytes
    each wrote (tests/support/benchtar.py).
11. startup: `mirror --version` and `mirror --help` beside `python -c pass` (the interpreter mirror runs on),
    5 x --repeat runs of each in turns (tests/support/benchstartup.py).
13. big: `mirror import` of one single-layer image of --big-size (2G) beside `skopeo copy` of it, each into fresh
    repositories of the TLS registry, skopeo with an empty blob-info cache; peak RSS of its collect and import
    (tests/support/benchbig.py; --big-size 4G for the 4 GB run).
14. scale (not by default): collect and import of --scale-images (500,1000,2000) tiny images, every size in each
    repeat: wall, CPU, peak RSS, seconds per image and whether they grow linearly; then the import of
    --night-images tiny images beside a skopeo copy loop (tests/support/benchscale.py).
9. serve: `skopeo copy` of an image holding one --serve-size blob (1 GiB) from `mirror serve` of a bundle that
   carries it, against the same copy from the distribution registry it was collected from, in turns: the
   throughput of serve (which hashes every byte it sends) beside distribution's (which does not).

The corpus (N images sharing a --base-size layer, each with a --unique-size layer of its own) is random and
pushed afresh for every repeat: skopeo's blob-info cache would otherwise mount blobs it saw in an earlier run
instead of copying them, and win by not working.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import math
import os
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.benchcorpus import (
    Pusher,
    SigningKey,
    attach_signature_and_sbom,
    push_family,
    tar_layer,
    write_alias_bomb_fleet,
    write_hostile_bundle,
    write_stuffed_tar,
)
from tests.support.benchfloor import describe_night_floor, describe_service_cpu, night_floor, with_service_cpu
from tests.support.cosign import generate_key
from tests.support.importrequests import TARGET_REQUESTS_PER_BLOB, count_import
from tests.support.mirrorsets import write_mirrorset
from tests.support.services import Services, ensure_services
from tests.support.signedbundles import make_trust, sign
from tests.support.written import bytes_from_time_report

REPO_ROOT = Path(__file__).resolve().parents[2]
MIRROR = str(REPO_ROOT / ".venv" / "bin" / "mirror")  # --mirror benches another build
MiB = 1 << 20
VERIFY_LAYER_BYTES = 128 * MiB  # the verify corpus is cut into layers of this size, made one at a time

TARGET_COPY_RATIO = 0.5  # collect and import: at most this share of skopeo's wall time (issue 19; 0.67 before)
TARGET_VERIFY_SPEED = 0.80  # verify: at least this share of (cores x hashlib's one-core SHA-256 rate)
TARGET_NIGHT_SECONDS = 0.6  # a nothing-changed night over --night-images (200) images
TARGET_NIGHT_BYTES = 60_000  # and its bundle
TARGET_AUDIT_SECONDS = 10.0
TARGET_RSS_MB = 150.0
TARGET_SERVE_SPEED = 0.80  # serve: at least this share of the distribution registry's throughput
TARGET_ATTACHED_RATIO = 1.10  # collect with the discovery of attached manifests: at most this of without
TARGET_REFUSAL_SECONDS = 2.0  # hostile input: refused within this, under TARGET_RSS_MB
HOSTILE_ADDRESS_SPACE = 3_000_000_000  # a hostile run that expands past this fails instead of taking the machine


@dataclass(frozen=True)
class Sample:
    seconds: float
    peak_rss_mb: float
    cpu_seconds: float  # user + system, of the process and its children: less swayed by a busy machine
    bytes_written: int = 0  # to storage, as the kernel counts them (tests/support/written.py)


@dataclass
class Row:
    step: str
    what: str
    mirror: list[Sample] = field(default_factory=list)
    other_tool: str | None = None
    other: list[Sample] = field(default_factory=list)
    unit: str = "s"  # "s" compares wall times; "MB" compares peak RSS
    target: str = ""
    met: bool | None = None
    note: str = ""

    def value(self, samples: list[Sample]) -> float | None:
        if not samples:
            return None
        if self.unit == "MB":
            return max(s.peak_rss_mb for s in samples)
        return statistics.median(s.seconds for s in samples)

    @property
    def ratio(self) -> float | None:
        ours, theirs = self.value(self.mirror), self.value(self.other)
        return None if ours is None or not theirs else ours / theirs

    def to_json(self) -> dict[str, object]:
        other = None
        if self.other_tool is not None:
            samples = [s.__dict__ for s in self.other]
            other = {"tool": self.other_tool, "value": self.value(self.other), "samples": samples}
        return {
            "step": self.step,
            "what": self.what,
            "unit": self.unit,
            "mirror": {"value": self.value(self.mirror), "samples": [s.__dict__ for s in self.mirror]},
            "other": other,
            "ratio": self.ratio,
            "target": self.target,
            "met": self.met,
            "note": self.note,
        }


def _parse_size(text: str) -> int:
    match = re.fullmatch(r"(\d+)([KMG]?)", text.upper())
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a size such as 16M or 1G")
    return int(match.group(1)) * {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}[match.group(2)]


def _timed(what: str, command: list[str], env: dict[str, str] | None = None) -> Sample:
    """Run under /usr/bin/time -v; its peak RSS is the largest of the process and any one of its children."""
    done = subprocess.run(
        ["/usr/bin/time", "-v", *command], capture_output=True, text=True, env={**os.environ, **(env or {})}
    )
    if done.returncode != 0:
        sys.exit(f"bench: {what} failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
    clock = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)", done.stderr)
    if rss is None or clock is None:
        sys.exit(f"bench: {what}: no figures from /usr/bin/time:\n{done.stderr[-2000:]}")
    seconds = int(clock.group(1) or 0) * 3600 + int(clock.group(2)) * 60 + float(clock.group(3))
    cpu = sum(float(m) for m in re.findall(r"(?:User|System) time \(seconds\): ([\d.]+)", done.stderr))
    return Sample(seconds, int(rss.group(1)) / 1024, cpu, bytes_from_time_report(done.stderr))


def _signal_children(pid: int, signum: int) -> None:
    """Signal the processes `pid` started (here: the command /usr/bin/time runs), not `pid` itself."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return
    for child in children:
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(child), signum)


def _bounded(command: list[str], timeout: float) -> tuple[Sample, int]:
    """Run under /usr/bin/time -v and an address-space cap for at most `timeout` s; any exit code is an outcome.

    At the timeout the command gets SIGTERM, and SIGKILL 5 s later; /usr/bin/time still reports its figures,
    and 124 is returned. (Figures come from /usr/bin/time, a small process: a child forked from this Python
    process would inherit its peak RSS in the kernel's accounting.)
    """
    wrapped = ["/usr/bin/time", "-v", "prlimit", f"--as={HOSTILE_ADDRESS_SPACE}", "--", *command]
    process = subprocess.Popen(wrapped, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    stopped = False
    try:
        _, report = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        stopped = True
        _signal_children(process.pid, signal.SIGTERM)
        try:
            _, report = process.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            _signal_children(process.pid, signal.SIGKILL)
            _, report = process.communicate()
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", report)
    clock = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)", report)
    if rss is None or clock is None:
        sys.exit(f"bench: {command[1]}: no figures from /usr/bin/time:\n{report[-2000:]}")
    seconds = int(clock.group(1) or 0) * 3600 + int(clock.group(2)) * 60 + float(clock.group(3))
    cpu = sum(float(m) for m in re.findall(r"(?:User|System) time \(seconds\): ([\d.]+)", report))
    return Sample(seconds, int(rss.group(1)) / 1024, cpu), 124 if stopped else process.returncode


def _loop(commands: list[list[str]]) -> list[str]:
    """One shell running `commands` one after another, as a user scripting a per-image tool would."""
    return ["bash", "-c", "set -e\n" + "\n".join(shlex.join(c) for c in commands)]


def _in_turns(repeat: int, first: Callable[[], None], second: Callable[[], None]) -> None:
    # Alternating who goes first spreads the benefit of a warm page cache or registry evenly.
    if repeat % 2 == 0:
        first(), second()
    else:
        second(), first()


def _attached_in(bundle: Path) -> int:
    """The attached manifests a directory bundle's inventory lists."""
    inventory = json.loads((bundle / "inventory.json").read_bytes())
    return sum(1 for artifact in inventory["artifacts"] if artifact["kind"] == "attached")


def _size_of(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


@dataclass
class Bench:
    services: Services
    work: Path
    images: int
    base_bytes: int
    unique_bytes: int
    repeat: int
    verify_bytes: int
    night_images: int
    keep: bool
    mirror: str = MIRROR
    hostile_sparse_bytes: int = 20 << 30
    hostile_blobs: int = 200_000
    hostile_timeout: float = 20.0
    serve_bytes: int = 1 << 30
    scale_images: tuple[int, ...] = (500, 1000, 2000)
    big_bytes: int = 2 << 30
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    log: Callable[[str], None] = lambda message: print(f"bench: {message}", file=sys.stderr, flush=True)

    @property
    def registries(self) -> dict[str, object]:
        return {self.services.upstream: {"plainHTTP": True}}

    @property
    def internal_env(self) -> dict[str, str]:
        return {
            "MIRROR_REGISTRY_USERNAME": self.services.internal_user,
            "MIRROR_REGISTRY_PASSWORD": self.services.internal_password,
        }

    def _drop(self, *paths: Path) -> None:
        if not self.keep:
            for path in paths:
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)

    # -- steps 1, 2 and 5: collect and import beside skopeo ------------------------------------------------

    def copy_steps(self) -> list[Row]:
        mb = (self.base_bytes + self.images * self.unique_bytes) / 1e6
        what = f"{self.images} images, {mb:.0f} MB"
        collect = Row("collect", what, other_tool="skopeo")
        imported = Row("import", what, other_tool="skopeo")
        requests = Row("requests", f"import of {self.images} images", target=f"<= {TARGET_REQUESTS_PER_BLOB} per blob")
        sk_tls = ["--dest-cert-dir", str(self.services.cert_dir)]
        sk_creds = ["--dest-creds", f"{self.services.internal_user}:{self.services.internal_password}"]
        skopeo = ["skopeo", "--insecure-policy", "copy", "--all", "--preserve-digests", "-q"]
        for r in range(self.repeat):
            prefix = f"bench-{self.run_id}-r{r}"
            with Pusher(self.services.upstream) as pusher:
                pushed = push_family(pusher, prefix, self.images, self.base_bytes, self.unique_bytes)
            self.log(f"repeat {r + 1}/{self.repeat}: corpus {prefix} pushed ({len(pushed)} images)")
            manifest = write_mirrorset(
                self.work / f"{prefix}.yaml", [p.reference for p in pushed], registries=self.registries, name="bench"
            )
            bundle, layout = self.work / f"{prefix}-bundle", self.work / f"{prefix}-layout"
            tags = [(p.reference, p.reference.rsplit("/", 1)[-1].replace(":", "-")) for p in pushed]

            def mirror_collect(bundle: Path = bundle, manifest: Path = manifest) -> None:
                collect.mirror.append(
                    _timed("mirror collect", [self.mirror, "collect", str(manifest), "-o", str(bundle), "-q"])
                )

            def skopeo_collect(layout: Path = layout, tags: list[tuple[str, str]] = tags) -> None:
                commands = [
                    [*skopeo, "--src-tls-verify=false", f"docker://{ref}", f"oci:{layout}:{tag}"] for ref, tag in tags
                ]
                collect.other.append(_timed("skopeo copy (collect)", _loop(commands)))

            _in_turns(r, mirror_collect, skopeo_collect)

            def mirror_import(bundle: Path = bundle, prefix: str = prefix) -> None:
                command = [
                    self.mirror,
                    "import",
                    str(bundle),
                    "--registry",
                    f"https://{self.services.internal}/{prefix}-m",
                ]
                command += ["--allow-unsigned", "--ca-file", str(self.services.ca_file), "-q"]
                imported.mirror.append(_timed("mirror import", command, self.internal_env))

            def skopeo_import(layout: Path = layout, tags: list[tuple[str, str]] = tags, prefix: str = prefix) -> None:
                target = f"docker://{self.services.internal}/{prefix}-s"
                commands = [
                    [*skopeo, *sk_tls, *sk_creds, f"oci:{layout}:{tag}", f"{target}/{ref.split('/', 1)[1]}"]
                    for ref, tag in tags
                ]
                imported.other.append(_timed("skopeo copy (import)", _loop(commands)))

            _in_turns(r, mirror_import, skopeo_import)
            if r == 0:  # the count is the same every run; untimed, through a counting proxy (plain HTTP)
                counted = count_import(self.mirror, bundle, self.services.upstream)
                requests.met = counted.per_blob(counted.first) <= TARGET_REQUESTS_PER_BLOB
                requests.note = counted.describe()
            self._drop(bundle, layout)
        for row in (collect, imported):
            row.target = f"<= {TARGET_COPY_RATIO}x skopeo"
            row.met = row.ratio is not None and row.ratio <= TARGET_COPY_RATIO
        rss = []
        for row in (collect, imported):
            memory = Row(
                "peak RSS", row.step, row.mirror, "skopeo", row.other, unit="MB", target=f"< {TARGET_RSS_MB:.0f} MB"
            )
            memory.met = (memory.value(memory.mirror) or 0) < TARGET_RSS_MB
            rss.append(memory)
        return [collect, imported, requests, *rss]

    # -- step 3: verify beside cores x hashlib ---------------------------------------------------------------

    def verify_step(self) -> list[Row]:
        """verify beside cores x hashlib; the collect and import of that big bundle give peak RSS at size, too."""
        layers = max(1, math.ceil(self.verify_bytes / VERIFY_LAYER_BYTES))
        each = self.verify_bytes // layers
        with Pusher(self.services.upstream) as pusher:
            pushed = pusher.image(f"bench-{self.run_id}-verify/big", "1", (tar_layer(each) for _ in range(layers)))
        self.log(f"verify corpus pushed: {pushed.size / 1e6:.0f} MB in {layers} layer(s)")
        keys = self.work / "keys"
        keys.mkdir()
        subprocess.run([self.mirror, "keygen", "collector"], cwd=keys, check=True, capture_output=True)
        manifest = write_mirrorset(self.work / "verify.yaml", [pushed.reference], registries=self.registries)
        bundle = self.work / "verify-bundle"
        big = f"{pushed.size / 1e6:.0f} MB bundle"
        collected = Row("peak RSS", f"collect, {big}", unit="MB", target=f"< {TARGET_RSS_MB:.0f} MB")
        command = [self.mirror, "collect", str(manifest), "-o", str(bundle), "--key", str(keys / "collector.key")]
        collected.mirror.append(_timed("mirror collect (verify corpus)", [*command, "-q"]))
        policy = self.work / "policy.yaml"
        policy.write_text(
            "apiVersion: mirror/v1\nkind: TrustPolicy\n"
            f"collectors: {{keys: [{keys / 'collector.pub'}], threshold: 1}}\n"
            f"stateFile: {self.work / 'verify-state.json'}\n"
        )
        from tests.support.benchbig import verify_row

        verify = [self.mirror, "verify", "--trust", str(policy), "-q"]
        row = verify_row(self, verify, bundle, keys / "collector.key", TARGET_VERIFY_SPEED)
        imported = Row("peak RSS", f"import, {big}", unit="MB", target=f"< {TARGET_RSS_MB:.0f} MB")
        target = f"https://{self.services.internal}/bench-{self.run_id}-big"
        command = [self.mirror, "import", str(bundle), "--registry", target, "--trust", str(policy)]
        command += ["--ca-file", str(self.services.ca_file), "-q"]
        imported.mirror.append(_timed("mirror import (verify corpus)", command, self.internal_env))
        self._drop(bundle)
        for memory in (collected, imported):
            memory.met = (memory.value(memory.mirror) or 0) < TARGET_RSS_MB
        return [row, collected, imported]

    # -- step 4: the nothing-changed night -----------------------------------------------------------------

    def night_step(self) -> list[Row]:
        what = f"{self.night_images} images, nothing changed"
        target = f"< {TARGET_NIGHT_SECONDS} s, < {TARGET_NIGHT_BYTES / 1e3:.0f} kB"
        help_text = subprocess.run([self.mirror, "collect", "--help"], capture_output=True, text=True).stdout
        if "--since" not in help_text:
            return [Row("night", what, target=target, note="not available in this build (no collect --since)")]
        prefix = f"bench-{self.run_id}-night"
        with Pusher(self.services.upstream, connections=16) as pusher:
            pushed = push_family(pusher, prefix, self.night_images, 64 * 1024, 2048, workers=8)
        self.log(f"night corpus pushed ({len(pushed)} images)")
        manifest = write_mirrorset(
            self.work / "night.yaml", [p.reference for p in pushed], registries=self.registries, name="night"
        )
        first = self.work / "night-0.tar"
        full = Row("night", f"{self.night_images} images, first night (full)", note="for reference")
        full.mirror.append(_timed("first night", [self.mirror, "collect", str(manifest), "-o", str(first), "-q"]))
        row = Row("night", what, target=target)
        sizes = []
        registry_cpu = []
        for r in range(self.repeat):
            out = self.work / f"night-{r + 1}.tar"
            command = [self.mirror, "collect", str(manifest), "--since", str(first), "-o", str(out), "-q"]
            sample, spent = with_service_cpu(
                self.services.services_dir, "upstream", functools.partial(_timed, "nothing-changed night", command)
            )
            row.mirror.append(sample)
            registry_cpu.append(spent)
            sizes.append(_size_of(out))
        row.met = (row.value(row.mirror) or math.inf) < TARGET_NIGHT_SECONDS and max(sizes) < TARGET_NIGHT_BYTES
        cpu = statistics.median(x.cpu_seconds for x in row.mirror)
        references = [p.reference for p in pushed]
        floor = describe_night_floor(night_floor(self, references), 2 * len(references) + 1)
        shared = describe_service_cpu(row.mirror, registry_cpu, "registry")
        row.note = f"bundle {max(sizes) / 1e3:.0f} kB, CPU {cpu:.2f} s; {floor}; {shared}"
        return [full, row]

    # -- step 9: the audit of what was imported ------------------------------------------------------------

    def audit_step(self) -> list[Row]:
        """`mirror audit` of --night-images imported images: tags, graphs, tag lists and the catalog, all clean."""
        what = f"{self.night_images} imported images, clean"
        row = Row("audit", what, target=f"< {TARGET_AUDIT_SECONDS:.0f} s")
        help_text = subprocess.run([self.mirror, "--help"], capture_output=True, text=True).stdout
        if "audit" not in help_text:
            row.note = "not available in this build (no mirror audit)"
            return [row]
        prefix = f"bench-{self.run_id}-audit"
        with Pusher(self.services.upstream, connections=16) as pusher:
            pushed = push_family(pusher, prefix, self.night_images, 64 * 1024, 2048, workers=8)
        self.log(f"audit corpus pushed ({len(pushed)} images)")
        manifest = write_mirrorset(
            self.work / "audit.yaml", [p.reference for p in pushed], registries=self.registries, name="audit"
        )
        bundle = self.work / "audit-bundle"
        quiet = {"check": True, "stdout": subprocess.DEVNULL}
        subprocess.run([self.mirror, "collect", str(manifest), "-o", str(bundle), "-q"], **quiet)  # type: ignore[call-overload]
        trust = make_trust(self.work / "audit-trust")
        sign(bundle, trust, sequence=1)
        target = ["--registry", f"https://{self.services.internal}/{prefix}", "--ca-file", str(self.services.ca_file)]
        env = {**os.environ, **self.internal_env}
        subprocess.run(  # type: ignore[call-overload]
            [self.mirror, "import", str(bundle), "--trust", str(trust.policy), *target, "-q"], env=env, **quiet
        )
        self.log(f"audit corpus imported ({len(pushed)} images)")
        command = [self.mirror, "audit", "--trust", str(trust.policy), *target, "--json"]
        for _ in range(self.repeat):
            row.mirror.append(_timed("mirror audit", command, self.internal_env))
        done = subprocess.run(command, capture_output=True, text=True, env=env)
        checked = json.loads(done.stdout)["checked"] if done.stdout else {}
        row.met = done.returncode == 0 and (row.value(row.mirror) or math.inf) < TARGET_AUDIT_SECONDS
        row.note = (
            f"exit {done.returncode}; {checked.get('tags')} tags, {checked.get('manifests')} manifests, "
            f"{checked.get('blobs')} blobs, {checked.get('repositoriesListed')} tag lists"
        )
        self._drop(bundle)
        return [row]

    # -- step 8: the discovery of attached manifests, on and off -------------------------------------------

    def _knows_attached(self) -> bool:
        """Whether the build measured has spec.attached (an older one refuses the field as unknown)."""
        probe = self.work / "attached-probe.yaml"
        probe.write_text("apiVersion: mirror/v1\nkind: MirrorSet\nmetadata: {name: probe}\nspec: {attached: false}\n")
        return subprocess.run([self.mirror, "resolve", str(probe)], capture_output=True).returncode == 0

    def attached_step(self) -> list[Row]:
        """Discovery of attached manifests: what it costs a corpus with nothing attached (the issue's target: the
        collect of today's corpus, plus discovery), and what carrying a signature and an SBOM per image costs."""
        plain = Row(
            "attached",
            f"{self.images} images, nothing attached",
            other_tool="no discovery",
            target=f"<= {TARGET_ATTACHED_RATIO:.2f}x without discovery",
        )
        signed = Row("attached", f"{self.images} images, .sig + SBOM each", other_tool="no discovery")
        if not self._knows_attached():
            plain.note = signed.note = "not available in this build (no spec.attached)"
            return [plain, signed]
        key = generate_key()
        pushed_attached = 0
        for r in range(self.repeat):
            prefix = f"bench-{self.run_id}-a{r}"
            with Pusher(self.services.upstream) as pusher:
                pushed = push_family(pusher, prefix, self.images, self.base_bytes, self.unique_bytes)
            references = [p.reference for p in pushed]
            manifests = {
                on: write_mirrorset(
                    self.work / f"{prefix}-{'on' if on else 'off'}.yaml",
                    references,
                    registries=self.registries,
                    name="bench",
                    attached=None if on else False,  # the default: what every collect does today
                )
                for on in (True, False)
            }

            def collect(
                on: bool, row: Row, expected: int, prefix: str = prefix, manifests: dict[bool, Path] = manifests
            ) -> None:
                name = f"{prefix}-{'on' if on else 'off'}-{'signed' if row is signed else 'plain'}"
                bundle, cache = self.work / f"{name}-bundle", self.work / f"{name}-cache"
                command = [self.mirror, "collect", str(manifests[on]), "-o", str(bundle), "-q"]
                sample = _timed(f"mirror collect ({name})", command, {"MIRROR_CACHE_DIR": str(cache)})
                (row.mirror if on else row.other).append(sample)
                carried = _attached_in(bundle)
                if carried != (expected if on else 0):
                    sys.exit(f"bench: {name}: the bundle carries {carried} attached manifest(s), not {expected}")
                self._drop(bundle, cache)

            _in_turns(r, lambda: collect(True, plain, 0), lambda: collect(False, plain, 0))
            pushed_attached = attach_signature_and_sbom(self.services.upstream, pushed, key)
            self.log(f"attached, repeat {r + 1}/{self.repeat}: {len(pushed)} images signed, each with an SBOM")
            _in_turns(
                r,
                functools.partial(collect, True, signed, pushed_attached),
                functools.partial(collect, False, signed, pushed_attached),
            )
        plain.met = plain.ratio is not None and plain.ratio <= TARGET_ATTACHED_RATIO
        plain.note = "discovery only: a referrers probe per host and a tag list per repository"
        signed.note = f"{pushed_attached} attached manifests carried per run (none without); no target: more is carried"
        return [plain, signed]

    # -- step 7: hostile input, refused --------------------------------------------------------------------

    def _refusal(self, what: str, command: list[str]) -> Row:
        row = Row("hostile", what, target=f"refused < {TARGET_REFUSAL_SECONDS:.0f} s, < {TARGET_RSS_MB:.0f} MB")
        sample, code = _bounded(command, self.hostile_timeout)
        row.mirror.append(sample)
        refused = code in (2, 3)
        if code == 124:
            row.note = f"not refused within {self.hostile_timeout:g} s (stopped; peak {sample.peak_rss_mb:.0f} MB)"
        elif code == 1 and sample.peak_rss_mb > 1000:
            row.note = f"exit 1: ran into the {HOSTILE_ADDRESS_SPACE / 1e9:.0f} GB address-space cap"
        else:
            row.note = f"exit {code}, peak {sample.peak_rss_mb:.0f} MB" + ("" if refused else ": NOT refused")
        row.met = refused and sample.seconds < TARGET_REFUSAL_SECONDS and sample.peak_rss_mb < TARGET_RSS_MB
        self.log(f"hostile: {what}: {sample.seconds:.2f} s, {row.note}")
        return row

    def hostile_step(self) -> list[Row]:
        work = self.work / "hostile"
        work.mkdir()
        trusted, attacker = SigningKey.generate(), SigningKey.generate()
        policy = work / "policy.yaml"
        policy.write_text(
            "apiVersion: mirror/v1\nkind: TrustPolicy\n"
            f"collectors: {{keys: ['{trusted.write_public(work / 'collector.pub')}'], threshold: 1}}\n"
            f"stateFile: '{work / 'state.json'}'\n"
        )
        verify = [self.mirror, "verify", "--trust", str(policy), "-q"]
        forged = write_hostile_bundle(work / "forged", attacker, sparse_layer=self.hostile_sparse_bytes)
        size = f"{self.hostile_sparse_bytes / (1 << 30):g} GiB"
        rows = [self._refusal(f"forged {size} sparse dir bundle", [*verify, str(forged)])]
        self._drop(forged)
        genuine = write_hostile_bundle(work / "genuine", trusted)
        stuffed = write_stuffed_tar(genuine, work / "stuffed.tar", self.hostile_blobs)
        self.log(f"hostile: {self.hostile_blobs:,} unlisted blobs written")
        rows.append(self._refusal(f"{self.hostile_blobs:,} unlisted tiny blobs, tar", [*verify, str(stuffed)]))
        self._drop(genuine, stuffed)
        bomb = write_alias_bomb_fleet(work / "bomb")
        collect = [self.mirror, "collect", str(bomb), "-o", str(work / "bomb-bundle"), "-q"]
        rows.append(self._refusal("10-level YAML alias-bomb fleet", collect))
        self._drop(work / "bomb-bundle")
        return rows

    # -- step 9: serve beside the distribution registry -----------------------------------------------------

    def serve_step(self) -> list[Row]:
        size = (
            f"{self.serve_bytes / MiB:.0f} MiB"
            if self.serve_bytes < 1 << 30
            else f"{self.serve_bytes / (1 << 30):g} GiB"
        )
        row = Row(
            "serve",
            f"one {size} blob, skopeo pulls",
            other_tool="distribution",
            target=f">= {TARGET_SERVE_SPEED:.0%} of distribution's throughput",
        )
        if subprocess.run([self.mirror, "serve", "--help"], capture_output=True).returncode != 0:
            row.note = "not available in this build (no mirror serve)"
            return [row]
        repository = f"bench-{self.run_id}-serve/big"
        with Pusher(self.services.upstream) as pusher:
            pushed = pusher.image(repository, "1", [tar_layer(self.serve_bytes)])
        self.log(f"serve corpus pushed: {pushed.size / 1e6:.0f} MB in one layer")
        manifest = write_mirrorset(self.work / "serve.yaml", [pushed.reference], registries=self.registries)
        bundle = self.work / "serve-bundle"
        _timed("mirror collect (serve corpus)", [self.mirror, "collect", str(manifest), "-o", str(bundle), "-q"])
        out = self.work / "serve-pull"

        def pull(reference: str, samples: list[Sample], what: str) -> None:
            command = ["skopeo", "--insecure-policy", "copy", "-q", "--src-tls-verify=false"]
            samples.append(_timed(what, [*command, f"docker://{reference}", f"dir:{out}"]))
            shutil.rmtree(out)

        with _serving(self.mirror, bundle, self.work / "serve.log") as address:
            for r in range(self.repeat):
                _in_turns(
                    r,
                    lambda: pull(f"{address}/{repository}:1", row.mirror, "skopeo copy from mirror serve"),
                    lambda: pull(pushed.reference, row.other, "skopeo copy from distribution"),
                )
        row.met = row.ratio is not None and 1 / row.ratio >= TARGET_SERVE_SPEED
        served = row.value(row.mirror)
        row.note = f"serve: {pushed.size / 1e6 / served:.0f} MB/s" if served else ""
        self._drop(bundle)
        return [row]

    def run(self, steps: set[str]) -> list[Row]:
        copy = self.copy_steps() if "copy" in steps else []
        verify = self.verify_step() if "verify" in steps else []
        night = self.night_step() if "night" in steps else []
        attached = self.attached_step() if "attached" in steps else []
        serve = self.serve_step() if "serve" in steps else []
        audited = self.audit_step() if "audit" in steps else []
        startup = []
        if "startup" in steps:
            from tests.support.benchstartup import startup_rows

            startup = startup_rows(self.mirror, runs=5 * self.repeat)
        tar = []
        if "tar" in steps:
            from tests.support.benchtar import tar_rows

            tar = tar_rows(self)
        scale = []
        if "scale" in steps:
            from tests.support.benchscale import scale_rows

            scale = scale_rows(self)
        big = []
        if "big" in steps:
            from tests.support.benchbig import big_rows

            big = big_rows(self)
        hostile = []
        if "hostile" in steps:
            hostile = self.hostile_step() + hostile_upstream_rows(self.work, self.mirror, self.log)
        return (
            copy[:3]
            + tar
            + big[:1]
            + attached
            + verify[:1]
            + serve
            + night
            + audited
            + startup
            + copy[3:]
            + verify[1:]
            + scale
            + big[1:]
            + hostile
        )


TARGET_HOSTILE_SECONDS = 30.0


@contextlib.contextmanager
def _serving(mirror: str, bundle: Path, log: Path) -> Iterator[str]:
    """`mirror serve BUNDLE` on a free loopback port (its log in `log`); yields host:port; stopped with SIGTERM."""
    with log.open("w") as errors:
        command = [mirror, "serve", str(bundle), "--allow-unsigned", "--listen", "127.0.0.1:0", "--json", "-q"]
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors, text=True)
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            if not line:
                sys.exit(f"bench: mirror serve did not start:\n{log.read_text()[-3000:]}")
            yield str(json.loads(line)["url"]).removeprefix("http://")
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if process.stdout is not None:
                process.stdout.close()


def hostile_upstream_rows(work: Path, mirror: str, log: Callable[[str], None]) -> list[Row]:
    """Upstreams under every byte cap that ask for unbounded memory or work: finished or refused, quickly."""
    from tests.support.charts import build_chart
    from tests.support.hostile import HostileServer
    from tests.support.hostile.unbounded import ChartRepository, Registry, run_measured, tag_page, write_large_index

    target = f"< {TARGET_HOSTILE_SECONDS:.0f} s, < {TARGET_RSS_MB:.0f} MB"
    archive = build_chart("app", "1.0.0", values={})
    index = work / "hostile-index.yaml"
    write_large_index(index, 60 * 10**6, app_archive=archive)
    registry = Registry(tag_pages={"charts/app": tag_page("charts/app", 4 * 10**6)})
    rows = []
    with (
        HostileServer(ChartRepository(index=index, archives={"app-1.0.0.tgz": archive}).route) as charts,
        HostileServer(registry.route) as tags,
    ):
        cases = [
            ("60 MB index.yaml, one chart", {"name": "app", "repo": charts.url, "version": "^1"}, {}),
            (
                "self-linking tag list, 4 MB pages",
                {"name": "app", "repo": f"oci://{tags.netloc}/charts", "version": ">=1"},
                {tags.netloc: {"plainHTTP": True}},
            ),
        ]
        for what, chart, registries in cases:
            manifest = work / f"hostile-{len(rows)}.yaml"
            spec = {"registries": registries, "charts": [{**chart, "images": False}]}
            manifest.write_text(
                json.dumps({"apiVersion": "mirror/v1", "kind": "MirrorSet", "metadata": {"name": "h"}, "spec": spec})
            )
            result = run_measured([mirror, "resolve", str(manifest)], timeout_s=300)
            row = Row("hostile", what, target=target)
            row.mirror.append(Sample(result.seconds, result.max_rss_bytes / MiB, 0.0))
            outcome = "finished" if result.exit_code == 0 else f"refused, exit {result.exit_code}"
            row.note = f"{outcome}; peak RSS {result.max_rss_bytes / MiB:.0f} MB"
            row.met = result.exit_code in (0, 2, 3, 4) and not result.timed_out
            row.met = row.met and result.seconds < TARGET_HOSTILE_SECONDS and result.max_rss_bytes / MiB < TARGET_RSS_MB
            log(f"hostile: {what}: {result.seconds:.1f} s, {row.note}")
            rows.append(row)
    index.unlink()
    return rows


def _cell(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    return f"{value:.2f} s" if unit == "s" else f"{value:.0f} MB"


def print_table(rows: list[Row], bench: Bench, elapsed: float) -> None:
    print(
        f"corpus: {bench.images} images, base {bench.base_bytes / 1e6:.1f} MB + {bench.unique_bytes / 1e6:.1f} MB "
        f"each; medians of {bench.repeat} run(s); peak RSS is the largest run; took {elapsed:.0f} s"
    )
    header = f"{'step':<10}{'what':<36}{'mirror':>10}{'other':>28}{'ratio':>8}  {'target':<32}{'met?':<6}"
    print(header)
    print("-" * len(header))
    for row in rows:
        other = "-" if row.other_tool is None else f"{_cell(row.value(row.other), row.unit)} {row.other_tool}"
        ratio = "-" if row.ratio is None else f"{row.ratio:.2f}x"
        met = {None: "", True: "yes", False: "NO"}[row.met]
        line = f"{row.step:<10}{row.what:<36}{_cell(row.value(row.mirror), row.unit):>10} {other:>27}{ratio:>8}"
        print(f"{line}  {row.target:<32}{met:<6}{row.note}")
    print()
    for row in rows:
        if row.ratio is None:
            continue
        if row.step == "tar":
            print(f"tar: collect to a .tar takes {row.ratio:.2f}x collect to a directory; {row.note}")
        elif row.step == "verify":
            print(f"verify: mirror hashes at {1 / row.ratio:.0%} of {row.other_tool}; {row.note}")
        elif row.step == "serve":
            print(
                f"serve: skopeo pulls from mirror serve at {1 / row.ratio:.0%} of the speed it pulls from distribution"
            )
        elif row.step == "startup":
            from tests.support.benchstartup import summary

            print(summary(row))
        elif row.step == "attached":
            cpu = statistics.median(x.cpu_seconds for x in row.mirror) / statistics.median(
                x.cpu_seconds for x in row.other
            )
            print(
                f"attached: collect with discovery takes {row.ratio:.2f}x the wall time of the same collect without "
                f"({cpu:.2f}x its CPU time)"
            )
        elif row.unit == "s":
            cpu = statistics.median(x.cpu_seconds for x in row.mirror) / statistics.median(
                x.cpu_seconds for x in row.other
            )
            print(f"{row.step}: mirror takes {row.ratio:.2f}x skopeo's wall time ({cpu:.2f}x its CPU time)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="scripts/bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=12, help="images in the corpus (default 12)")
    parser.add_argument("--base-size", type=_parse_size, default=24 * 10**6, help="shared base layer (default 24M)")
    parser.add_argument("--unique-size", type=_parse_size, default=6 * 10**6, help="each image's own layer (6M)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each step; medians are reported (3)")
    parser.add_argument("--verify-size", type=_parse_size, default=1 << 30, help="size of the verify bundle (1G)")
    parser.add_argument("--serve-size", type=_parse_size, default=1 << 30, help="the blob skopeo pulls from serve (1G)")
    parser.add_argument(
        "--big-size", type=_parse_size, default=2 << 30, help="the single layer of step big (2G; 4G for the 4 GB run)"
    )
    parser.add_argument("--night-images", type=int, default=200, help="images of the nothing-changed night (200)")
    parser.add_argument(
        "--steps",
        default="copy,tar,big,attached,verify,serve,night,audit,startup,hostile",
        help="which to run: copy (collect, import, requests per blob, RSS), tar (collect to a .tar beside collect "
        "to a directory), big (import of one --big-size layer beside skopeo, RSS), attached (collect with and "
        "without the discovery of attached manifests), verify, serve "
        "(skopeo pulling from mirror serve and from distribution), night, audit (of --night-images imported "
        "images), startup (mirror --version and --help), hostile (hostile bundles and upstreams), scale (collect and "
        "import of --scale-images tiny images: time, CPU, RSS, linearity; not run by default)",
    )
    parser.add_argument(
        "--hostile-sparse-size", type=_parse_size, default=20 << 30, help="the forged bundle's sparse layer (20G)"
    )
    parser.add_argument("--hostile-blobs", type=int, default=200_000, help="unlisted blobs stuffed in (200000)")
    parser.add_argument(
        "--hostile-timeout", type=float, default=20.0, help="seconds before a hostile run is stopped (20)"
    )
    parser.add_argument(
        "--scale-images",
        type=lambda text: tuple(int(n) for n in text.split(",")),
        default=(500, 1000, 2000),
        help="sizes of the scale step's MirrorSets (500,1000,2000)",
    )
    parser.add_argument("--small", action="store_true", help="a tiny corpus for tests: checks the bench runs")
    parser.add_argument("--mirror", default=MIRROR, help="the mirror command to measure (default: this checkout's)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory under .bench/")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    if args.small:
        args.images, args.base_size, args.unique_size, args.repeat = 2, MiB, 256 * 1024, 1
        args.verify_size, args.night_images, args.serve_size, args.big_size = 4 * MiB, 3, 4 * MiB, 20 * MiB
        args.scale_images = (2, 4)
        args.hostile_sparse_size, args.hostile_blobs, args.hostile_timeout = 1 << 30, 2_000, 10.0
    if args.keep:
        (REPO_ROOT / ".bench").mkdir(exist_ok=True)
    if args.mirror == MIRROR:
        # An installed mirror has its bytecode compiled; a checkout run with PYTHONDONTWRITEBYTECODE would
        # compile every module on every run and be measured slower than it is.
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO_ROOT / "mirror")], check=True)
    work = Path(tempfile.mkdtemp(prefix="mirror-bench-", dir=REPO_ROOT / ".bench" if args.keep else None))
    # A build with a blob cache keeps it in the work directory: on the bundle's file system, as a default
    # cache would be, and gone afterwards. Every blob of the corpus is new, so the cache only costs here.
    os.environ["MIRROR_CACHE_DIR"] = str(work / "mirror-cache")
    started = time.monotonic()
    bench = Bench(
        ensure_services(),
        work,
        args.images,
        args.base_size,
        args.unique_size,
        args.repeat,
        args.verify_size,
        args.night_images,
        args.keep,
        args.mirror,
        args.hostile_sparse_size,
        args.hostile_blobs,
        args.hostile_timeout,
        serve_bytes=args.serve_size,
        scale_images=args.scale_images,
        big_bytes=args.big_size,
    )
    try:
        rows = bench.run(set(args.steps.split(",")))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    elapsed = time.monotonic() - started
    if args.json:
        print(json.dumps({"seconds": elapsed, "repeat": args.repeat, "rows": [r.to_json() for r in rows]}, indent=2))
    else:
        print_table(rows, bench, elapsed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
