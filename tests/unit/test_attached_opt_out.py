"""MirrorSet `spec.attached: false`: collect does not look for what upstream attached to the images (signatures,
attestations, SBOMs), for operators whose registries throttle tag lists or whose SBOMs are huge. Default true;
a value that is not a boolean, or verify rules that could then only fail, are exit 2 naming the field."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from mirror.errors import ManifestError
from mirror.manifest.load import load_mirrorsets
from tests.support import cosign
from tests.unit.attached_upstream import UPSTREAM, Upstream, attached_records, collect_from

HEADER = "apiVersion: mirror/v1\nkind: MirrorSet\nmetadata: {name: test}\n"
APP = f"{UPSTREAM}/team/app:1.0"


def mirrorset(tmp_path: Path, spec: str, name: str = "set.yaml") -> Path:
    path = tmp_path / name
    path.write_text(HEADER + "spec:\n" + textwrap.indent(textwrap.dedent(spec), "  "))
    return path


def refusal(*paths: Path) -> str:
    with pytest.raises(ManifestError) as caught:
        load_mirrorsets(list(paths))
    assert caught.value.exit_code == 2
    return str(caught.value)


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    return cosign.write_public_key(cosign.generate_key(), tmp_path / "upstream.pub")


# --- the field -------------------------------------------------------------------------------------------------


def test_discovery_of_attached_manifests_is_on_by_default(tmp_path):
    [loaded] = load_mirrorsets([mirrorset(tmp_path, "images: [nginx]\n")])
    assert loaded.attached is True


def test_attached_false_turns_discovery_off(tmp_path):
    [loaded] = load_mirrorsets([mirrorset(tmp_path, "attached: false\nimages: [nginx]\n")])
    assert loaded.attached is False


@pytest.mark.parametrize("value", ['"no"', "0", "[]", "null"])
def test_attached_that_is_not_a_boolean_is_refused_naming_the_field(tmp_path, value):
    path = mirrorset(tmp_path, f"attached: {value}\nimages: [nginx]\n")
    message = refusal(path)
    assert str(path) in message and "spec.attached" in message and "true or false" in message


def test_spec_verify_with_attached_false_is_refused_as_a_contradiction(tmp_path, key_file):
    path = mirrorset(tmp_path, "attached: false\nimages: [nginx]\nverify:\n  - {match: '*', key: upstream.pub}\n")
    message = refusal(path)
    assert str(path) in message and "spec.attached" in message and "spec.verify" in message


def test_an_image_s_own_verify_rules_with_attached_false_are_refused_as_a_contradiction(tmp_path, key_file):
    path = mirrorset(tmp_path, "attached: false\nimages:\n  - {ref: nginx, verify: [{key: upstream.pub}]}\n")
    message = refusal(path)
    assert "spec.attached" in message and "spec.images[0].verify" in message


def test_an_image_exempted_with_an_empty_verify_list_goes_with_attached_false(tmp_path):
    path = mirrorset(tmp_path, "attached: false\nimages:\n  - {ref: nginx, verify: []}\n")
    assert load_mirrorsets([path])[0].attached is False


def test_mirrorsets_of_one_collect_that_disagree_on_attached_are_refused(tmp_path):
    first = mirrorset(tmp_path, "images: [nginx]\n", "first.yaml")
    second = mirrorset(tmp_path, "attached: false\nimages: [redis]\n", "second.yaml")
    message = refusal(first, second)
    assert str(second) in message and "spec.attached" in message and str(first) in message


def test_mirrorsets_that_all_turn_discovery_off_load_together(tmp_path):
    first = mirrorset(tmp_path, "attached: false\nimages: [nginx]\n", "first.yaml")
    second = mirrorset(tmp_path, "attached: false\nimages: [redis]\n", "second.yaml")
    assert [s.attached for s in load_mirrorsets([first, second])] == [False, False]


# --- the collect -----------------------------------------------------------------------------------------------


def _upstream_with_attached() -> Upstream:
    upstream = Upstream(referrers=True)
    image, _ = upstream.image("team/app", "1.0")
    upstream.attach_sbom("team/app", image)
    upstream.sign("team/app", image)
    return upstream


def test_a_collect_with_attached_false_carries_nothing_attached(tmp_path):
    upstream = _upstream_with_attached()

    result = collect_from(upstream, tmp_path, [APP], attached=False)

    assert attached_records(result.out) == []
    assert result.attached == {"added": 0, "unchanged": 0}
    assert [a.kind for a in result.inventory.artifacts] == ["image"]


def test_a_collect_with_attached_false_asks_no_referrers_tag_list_or_attached_tag(tmp_path):
    upstream = _upstream_with_attached()

    collect_from(upstream, tmp_path, [APP], attached=False)

    assert upstream.sim.registry_requests("GET", "referrers") == []
    assert upstream.sim.registry_requests("GET", "tags") == []
    assert [r for r in upstream.sim.registry_requests() if "/manifests/sha256-" in r.url.path] == []


def test_the_same_collect_with_discovery_carries_them(tmp_path):
    upstream = _upstream_with_attached()

    assert len(attached_records(collect_from(upstream, tmp_path, [APP]).out)) == 2
