"""scripts/bench step `scale`: `mirror collect` and `mirror import` of a MirrorSet of tiny images at growing sizes
(500, 1,000, 2,000 by default): wall time, CPU time, peak RSS and seconds per image at each size, and whether
time grows linearly. Issue 19's targets: peak RSS under 150 MB at 2,000 images, and per-image wall time at the
largest size within TARGET_LINEAR_RATIO of that at the smallest. Then the import of --night-images (200) tiny
images beside a loop of `skopeo copy` from an OCI layout of the same images [<= TARGET_SMALL_IMPORT_RATIO].

The corpus is pushed once, at the largest size (each image its own repository: the shared 64 kB base layer
mounted, a 2 kB layer of its own, as the night corpus); each smaller size collects the first N of its images.
Imports go to fresh namespaces of the internal (TLS, htpasswd) registry, so nothing is skipped.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import TYPE_CHECKING

from tests.support.benchcorpus import Pusher, push_family
from tests.support.mirrorsets import write_mirrorset

if TYPE_CHECKING:
    from tests.support.bench import Bench, Row, Sample

TARGET_LINEAR_RATIO = 1.3  # seconds per image at the largest size, at most this times that at the smallest
TARGET_SMALL_IMPORT_RATIO = 0.2  # import of 200 tiny images: at most this share of skopeo's wall time
BASE_BYTES = 64 * 1024
UNIQUE_BYTES = 2048


def _per_image(samples: list[Sample], images: int) -> float:
    return statistics.median(s.seconds for s in samples) / images


def _linearity(step: str, rows: dict[int, Row]) -> Row:
    from tests.support.bench import Row

    smallest, largest = min(rows), max(rows)
    first, last = _per_image(rows[smallest].mirror, smallest), _per_image(rows[largest].mirror, largest)
    cpu_first = statistics.median(s.cpu_seconds for s in rows[smallest].mirror) / smallest
    cpu_last = statistics.median(s.cpu_seconds for s in rows[largest].mirror) / largest
    row = Row("scale", f"{step}: s/image at {largest} vs {smallest}", target=f"<= {TARGET_LINEAR_RATIO}x")
    row.met = last <= TARGET_LINEAR_RATIO * first
    row.note = (
        f"wall {last * 1e3:.1f} vs {first * 1e3:.1f} ms/image ({last / first:.2f}x); "
        f"CPU {cpu_last * 1e3:.1f} vs {cpu_first * 1e3:.1f} ms/image ({cpu_last / cpu_first:.2f}x)"
    )
    return row


def scale_rows(bench: Bench) -> list[Row]:
    from tests.support.bench import TARGET_RSS_MB, Row, _timed

    sizes = sorted(bench.scale_images)
    prefix = f"bench-{bench.run_id}-scale"
    with Pusher(bench.services.upstream, connections=16) as pusher:
        pushed = push_family(pusher, prefix, sizes[-1], BASE_BYTES, UNIQUE_BYTES, workers=8)
    bench.log(f"scale corpus pushed ({len(pushed)} images)")
    collected: dict[int, Row] = {}
    imported: dict[int, Row] = {}
    manifests: dict[int, Path] = {}
    for size in sizes:
        collected[size] = Row("scale", f"collect {size} tiny images", target=f"< {TARGET_RSS_MB:.0f} MB")
        imported[size] = Row("scale", f"import {size} tiny images", target=f"< {TARGET_RSS_MB:.0f} MB")
        manifests[size] = write_mirrorset(
            bench.work / f"scale-{size}.yaml",
            [p.reference for p in pushed[:size]],
            registries=bench.registries,
            name="scale",
        )
    # Each repeat runs every size, so that a machine whose load changes during the step slows all sizes alike.
    for r in range(bench.repeat):
        for size in sizes:
            bundle = bench.work / f"scale-{size}-{r}"
            cache = bench.work / f"scale-{size}-{r}-cache"
            command = [bench.mirror, "collect", str(manifests[size]), "-o", str(bundle), "-q"]
            collected[size].mirror.append(
                _timed(f"mirror collect ({size} images)", command, {"MIRROR_CACHE_DIR": str(cache)})
            )
            target = f"https://{bench.services.internal}/{prefix}-{size}-{r}"
            command = [bench.mirror, "import", str(bundle), "--registry", target, "--allow-unsigned"]
            command += ["--ca-file", str(bench.services.ca_file), "-q"]
            imported[size].mirror.append(_timed(f"mirror import ({size} images)", command, bench.internal_env))
            bench._drop(bundle, cache)
            bench.log(f"scale: repeat {r + 1}: {size} images collected and imported")
    for size in sizes:
        for row in (collected[size], imported[size]):
            peak = max(s.peak_rss_mb for s in row.mirror)
            cpu = statistics.median(s.cpu_seconds for s in row.mirror)
            row.met = peak < TARGET_RSS_MB
            row.note = (
                f"CPU {cpu:.2f} s, peak RSS {peak:.0f} MB, {_per_image(row.mirror, size) * 1e3:.1f} ms/image wall"
            )
            bench.log(f"scale: {row.what}: {statistics.median(s.seconds for s in row.mirror):.2f} s, {row.note}")
    rows = [*collected.values(), *imported.values()]
    if len(sizes) > 1:
        rows += [_linearity("collect", collected), _linearity("import", imported)]
    return [small_import_row(bench), *rows]


def small_import_row(bench: Bench) -> Row:
    """mirror import of --night-images tiny images beside skopeo copying each from an OCI layout, in turns; each
    repeat on a corpus of its own (skopeo's blob-info cache would otherwise mount what it saw before)."""
    from tests.support.bench import Row, _in_turns, _loop, _timed

    count = bench.night_images
    row = Row("import", f"{count} tiny images", other_tool="skopeo", target=f"<= {TARGET_SMALL_IMPORT_RATIO}x skopeo")
    skopeo = ["skopeo", "--insecure-policy", "copy", "--all", "--preserve-digests", "-q"]
    tls = ["--dest-cert-dir", str(bench.services.cert_dir)]
    creds = ["--dest-creds", f"{bench.services.internal_user}:{bench.services.internal_password}"]
    for r in range(bench.repeat):
        prefix = f"bench-{bench.run_id}-small{r}"
        with Pusher(bench.services.upstream, connections=16) as pusher:
            pushed = push_family(pusher, prefix, count, BASE_BYTES, UNIQUE_BYTES, workers=8)
        manifest = write_mirrorset(
            bench.work / f"{prefix}.yaml", [p.reference for p in pushed], registries=bench.registries, name="small"
        )
        bundle, layout = bench.work / f"{prefix}-bundle", bench.work / f"{prefix}-layout"
        tags = [(p.reference, p.reference.rsplit("/", 1)[-1].replace(":", "-")) for p in pushed]
        _timed(
            "mirror collect (small import corpus)", [bench.mirror, "collect", str(manifest), "-o", str(bundle), "-q"]
        )
        _timed(
            "skopeo copy (small import corpus)",
            _loop([[*skopeo, "--src-tls-verify=false", f"docker://{ref}", f"oci:{layout}:{tag}"] for ref, tag in tags]),
        )
        target = f"{bench.services.internal}/{prefix}"
        command = [bench.mirror, "import", str(bundle), "--registry", f"https://{target}-m", "--allow-unsigned"]
        command += ["--ca-file", str(bench.services.ca_file), "-q"]
        copies = [
            [*skopeo, *tls, *creds, f"oci:{layout}:{tag}", f"docker://{target}-s/{ref.split('/', 1)[1]}"]
            for ref, tag in tags
        ]
        _in_turns(
            r,
            lambda command=command: row.mirror.append(_timed("mirror import (small)", command, bench.internal_env)),
            lambda copies=copies: row.other.append(_timed("skopeo copy (small import)", _loop(copies))),
        )
        bench._drop(bundle, layout)
    row.met = row.ratio is not None and row.ratio <= TARGET_SMALL_IMPORT_RATIO
    cpu = statistics.median(s.cpu_seconds for s in row.mirror) / statistics.median(s.cpu_seconds for s in row.other)
    row.note = f"CPU {cpu:.2f}x skopeo's; peak RSS {max(s.peak_rss_mb for s in row.mirror):.0f} MB"
    bench.log(f"scale: import of {count} tiny images: {row.ratio or 0:.2f}x skopeo, {row.note}")
    return row
