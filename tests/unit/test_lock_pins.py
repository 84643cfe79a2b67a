"""apply_lock and Pins, without a network: how a lock pins what the MirrorSets list, and what it says of what
collecting finds (docs/collector.md, "Collecting a reviewed lock")."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mirror.collector.lockfile import read_lock
from mirror.collector.pinning import LockMismatchError, apply_lock
from mirror.manifest.load import load_mirrorsets
from mirror.manifest.model import ImageSource
from mirror.oci.reference import parse_reference

DIGEST = "sha256:" + "1" * 64
OTHER = "sha256:" + "2" * 64
COMMIT = "3" * 40


def _sets(tmp_path: Path, spec: dict) -> list:
    path = tmp_path / "m.yaml"
    path.write_text(
        json.dumps({"apiVersion": "mirror/v1", "kind": "MirrorSet", "metadata": {"name": "t"}, "spec": spec})
    )
    return load_mirrorsets([path])


def _lock(tmp_path: Path, *artifacts: dict):
    path = tmp_path / "lock.json"
    path.write_text(json.dumps({"apiVersion": "mirror/v1", "kind": "Lock", "artifacts": list(artifacts)}))
    return read_lock(path)


def _image(source: str, digest: str = DIGEST, **extra: object) -> dict:
    return {"kind": "image", "source": source, "digest": digest, "via": "listed", **extra}


def _problems(tmp_path: Path, spec: dict, *artifacts: dict) -> list[tuple[str, str]]:
    with pytest.raises(LockMismatchError) as raised:
        apply_lock(_sets(tmp_path, spec), _lock(tmp_path, *artifacts))
    return [(p.code, p.message) for p in raised.value.problems]


def test_a_listed_image_is_fetched_by_its_locked_upstream_digest(tmp_path: Path) -> None:
    [pinned], _ = apply_lock(
        _sets(tmp_path, {"images": ["reg.test/app:1"]}),
        _lock(tmp_path, _image("reg.test/app:1", OTHER, sourceDigest=DIGEST)),
    )
    [image] = pinned.images
    assert (str(image.reference), image.locked_digest) == ("reg.test/app:1", DIGEST)


def test_a_selector_becomes_the_tags_its_lock_entries_name(tmp_path: Path) -> None:
    spec = {"images": [{"ref": "reg.test/app", "tags": {"semver": ">=1"}}]}
    chosen = [_image(f"reg.test/app:{t}", selectedBy=[{"semver": ">=1"}]) for t in ("1.2.0", "1.1.0")]
    [pinned], _ = apply_lock(_sets(tmp_path, spec), _lock(tmp_path, *chosen))
    assert [str(i.reference) for i in pinned.images] == ["reg.test/app:1.2.0", "reg.test/app:1.1.0"]
    assert all(i.tags is None and i.locked_digest == DIGEST for i in pinned.images)


def test_every_difference_is_listed_at_once(tmp_path: Path) -> None:
    spec = {
        "images": ["reg.test/app:1", {"ref": "reg.test/sel", "tags": {"latest": 1}}],
        "charts": [{"name": "web", "repo": "https://charts.test", "version": ">=2"}],
        "git": [{"name": "fleet", "url": "https://git.test/fleet"}],
    }
    chart = {"kind": "chart", "source": "https://charts.test/web-1.0.0.tgz", "digest": DIGEST, "via": "listed"}
    chart |= {"repo": "https://charts.test", "chart": "web", "version": "1.0.0"}
    problems = _problems(tmp_path, spec, _image("reg.test/gone:1"), chart)
    assert sorted(code for code, _ in problems) == [
        "LOCK_MISMATCH",
        "LOCK_MISSING",
        "LOCK_MISSING",
        "LOCK_MISSING",
        "LOCK_UNEXPECTED",
    ]


def test_a_git_source_is_pinned_to_its_locked_commit(tmp_path: Path) -> None:
    spec = {"git": [{"name": "fleet", "url": "https://git.test/fleet", "ref": {"branch": "main"}}]}
    locked = {"kind": "git", "source": "https://git.test/fleet", "digest": DIGEST, "name": "fleet", "commit": COMMIT}
    [pinned], _ = apply_lock(_sets(tmp_path, spec), _lock(tmp_path, locked))
    assert pinned.git[0].locked_commit == COMMIT


def _found(reference: str, *, optional: bool = False) -> ImageSource:
    return ImageSource(parse_reference(reference), None, "chart web", via="chart", optional=optional)


def test_an_image_a_chart_uses_is_pinned_and_one_it_only_guessed_may_be_absent(tmp_path: Path) -> None:
    _, pins = apply_lock(_sets(tmp_path, {}), _lock(tmp_path, _image("reg.test/used:1", via="chart")))
    pinned = pins.pin_found_images([_found("reg.test/used:1"), _found("reg.test/guess:1", optional=True)])
    assert [(str(i.reference), i.locked_digest) for i in pinned] == [("reg.test/used:1", DIGEST)]


def test_an_image_found_that_the_lock_lacks_and_one_it_has_unused_are_listed(tmp_path: Path) -> None:
    _, pins = apply_lock(_sets(tmp_path, {}), _lock(tmp_path, _image("reg.test/old:1", via="chart")))
    with pytest.raises(LockMismatchError) as raised:
        pins.pin_found_images([_found("reg.test/new:1")])
    assert sorted(p.code for p in raised.value.problems) == ["LOCK_MISSING", "LOCK_UNEXPECTED"]


HEX = "4" * 64


def _file(source: str, digest: str = f"sha256:{HEX}", name: str = "install.sh") -> dict:
    return {"kind": "file", "source": source, "digest": digest, "name": name, "size": 10, "tag": "latest"}


def test_a_file_trusted_on_first_use_is_pinned_to_the_locked_sha256(tmp_path: Path) -> None:
    url = "https://get.test/install.sh"
    spec = {"files": [{"url": url, "sha256": "trust-on-first-use"}]}
    [pinned], _ = apply_lock(_sets(tmp_path, spec), _lock(tmp_path, _file(url)))
    assert pinned.files[0].sha256 == HEX


def test_a_file_the_lock_pins_to_other_bytes_than_the_mirrorset_is_a_mismatch(tmp_path: Path) -> None:
    url = "https://get.test/install.sh"
    spec = {"files": [{"url": url, "sha256": "5" * 64}]}
    assert [code for code, _ in _problems(tmp_path, spec, _file(url))] == ["LOCK_MISMATCH"]


def test_a_file_missing_from_the_lock_and_one_nothing_asks_for_are_listed(tmp_path: Path) -> None:
    spec = {"files": [{"url": "https://get.test/install.sh", "sha256": "trust-on-first-use"}]}
    problems = _problems(tmp_path, spec, _file("https://get.test/other.sh", name="other.sh"))
    assert sorted(code for code, _ in problems) == ["LOCK_MISSING", "LOCK_UNEXPECTED"]


def test_a_lock_with_more_tags_than_the_selectors_latest_keeps_is_a_mismatch(tmp_path: Path) -> None:
    selector = {"semver": ">=1", "latest": 2}
    chosen = [_image(f"reg.test/app:{t}", selectedBy=[selector]) for t in ("1.2.0", "1.1.0", "1.0.0")]
    problems = _problems(tmp_path, {"images": [{"ref": "reg.test/app", "tags": selector}]}, *chosen)
    assert [code for code, _ in problems] == ["LOCK_MISMATCH"]
    assert "3 tags" in problems[0][1] and "latest: 2" in problems[0][1]


def test_a_lock_with_more_tags_for_a_selector_than_max_selected_tags_is_a_mismatch(tmp_path: Path) -> None:
    from mirror.limits import DEFAULT_LIMITS

    selector = {"regex": "^1\\."}
    count = DEFAULT_LIMITS.max_selected_tags + 1
    chosen = [_image(f"reg.test/app:1.{n}.0", selectedBy=[selector]) for n in range(count)]
    problems = _problems(tmp_path, {"images": [{"ref": "reg.test/app", "tags": selector}]}, *chosen)
    assert [code for code, _ in problems] == ["LOCK_MISMATCH"]
    assert "max_selected_tags" in problems[0][1]
