"""scripts/bench: time and peak memory of mirror beside skopeo doing the same copy, on the local services.

The corpus is one image with a single large layer (1 GiB by default) in the upstream registry. Each step runs
under /usr/bin/time -v, which reports the peak resident set size of the process and its children.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from tests.support.images import push, write_big_image_layout
from tests.support.mirrorsets import write_mirrorset
from tests.support.services import Services, ensure_services

REPO_ROOT = Path(__file__).resolve().parents[2]
MIRROR = REPO_ROOT / ".venv" / "bin" / "mirror"
MEMORY_TARGET_MB = 150


@dataclass(frozen=True)
class Measure:
    step: str
    tool: str
    seconds: float
    peak_rss_mb: float


def _parse_size(text: str) -> int:
    match = re.fullmatch(r"(\d+)([KMG]?)", text.upper())
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a size such as 16M or 1G")
    return int(match.group(1)) * {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}[match.group(2)]


def _timed(step: str, tool: str, command: list[str], env: dict[str, str] | None = None) -> Measure:
    done = subprocess.run(
        ["/usr/bin/time", "-v", *command], capture_output=True, text=True, env={**os.environ, **(env or {})}
    )
    if done.returncode != 0:
        sys.exit(f"bench: {step} with {tool} failed ({done.returncode}):\n{done.stdout}\n{done.stderr[-3000:]}")
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr).group(1))
    clock = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)", done.stderr)
    seconds = int(clock.group(1) or 0) * 3600 + int(clock.group(2)) * 60 + float(clock.group(3))
    return Measure(step, tool, seconds, rss / 1024)


def _make_corpus(services: Services, layer_bytes: int, work: Path, run_id: str) -> str:
    """A fresh image with one random layer for every run: no tool can reuse a blob it saw in an earlier run
    (skopeo's blob-info cache would otherwise mount it instead of copying, and win by not working)."""
    reference = f"{services.upstream}/bench/big-{layer_bytes}:{run_id}"
    layout = work / "corpus"
    write_big_image_layout(layout, "big", layer_bytes)
    push(layout, "big", reference)
    shutil.rmtree(layout)
    return reference


def run(layer_bytes: int, keep: bool) -> list[Measure]:
    services = ensure_services()
    work = Path(tempfile.mkdtemp(prefix="mirror-bench-", dir=REPO_ROOT / ".bench" if keep else None))
    try:
        run_id = uuid.uuid4().hex[:8]
        reference = _make_corpus(services, layer_bytes, work, run_id)
        registries = {services.upstream: {"plainHTTP": True}}
        manifest = write_mirrorset(work / "bench.yaml", [reference], registries=registries, name="bench")
        creds = f"{services.internal_user}:{services.internal_password}"
        env = {
            "MIRROR_REGISTRY_USERNAME": services.internal_user,
            "MIRROR_REGISTRY_PASSWORD": services.internal_password,
        }
        measures = [
            _timed("collect", "mirror", [str(MIRROR), "collect", str(manifest), "-o", str(work / "b.tar"), "-q"]),
            _timed(
                "collect",
                "skopeo",
                [
                    "skopeo",
                    "--insecure-policy",
                    "copy",
                    "--all",
                    "--preserve-digests",
                    "--src-tls-verify=false",
                    f"docker://{reference}",
                    f"oci:{work / 'sk'}:big",
                ],
            ),
            _timed(
                "import",
                "mirror",
                [
                    str(MIRROR),
                    "import",
                    str(work / "b.tar"),
                    "--registry",
                    f"https://{services.internal}/bench-{run_id}",
                    "--allow-unsigned",
                    "--ca-file",
                    str(services.ca_file),
                    "-q",
                ],
                env,
            ),
            _timed(
                "import",
                "skopeo",
                [
                    "skopeo",
                    "--insecure-policy",
                    "copy",
                    "--all",
                    "--preserve-digests",
                    "--dest-cert-dir",
                    str(services.cert_dir),
                    "--dest-creds",
                    creds,
                    f"oci:{work / 'sk'}:big",
                    f"docker://{services.internal}/bench-skopeo-{run_id}/big:1",
                ],
            ),
        ]
        return measures
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/bench", description=__doc__)
    parser.add_argument("--layer-size", type=_parse_size, default=1 << 30, help="size of the big layer (default 1G)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory under .bench/")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    if args.keep:
        (REPO_ROOT / ".bench").mkdir(exist_ok=True)
    measures = run(args.layer_size, args.keep)
    if args.json:
        print(json.dumps([m.__dict__ for m in measures], indent=2))
        return 0
    print(f"one image, one layer of {args.layer_size / (1 << 20):.0f} MiB")
    print(f"{'step':<10}{'tool':<8}{'wall s':>9}{'peak RSS MB':>13}")
    for m in measures:
        print(f"{m.step:<10}{m.tool:<8}{m.seconds:>9.2f}{m.peak_rss_mb:>13.1f}")
    for step in ("collect", "import"):
        ours, theirs = (next(m for m in measures if (m.step, m.tool) == (step, t)) for t in ("mirror", "skopeo"))
        verdict = "meets" if ours.peak_rss_mb < MEMORY_TARGET_MB else "MISSES"
        print(
            f"{step}: mirror/skopeo wall time {ours.seconds / max(theirs.seconds, 1e-9):.2f}x; "
            f"peak RSS {ours.peak_rss_mb:.0f} MB {verdict} the {MEMORY_TARGET_MB} MB target"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
