"""resolve over image entries with `tags:`, against the registry simulator paging its tag list (as distribution 3
does): each chosen tag is an ordinary image in the lock, with the selector that chose it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mirror.collector.run import resolve
from mirror.collector.unresolved import UnresolvedReferences
from mirror.errors import ManifestError
from tests.support.mirrorsets import write_mirrorset
from tests.unit.registry_sim import RegistrySim

UPSTREAM = "upstream.test"


def _tiny_image(sim: RegistrySim, repository: str, salt: str) -> bytes:
    config = json.dumps({"salt": salt}).encode()
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": sim.add_blob(repository, config),
            "size": len(config),
        },
        "layers": [],
    }
    return json.dumps(manifest).encode()


def _upstream(tags: list[str]) -> RegistrySim:
    sim = RegistrySim(UPSTREAM)
    sim.tags_page_size = 50
    raw = _tiny_image(sim, "team/app", "one")
    for tag in tags:
        sim.add_manifest("team/app", raw, tag=tag)
    return sim


def _resolve(tmp_path: Path, sim: RegistrySim, selector: dict[str, object]) -> list[dict[str, object]]:
    path = write_mirrorset(tmp_path / "m.yaml", [{"ref": f"{UPSTREAM}/team/app", "tags": selector}])
    return resolve([path], transport=sim.transport())


def _tag_lists(sim: RegistrySim) -> int:
    return sum(1 for r in sim.requests if r.url.path.endswith("/tags/list"))


def test_each_tag_chosen_is_an_image_of_the_lock_with_its_selector(tmp_path: Path) -> None:
    sim = _upstream([f"1.{minor}.{patch}" for minor in range(12) for patch in range(100)])
    artifacts = _resolve(tmp_path, sim, {"semver": "~1.11", "latest": 2})
    assert [a["source"] for a in artifacts] == [f"{UPSTREAM}/team/app:1.11.99", f"{UPSTREAM}/team/app:1.11.98"]
    assert artifacts[0]["selectedBy"] == [{"semver": "~1.11", "latest": 2}]


def test_the_tag_list_is_read_to_its_last_page(tmp_path: Path) -> None:
    sim = _upstream([f"1.0.{i}" for i in range(1200)])
    artifacts = _resolve(tmp_path, sim, {"latest": 1})
    assert [a["source"] for a in artifacts] == [f"{UPSTREAM}/team/app:1.0.1199"]
    assert _tag_lists(sim) == 24


def test_a_selector_choosing_nothing_is_an_unresolved_reference_naming_the_tags_seen(tmp_path: Path) -> None:
    sim = _upstream(["1.0.0", "2.0.0"])
    with pytest.raises(UnresolvedReferences) as raised:
        _resolve(tmp_path, sim, {"semver": ">=3"})
    assert raised.value.exit_code == 2
    [problem] = raised.value.problems
    assert "no tag of upstream.test/team/app matches the selector (semver '>=3')" in problem
    assert "2.0.0, 1.0.0" in problem


def test_a_repository_upstream_does_not_have_is_an_unresolved_reference(tmp_path: Path) -> None:
    sim = _upstream(["1.0.0"])
    path = write_mirrorset(tmp_path / "m.yaml", [{"ref": f"{UPSTREAM}/team/gone", "tags": {"latest": 1}}])
    with pytest.raises(UnresolvedReferences, match="1 reference"):
        resolve([path], transport=sim.transport())


def test_a_ref_with_a_tag_beside_tags_is_refused_before_any_request(tmp_path: Path) -> None:
    sim = _upstream(["1.0.0"])
    path = write_mirrorset(tmp_path / "m.yaml", [{"ref": f"{UPSTREAM}/team/app:1.0.0", "tags": {"latest": 1}}])
    with pytest.raises(ManifestError, match=r"spec.images\[0\].ref: .* names a tag or digest"):
        resolve([path], transport=sim.transport())
    assert sim.requests == []
