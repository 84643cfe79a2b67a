"""Image tag selectors and collect --lock against the local upstream registry (CNCF distribution).

A repository holds 1,200 tags (one tiny manifest PUT under each). Distribution 2.8 lists them on one page
whatever `n` asks; the client follows `Link` pages where a registry sends them (tests/unit/test_tag_lists.py,
and the simulator's pages in tests/unit/test_tag_selector_resolve_sim.py).
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from mirror.bundle.inventory import parse_inventory
from tests.support.manytags import TagPusher, tiny_manifest
from tests.support.services import UPSTREAM_REGISTRY

SETTINGS = {UPSTREAM_REGISTRY: {"plainHTTP": True}}
TAGS = [f"1.{minor}.{patch}" for minor in range(12) for patch in range(100)]  # 1,200 tags


@pytest.fixture(scope="module")
def many_tags(services) -> str:  # services: the registry must run
    repository = f"tagsel/many-{uuid.uuid4().hex[:8]}"
    with TagPusher(UPSTREAM_REGISTRY, repository) as pusher:
        pusher.tag_all([*TAGS, "latest", "main-0123abc", "v2.0.0-rc.1"])
    return f"{UPSTREAM_REGISTRY}/{repository}"


def _resolve(mirror_cli, manifest: Path) -> list[dict]:
    result = mirror_cli("resolve", manifest, "--json")
    assert result.exit_code == 0, result.stderr
    return result.json()["artifacts"]


def _sources(artifacts: list[dict]) -> list[str]:
    return [a["source"] for a in artifacts]


def test_semver_and_latest_choose_the_highest_of_1200_tags(mirror_cli, write_mirrorset, many_tags) -> None:
    manifest = write_mirrorset([{"ref": many_tags, "tags": {"semver": "~1.7", "latest": 3}}], registries=SETTINGS)
    assert _sources(_resolve(mirror_cli, manifest)) == [f"{many_tags}:1.7.{p}" for p in (99, 98, 97)]


def test_a_regex_chooses_every_tag_it_finds(mirror_cli, write_mirrorset, many_tags) -> None:
    manifest = write_mirrorset([{"ref": many_tags, "tags": {"regex": "^1\\.11\\.9[0-9]$"}}], registries=SETTINGS)
    assert _sources(_resolve(mirror_cli, manifest)) == [f"{many_tags}:1.11.{p}" for p in range(99, 89, -1)]


def test_latest_alone_leaves_prereleases_and_tags_that_are_not_versions_out(
    mirror_cli, write_mirrorset, many_tags
) -> None:
    manifest = write_mirrorset([{"ref": many_tags, "tags": {"latest": 1}}], registries=SETTINGS)
    assert _sources(_resolve(mirror_cli, manifest)) == [f"{many_tags}:1.11.99"]


def test_resolve_shows_how_each_tag_was_chosen(mirror_cli, write_mirrorset, many_tags) -> None:
    manifest = write_mirrorset([{"ref": many_tags, "tags": {"semver": ">=1.11.99"}}], registries=SETTINGS)
    result = mirror_cli("resolve", manifest)
    assert result.exit_code == 0, result.stderr
    assert f"image  {many_tags}:1.11.99" in result.stdout
    assert 'chosen by tags: {"semver": ">=1.11.99"}' in result.stdout


def test_a_selector_choosing_nothing_exits_2_naming_the_newest_tags(mirror_cli, write_mirrorset, many_tags) -> None:
    manifest = write_mirrorset([{"ref": many_tags, "tags": {"semver": ">=3"}}], registries=SETTINGS)
    result = mirror_cli("resolve", manifest)
    assert result.exit_code == 2
    assert "matches the selector (semver '>=3')" in result.stderr
    assert "newest first: v2.0.0-rc.1, 1.11.99, 1.11.98" in result.stderr


def test_collect_with_the_lock_collects_what_was_resolved_after_upstream_moved(
    tmp_path, mirror_cli, write_mirrorset, services
) -> None:
    repository = f"tagsel/moving-{uuid.uuid4().hex[:8]}"
    reference = f"{UPSTREAM_REGISTRY}/{repository}"
    with TagPusher(UPSTREAM_REGISTRY, repository) as pusher:
        for tag in ("1.0.0", "1.1.0", "1.2.0"):
            pusher.tag(tag, tiny_manifest(tag))
        manifest = write_mirrorset(
            [{"ref": reference, "tags": {"semver": ">=1", "latest": 2}}], registries=SETTINGS, attached=False
        )
        resolved = mirror_cli("resolve", manifest, "--json")
        assert resolved.exit_code == 0, resolved.stderr
        lock = tmp_path / "lock.json"
        lock.write_text(resolved.stdout)
        locked = {a["source"]: a["digest"] for a in resolved.json()["artifacts"]}
        assert list(locked) == [f"{reference}:1.2.0", f"{reference}:1.1.0"]

        moved = pusher.tag("1.2.0", tiny_manifest("moved"))  # a locked tag moves upstream
        pusher.tag("1.3.0", tiny_manifest("1.3.0"))  # a new tag the selector would choose

    bundle = tmp_path / "bundle"
    result = mirror_cli("collect", manifest, "--lock", lock, "-o", bundle, "--no-cache", "-q")
    assert result.exit_code == 0, result.stderr
    inventory = parse_inventory((bundle / "inventory.json").read_bytes())
    assert {a.source: a.digest for a in inventory.artifacts} == locked
    assert moved not in locked.values()

    unlocked = mirror_cli("resolve", manifest, "--json").json()["artifacts"]
    assert [a["source"] for a in unlocked] == [f"{reference}:1.3.0", f"{reference}:1.2.0"]
    assert unlocked[1]["digest"] == moved


def test_collect_with_a_lock_of_other_mirrorsets_exits_2_before_any_download(
    tmp_path, mirror_cli, write_mirrorset, many_tags
) -> None:
    manifest = write_mirrorset([{"ref": many_tags, "tags": {"latest": 1}}], registries=SETTINGS)
    other = write_mirrorset([f"{many_tags}:1.0.0"], registries=SETTINGS)
    lock = tmp_path / "lock.json"
    lock.write_text(json.dumps({"apiVersion": "mirror/v1", "kind": "Lock", "artifacts": _resolve(mirror_cli, other)}))
    result = mirror_cli("collect", manifest, "--lock", lock, "-o", tmp_path / "bundle", "--no-cache")
    assert result.exit_code == 2
    assert "[LOCK_MISSING]" in result.stderr and "[LOCK_UNEXPECTED]" in result.stderr
    assert "nothing was contacted" in result.stderr
    assert not (tmp_path / "bundle").exists()
