"""manifests/sharding/shard-mirrorset.py (docs/scaling.md): one MirrorSet split into shard MirrorSets that mirror
loads, every image in exactly one shard, every tag of a repository together, and the same shard night after night."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from mirror.manifest.load import load_mirrorsets

SCRIPT = Path(__file__).resolve().parents[2] / "manifests" / "sharding" / "shard-mirrorset.py"


def source(tmp_path: Path, images: list[object], **spec: object) -> Path:
    path = tmp_path / "all.yaml"
    document = {"apiVersion": "mirror/v1", "kind": "MirrorSet", "metadata": {"name": "fleet"}}
    path.write_text(yaml.safe_dump({**document, "spec": {"images": images, **spec}}))
    return path


def shard(path: Path, shards: int, out: Path) -> list[dict]:
    subprocess.run([sys.executable, SCRIPT, path, str(shards), out], check=True, capture_output=True)
    return [yaml.safe_load((out / f"shard-{i}.yaml").read_text()) for i in range(shards)]


def references(document: dict) -> list[str]:
    return [i["ref"] if isinstance(i, dict) else i for i in document["spec"]["images"]]


IMAGES = [f"registry.example/team{n % 7}/app{n}:1.{n}" for n in range(60)]


def test_every_image_lands_in_exactly_one_shard(tmp_path):
    shards = shard(source(tmp_path, IMAGES), 4, tmp_path / "out")
    found = [ref for document in shards for ref in references(document)]
    assert sorted(found) == sorted(IMAGES)
    assert all(references(document) for document in shards)  # 60 images hash over all four


def test_every_tag_and_digest_of_a_repository_lands_in_one_shard(tmp_path):
    images = [
        "registry.example/base/os:1",
        "registry.example/base/os:2",
        {"ref": "registry.example/base/os@sha256:" + "a" * 64, "platforms": ["linux/amd64"]},
        *IMAGES,
    ]
    shards = shard(source(tmp_path, images), 5, tmp_path / "out")
    holding = {i for i, document in enumerate(shards) for ref in references(document) if "/base/os" in ref}
    assert len(holding) == 1


def test_an_image_stays_in_its_shard_when_the_list_grows(tmp_path):
    before = shard(source(tmp_path, IMAGES[:30]), 3, tmp_path / "before")
    after = shard(source(tmp_path, IMAGES), 3, tmp_path / "after")
    for old, new in zip(before, after, strict=True):
        assert set(references(old)) <= set(references(new))


def test_the_shards_load_as_mirrorsets_with_the_registry_settings_and_other_sources_in_shard_zero(tmp_path):
    registries = {"registry.example": {"caFile": "ca.pem"}}
    charts = [{"name": "podinfo", "repo": "oci://registry.example/charts", "version": "6.x"}]
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "ca.pem").write_text("not read by the loader")
    shards = shard(source(tmp_path, IMAGES, registries=registries, charts=charts), 2, tmp_path / "out")
    loaded = load_mirrorsets([tmp_path / "out" / f"shard-{i}.yaml" for i in range(2)])
    assert [s.name for s in loaded] == ["fleet-shard-0", "fleet-shard-1"]
    assert all(document["spec"]["registries"] == registries for document in shards)
    assert shards[0]["spec"]["charts"] == charts and "charts" not in shards[1]["spec"]
