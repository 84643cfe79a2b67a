"""collect --lock against the registry simulator: exactly what the lock says is collected (no tag list read, each
image by its locked digest under its locked tag); a lock that does not match the MirrorSets is refused before any
request, listing every difference; a locked digest upstream no longer has is an unresolved reference (exit 2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mirror.bundle.inventory import parse_inventory
from mirror.collector.lockfile import LockError, read_lock
from mirror.collector.pinning import LockMismatchError
from mirror.collector.run import collect, resolve
from mirror.collector.unresolved import UnresolvedReferences
from mirror.limits import DEFAULT_LIMITS
from tests.support.mirrorsets import write_mirrorset
from tests.unit.registry_sim import RegistrySim

UPSTREAM = "upstream.test"
APP = f"{UPSTREAM}/team/app"


def _manifest(sim: RegistrySim, salt: str) -> bytes:
    config = json.dumps({"salt": salt}).encode()
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": sim.add_blob("team/app", config),
                "size": len(config),
            },
            "layers": [],
        }
    ).encode()


def _upstream() -> RegistrySim:
    sim = RegistrySim(UPSTREAM)
    sim.tags_page_size = 2
    for tag in ("1.0.0", "1.1.0", "1.2.0", "latest"):
        sim.add_manifest("team/app", _manifest(sim, tag), tag=tag)
    return sim


def _lock(tmp_path: Path, artifacts: list[dict[str, object]]) -> Path:
    path = tmp_path / "lock.json"
    path.write_text(json.dumps({"apiVersion": "mirror/v1", "kind": "Lock", "artifacts": artifacts}))
    return path


def _selector_set(tmp_path: Path) -> Path:
    return write_mirrorset(
        tmp_path / "m.yaml", [{"ref": APP, "tags": {"semver": ">=1.0", "latest": 2}}, f"{APP}:latest"], attached=False
    )


def _collected(out: Path) -> dict[str, str]:
    inventory = parse_inventory((out / "inventory.json").read_bytes())
    return {a.source: a.digest for a in inventory.artifacts}


def test_collect_with_the_lock_takes_the_locked_digests_after_upstream_moved(tmp_path: Path) -> None:
    sim = _upstream()
    manifest = _selector_set(tmp_path)
    locked = resolve([manifest], transport=sim.transport())
    lock = _lock(tmp_path, locked)
    sim.add_manifest("team/app", _manifest(sim, "moved"), tag="1.2.0")  # a locked tag moves
    sim.add_manifest("team/app", _manifest(sim, "new"), tag="1.3.0")  # a new tag the selector would choose
    sim.requests.clear()

    out = tmp_path / "bundle"
    collect([manifest], out, transport=sim.transport(), lock=lock)

    assert _collected(out) == {a["source"]: a["digest"] for a in locked}
    assert f"{APP}:1.3.0" not in _collected(out)
    assert not any(r.url.path.endswith("/tags/list") for r in sim.requests)


def test_without_the_lock_the_moved_and_new_tags_are_taken(tmp_path: Path) -> None:
    sim = _upstream()
    manifest = _selector_set(tmp_path)
    sim.add_manifest("team/app", _manifest(sim, "new"), tag="1.3.0")
    assert [a["source"] for a in resolve([manifest], transport=sim.transport())][:2] == [f"{APP}:1.3.0", f"{APP}:1.2.0"]


def test_a_locked_digest_upstream_no_longer_has_is_an_unresolved_reference(tmp_path: Path) -> None:
    sim = _upstream()
    manifest = write_mirrorset(tmp_path / "m.yaml", [f"{APP}:1.0.0"], attached=False)
    locked = resolve([manifest], transport=sim.transport())
    del sim.manifests["team/app"][str(locked[0]["digest"])]
    with pytest.raises(UnresolvedReferences, match="1 reference") as raised:
        collect([manifest], tmp_path / "bundle", transport=sim.transport(), lock=_lock(tmp_path, locked))
    assert "at the locked digest" in raised.value.problems[0]
    assert raised.value.exit_code == 2
    assert not (tmp_path / "bundle").exists()


def test_a_lock_that_does_not_match_is_refused_before_any_request_listing_every_problem(tmp_path: Path) -> None:
    sim = _upstream()
    manifest = _selector_set(tmp_path)
    other = {"kind": "image", "source": f"{APP}:9.9.9", "digest": "sha256:" + "a" * 64, "via": "listed"}
    with pytest.raises(LockMismatchError) as raised:
        collect([manifest], tmp_path / "bundle", transport=sim.transport(), lock=_lock(tmp_path, [other]))
    assert raised.value.exit_code == 2
    codes = sorted(p.code for p in raised.value.problems)
    assert codes == ["LOCK_MISSING", "LOCK_MISSING", "LOCK_UNEXPECTED"]
    assert sim.requests == []


def test_a_locked_tag_the_selector_does_not_allow_is_a_mismatch(tmp_path: Path) -> None:
    sim = _upstream()
    manifest = write_mirrorset(tmp_path / "m.yaml", [{"ref": APP, "tags": {"semver": "~1.1"}}], attached=False)
    forged = {
        "kind": "image",
        "source": f"{APP}:latest",
        "digest": "sha256:" + "b" * 64,
        "selectedBy": [{"semver": "~1.1"}],
    }
    with pytest.raises(LockMismatchError) as raised:
        collect([manifest], tmp_path / "bundle", transport=sim.transport(), lock=_lock(tmp_path, [forged]))
    assert [p.code for p in raised.value.problems] == ["LOCK_MISMATCH"]


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "lock.json"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[]", "expected a mirror/v1 Lock document"),
        ('{"apiVersion": "mirror/v1", "kind": "Lock"}', "artifacts: expected a list"),
        ('{"apiVersion": "mirror/v1", "kind": "Lock", "artifacts": [{"kind": "vm"}]}', r"artifacts\[0\].kind"),
        ('{"apiVersion": "mirror/v1", "kind": "Lock", "artifacts": [{"kind": ["image"]}]}', r"artifacts\[0\].kind"),
        ('{"apiVersion": "mirror/v1", "kind": "Lock", "artifacts": [{"kind": {"image": 1}}]}', r"artifacts\[0\].kind"),
        (
            '{"apiVersion": "mirror/v1", "kind": "Lock", "artifacts": [{"kind": "image", "source": "a/b:1", '
            '"digest": "sha256:12"}]}',
            r"artifacts\[0\].digest: expected sha256",
        ),
        (
            '{"apiVersion": "mirror/v1", "kind": "Lock", "artifacts": [{"kind": "image", "source": "A b", '
            '"digest": "sha256:' + "0" * 64 + '"}]}',
            r"artifacts\[0\].source",
        ),
        ('{"apiVersion": "mirror/v1", "apiVersion": "mirror/v1"}', "duplicate"),
        ("[" * 500 + "]" * 500, "not valid JSON"),
    ],
)
def test_a_malformed_lock_is_refused_naming_the_field(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(LockError, match=message) as raised:
        read_lock(_write(tmp_path, text))
    assert raised.value.exit_code == 2


def test_a_lock_larger_than_the_limit_is_refused_unread(tmp_path: Path) -> None:
    path = _write(tmp_path, " " * 100)
    from dataclasses import replace

    with pytest.raises(LockError, match="max_lock_bytes"):
        read_lock(path, replace(DEFAULT_LIMITS, max_lock_bytes=10))


def test_a_tag_listed_and_chosen_by_two_selectors_is_collected_again_from_its_lock(tmp_path: Path) -> None:
    sim = _upstream()
    manifest = write_mirrorset(
        tmp_path / "m.yaml",
        [f"{APP}:1.2.0", {"ref": APP, "tags": {"latest": 1}}, {"ref": APP, "tags": {"regex": "^1\\.2\\."}}],
        attached=False,
    )
    locked = resolve([manifest], transport=sim.transport())
    assert [(a["source"], a["selectedBy"]) for a in locked] == [
        (f"{APP}:1.2.0", [{"latest": 1}, {"regex": "^1\\.2\\."}])
    ]
    out = tmp_path / "bundle"
    collect([manifest], out, transport=sim.transport(), lock=_lock(tmp_path, locked))
    assert _collected(out) == {f"{APP}:1.2.0": locked[0]["digest"]}
