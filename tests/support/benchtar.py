"""scripts/bench step `tar`: `mirror collect` of the copy corpus to a .tar beside the same collect to a
directory, in turns, each with a fresh blob cache of its own (the default: the cache on): wall time, CPU time,
and the bytes each wrote to storage (the cache's copy included). Issue 19's target: the .tar costs at most
1.05x, writing each byte once (a .tar collect writes new blobs only into the tar; a directory's files are hard
links of the cache's entries)."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import TYPE_CHECKING

from tests.support.benchcorpus import Pusher, push_family
from tests.support.mirrorsets import write_mirrorset

if TYPE_CHECKING:
    from tests.support.bench import Bench, Row

TARGET_TAR_RATIO = 1.05


def _size(path: Path) -> int:
    return path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def tar_rows(bench: Bench) -> list[Row]:
    from tests.support.bench import Row, _in_turns, _timed

    mb = (bench.base_bytes + bench.images * bench.unique_bytes) / 1e6
    row = Row("tar", f"collect .tar, {bench.images} images, {mb:.0f} MB", other_tool="to a dir")
    sizes: list[int] = []
    for r in range(bench.repeat):
        prefix = f"bench-{bench.run_id}-t{r}"
        with Pusher(bench.services.upstream) as pusher:
            pushed = push_family(pusher, prefix, bench.images, bench.base_bytes, bench.unique_bytes)
        manifest = write_mirrorset(
            bench.work / f"{prefix}.yaml", [p.reference for p in pushed], registries=bench.registries, name="bench"
        )

        def collect(out: Path, samples: list, manifest: Path = manifest) -> None:
            cache = out.with_name(out.name + "-cache")
            command = [bench.mirror, "collect", str(manifest), "-o", str(out), "-q"]
            samples.append(_timed(f"mirror collect -o {out.name}", command, {"MIRROR_CACHE_DIR": str(cache)}))
            sizes.append(_size(out))
            bench._drop(out, cache)

        _in_turns(
            r,
            lambda prefix=prefix: collect(bench.work / f"{prefix}.tar", row.mirror),
            lambda prefix=prefix: collect(bench.work / f"{prefix}-dir", row.other),
        )
    row.target = f"<= {TARGET_TAR_RATIO}x collect to a directory"
    row.met = row.ratio is not None and row.ratio <= TARGET_TAR_RATIO
    written_tar = statistics.median(s.bytes_written for s in row.mirror) / 1e6
    written_dir = statistics.median(s.bytes_written for s in row.other) / 1e6
    cpu_tar = statistics.median(s.cpu_seconds for s in row.mirror)
    cpu_dir = statistics.median(s.cpu_seconds for s in row.other)
    row.note = (
        f"wrote {written_tar:.0f} MB (.tar), {written_dir:.0f} MB (dir), cache included "
        f"({written_tar / max(written_dir, 1e-6):.2f}x); CPU {cpu_tar:.2f} s vs {cpu_dir:.2f} s; "
        f"bundle {statistics.median(sizes) / 1e6:.0f} MB"
    )
    return [row]
