"""Two sources that would land on one repository are refused at collect (exit 2), before anything is
downloaded, by the rule the import applies (mirror.landing): an import would refuse the bundle anyway."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import yaml

from mirror.collector.run import collect
from mirror.errors import UsageError
from tests.support.mirrorsets import write_mirrorset
from tests.unit.registry_sim import RegistrySim
from tests.unit.test_collect_import_sim import _push_image


def _registries(*sims: RegistrySim) -> httpx.MockTransport:
    by_host = {sim.host: sim for sim in sims}
    return httpx.MockTransport(lambda request: by_host[request.url.netloc.decode()].handle(request))


def _upstreams() -> tuple[RegistrySim, RegistrySim]:
    """team/app:1.0 on two registries."""
    first, second = RegistrySim("one.test"), RegistrySim("two.test")
    for sim in (first, second):
        digest, _ = _push_image(sim, "team/app", sim.host)
        sim.manifests["team/app"]["1.0"] = sim.manifests["team/app"][digest]
    return first, second


def test_two_listed_images_from_different_registries_on_one_repository_are_refused_before_any_request(
    tmp_path: Path,
) -> None:
    first, second = _upstreams()
    mirrorset = write_mirrorset(tmp_path / "m.yaml", ["one.test/team/app:1.0", "two.test/team/app:1.0"])
    with pytest.raises(UsageError) as refused:
        collect([mirrorset], tmp_path / "night", transport=_registries(first, second))
    assert refused.value.exit_code == 2
    assert "team/app" in str(refused.value)
    assert "one.test/team/app" in str(refused.value) and "two.test/team/app" in str(refused.value)
    assert first.requests == [] and second.requests == []
    assert not (tmp_path / "night").exists()


def test_the_refusal_names_the_mirrorset_fields_of_both_sources(tmp_path: Path) -> None:
    first, second = _upstreams()
    mirrorset = write_mirrorset(tmp_path / "m.yaml", ["one.test/team/app:1.0", "two.test/team/app:1.0"])
    with pytest.raises(UsageError) as refused:
        collect([mirrorset], tmp_path / "night", transport=_registries(first, second))
    assert "spec.images[0]" in str(refused.value) and "spec.images[1]" in str(refused.value)


def test_two_tags_of_one_repository_are_not_a_clash(tmp_path: Path) -> None:
    first, _ = _upstreams()
    first.manifests["team/app"]["1.1"] = first.manifests["team/app"]["1.0"]
    mirrorset = write_mirrorset(tmp_path / "m.yaml", ["one.test/team/app:1.0", "one.test/team/app:1.1"])
    collect([mirrorset], tmp_path / "night", transport=_registries(first))
    assert (tmp_path / "night" / "inventory.json").exists()


def test_two_git_sources_from_different_hosts_on_one_path_are_refused(tmp_path: Path) -> None:
    spec = {
        "git": [
            {"name": "a", "url": "https://git-one.test/fleet/infra.git", "ref": {"branch": "main"}},
            {"name": "b", "url": "https://git-two.test/fleet/infra.git", "ref": {"branch": "main"}},
        ]
    }
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump({"apiVersion": "mirror/v1", "kind": "MirrorSet", "metadata": {"name": "g"},
                                    "spec": spec}))  # fmt: skip
    with pytest.raises(UsageError) as refused:
        collect([path], tmp_path / "night")
    assert "fleet/infra.git" in str(refused.value)


def test_an_image_a_fleet_names_and_a_listed_one_on_one_repository_are_refused_before_the_download(
    tmp_path: Path,
) -> None:
    first, second = _upstreams()
    fleet = tmp_path / "fleet"
    fleet.mkdir()
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "app", "namespace": "team"},
        "spec": {"template": {"spec": {"containers": [{"name": "app", "image": "two.test/team/app:1.0"}]}}},
    }
    (fleet / "app.yaml").write_text(yaml.safe_dump(deployment))
    document = {
        "apiVersion": "mirror/v1",
        "kind": "MirrorSet",
        "metadata": {"name": "f"},
        "spec": {"images": ["one.test/team/app:1.0"], "flux": [{"path": "fleet"}], "allowedHosts": ["two.test"]},
    }
    (tmp_path / "m.yaml").write_text(yaml.safe_dump(document))
    with pytest.raises(UsageError) as refused:
        collect([tmp_path / "m.yaml"], tmp_path / "night", transport=_registries(first, second))
    assert "one.test/team/app" in str(refused.value) and "two.test/team/app" in str(refused.value)
    assert not [r for r in [*first.requests, *second.requests] if "/blobs/" in r.url.path]
