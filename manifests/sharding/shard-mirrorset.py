#!/usr/bin/env python3
"""Split one MirrorSet into N shard MirrorSets, for a Kubernetes indexed Job (docs/scaling.md).

Usage: shard-mirrorset.py MIRRORSET.yaml SHARDS OUTDIR
Writes OUTDIR/shard-0.yaml ... shard-(SHARDS-1).yaml. Each image goes to the shard its repository hashes to, so
every tag of a repository lands in one shard (they share layers), and an image stays in its shard from one night
to the next while the list grows: each shard's nightly bundle stays incremental to its own last one. Charts, Git
repositories, Flux fleets and files go to shard 0; every other field of the spec is copied to every shard.
Needs Python 3 and PyYAML (both come with mirror).
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import yaml


def repository_of(image: object) -> str:
    """An image entry's repository: its reference (a string, or `ref`) without tag and digest."""
    reference = str(image["ref"] if isinstance(image, dict) else image)
    name = reference.split("@", 1)[0]
    host_and_path, _, last = name.rpartition("/")
    return f"{host_and_path}/{last.split(':', 1)[0]}" if host_and_path else last.split(":", 1)[0]


def shard_of(image: object, shards: int) -> int:
    return int.from_bytes(hashlib.sha256(repository_of(image).encode()).digest()[:8], "big") % shards


def split(document: dict, shards: int) -> list[dict]:
    spec = document.get("spec") or {}
    result = []
    for index in range(shards):
        shard_spec = {key: value for key, value in spec.items() if key == "images" or index == 0 or key not in
                      ("charts", "git", "flux", "files")}  # fmt: skip
        shard_spec["images"] = [i for i in spec.get("images") or [] if shard_of(i, shards) == index]
        metadata = {**(document.get("metadata") or {})}
        metadata["name"] = f"{metadata.get('name', 'mirrorset')}-shard-{index}"
        result.append({**document, "metadata": metadata, "spec": shard_spec})
    return result


def main(argv: list[str]) -> int:
    if len(argv) != 3 or not argv[1].isdigit() or int(argv[1]) < 1:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    source, shards, out = Path(argv[0]), int(argv[1]), Path(argv[2])
    document = yaml.safe_load(source.read_text())
    out.mkdir(parents=True, exist_ok=True)
    for index, shard in enumerate(split(document, shards)):
        (out / f"shard-{index}.yaml").write_text(yaml.safe_dump(shard, sort_keys=False))
        print(f"shard-{index}.yaml: {len(shard['spec']['images'])} images")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
