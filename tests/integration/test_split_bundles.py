"""Split bundles end to end: collect cuts a signed bundle into volumes, approve and verify work on the head
volume, import streams across the volumes into the real registry, and every wrong volume is refused with exit 3,
named, with nothing written."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from mirror.cli import app
from tests.support.images import inspect_raw
from tests.support.mirrorsets import write_mirrorset
from tests.support.services import UPSTREAM_REGISTRY

UPSTREAM_SETTINGS = {UPSTREAM_REGISTRY: {"plainHTTP": True}}
IMAGES = ("app_1", "multi")
VOLUME_SIZE = 4096
PROBLEM_LINE = re.compile(r"^\s+- \[([A-Z_]+)\] (.*)$", re.MULTILINE)


def must(*args: object) -> Any:
    result = CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, f"mirror {' '.join(map(str, args))}: {result.stderr}"
    return result


def volume_set(head: Path) -> list[Path]:
    stem = head.name.removesuffix(".000")
    return sorted(p for p in head.parent.iterdir() if re.fullmatch(re.escape(stem) + r"\.[0-9]{3,}", p.name))


def data_volume(head: Path, number: int) -> Path:
    return head.with_name(f"{head.name.removesuffix('.000')}.{number:03d}")


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("keys")
    for name in ("collector", "officer"):
        must("keygen", directory / name)
    return directory


@pytest.fixture(scope="module")
def collect_split(tmp_path_factory: pytest.TempPathFactory, upstream_images: dict[str, Any], keys: Path):
    def collect(images: tuple[str, ...], sequence: int) -> Path:
        work = tmp_path_factory.mktemp("split")
        manifest = write_mirrorset(
            work / "m.yaml", [upstream_images[k]["ref"] for k in images], registries=UPSTREAM_SETTINGS
        )
        out = work / "night.tar"
        must("collect", manifest, "-o", out, "--split-size", "4K", "--key", keys / "collector.key",
             "--sequence", sequence, "--quiet")  # fmt: skip
        return work / "night.tar.000"

    return collect


@pytest.fixture(scope="module")
def pristine(collect_split: Callable[..., Path]) -> Path:
    return collect_split(IMAGES, 1)


@pytest.fixture(scope="module")
def foreign(collect_split: Callable[..., Path]) -> Path:
    """Another bundle of other images, cut at the same size."""
    return collect_split(("shared_a", "docker"), 2)


@pytest.fixture
def split(pristine: Path, tmp_path: Path) -> Path:
    """A private copy of the volume set, to approve or damage."""
    target = tmp_path / "copy"
    target.mkdir()
    for volume in volume_set(pristine):
        shutil.copyfile(volume, target / volume.name)
    return target / pristine.name


@pytest.fixture
def policy(tmp_path: Path, keys: Path) -> Path:
    path = tmp_path / "policy.yaml"
    body = {
        "apiVersion": "mirror/v1",
        "kind": "TrustPolicy",
        "collectors": {"keys": [str(keys / "collector.pub")], "threshold": 1},
        "approvers": {"keys": [str(keys / "officer.pub")], "threshold": 1},
        "maxAge": "14d",
        "stateFile": "state.json",
    }
    path.write_text(yaml.safe_dump(body))
    return path


@pytest.fixture
def run_import(mirror_cli, services, internal_env, internal_url) -> Callable[..., Any]:
    def run(bundle: Path, *trust: object) -> Any:
        return mirror_cli(
            "import", bundle, *(trust or ["--allow-unsigned"]), "--registry", internal_url,
            "--ca-file", services.ca_file, "--quiet", env=internal_env,
        )  # fmt: skip

    return run


def test_collect_writes_a_head_volume_and_data_volumes_of_at_most_size(pristine: Path) -> None:
    volumes = volume_set(pristine)
    assert volumes[0] == pristine
    assert [p.name for p in volumes[1:]] == [f"night.tar.{n:03d}" for n in range(1, len(volumes))]
    assert len(volumes) >= 4
    assert all(p.stat().st_size <= VOLUME_SIZE for p in volumes[1:])
    written = ["m.yaml", "night.tar.inventory.json", *(p.name for p in volumes)]
    assert sorted(p.name for p in pristine.parent.iterdir()) == sorted(written)


def test_the_inventory_copy_beside_a_split_bundle_lists_its_volumes(pristine: Path) -> None:
    with tarfile.open(pristine) as head:
        inside = head.extractfile("inventory.json").read()
    beside = (pristine.parent / "night.tar.inventory.json").read_bytes()
    assert beside == inside
    assert [v["name"] for v in json.loads(beside)["volumes"]] == [p.name for p in volume_set(pristine)[1:]]


def test_collect_refuses_a_nonsense_split_size_naming_the_flag(mirror_cli, tmp_path: Path) -> None:
    manifest = write_mirrorset(
        tmp_path / "m.yaml", [f"{UPSTREAM_REGISTRY}/fixtures/app:1.0"], registries=UPSTREAM_SETTINGS
    )
    for size in ("4X", "100", "-1G"):
        result = mirror_cli("collect", manifest, "-o", tmp_path / "n.tar", "--split-size", size, "--quiet")
        assert result.exit_code == 2, size
        assert "--split-size" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.yaml"]


def test_approved_split_bundle_verifies_and_imports_with_identical_digests(
    split: Path, keys: Path, policy: Path, mirror_cli, run_import, services, target_prefix, upstream_images
) -> None:
    data_before = {p.name: p.read_bytes() for p in volume_set(split)[1:]}
    must("approve", split, "--key", keys / "officer.key", "--collector-key", keys / "collector.pub")
    assert {p.name: p.read_bytes() for p in volume_set(split)[1:]} == data_before
    verified = mirror_cli("verify", split, "--trust", policy, "--json")
    assert verified.exit_code == 0, verified.stdout + verified.stderr
    assert verified.json()["ok"] is True
    result = run_import(split, "--trust", policy)
    assert result.exit_code == 0, result.stderr
    creds = (services.internal_user, services.internal_password)
    for key in IMAGES:
        image = upstream_images[key]
        target = f"{services.internal}/{target_prefix}/{image['repository']}:{image['tag']}"
        raw = inspect_raw(target, tls_verify=True, creds=creds, cert_dir=services.cert_dir)
        assert "sha256:" + hashlib.sha256(raw).hexdigest() == image["digest"], key


def _missing(head: Path, foreign: Path) -> Path:
    data_volume(head, 2).unlink()
    return data_volume(head, 2)


def _reordered(head: Path, foreign: Path) -> Path:
    first, second = data_volume(head, 1), data_volume(head, 2)
    first.rename(head.with_name("swap"))
    second.rename(first)
    head.with_name("swap").rename(second)
    return first


def _foreign(head: Path, foreign: Path) -> Path:
    shutil.copyfile(data_volume(foreign, 2), data_volume(head, 2))
    return data_volume(head, 2)


def _damaged(head: Path, foreign: Path) -> Path:
    volume = data_volume(head, 3)
    data = bytearray(volume.read_bytes())
    data[700] ^= 0x01
    volume.write_bytes(bytes(data))
    return volume


def _truncated(head: Path, foreign: Path) -> Path:
    volume = data_volume(head, 1)
    volume.write_bytes(volume.read_bytes()[:-1])
    return volume


def _stray(head: Path, foreign: Path) -> Path:
    stray = data_volume(head, len(volume_set(head)) + 5)
    stray.write_bytes(b"\0" * 1024)
    return stray


@pytest.mark.parametrize(
    ("damage", "code"),
    [
        (_missing, "VOLUME_MISSING"),
        (_reordered, "VOLUME_ORDER"),
        (_foreign, "VOLUME_DIGEST"),
        (_damaged, "VOLUME_DIGEST"),
        (_truncated, "VOLUME_SIZE"),
        (_stray, "VOLUME_UNLISTED"),
    ],
    ids=["missing", "reordered", "foreign", "damaged", "truncated", "stray"],
)
def test_a_wrong_volume_is_refused_naming_it_and_nothing_is_written(
    split: Path, foreign: Path, damage, code: str, run_import, written_repositories
) -> None:
    named = damage(split, foreign)
    result = run_import(split)
    assert result.exit_code == 3, result.stderr
    problems = PROBLEM_LINE.findall(result.stderr)
    assert any(c == code and message.startswith(f"{named}: ") for c, message in problems), result.stderr
    assert written_repositories() == []


def test_verify_names_a_wrong_volume_with_exit_3(split: Path, keys: Path, policy: Path, mirror_cli) -> None:
    # Approved first: a bundle its signatures already refuse is not read any further, volumes included.
    must("approve", split, "--key", keys / "officer.key", "--collector-key", keys / "collector.pub")
    _damaged(split, split)
    result = mirror_cli("verify", split, "--trust", policy, "--json")
    assert result.exit_code == 3
    problems = result.json()["problems"]
    assert [p["code"] for p in problems if p["code"].startswith("VOLUME_")] == ["VOLUME_DIGEST"]


def test_a_head_volume_serves_as_the_base_of_an_incremental_collect(pristine: Path, tmp_path: Path) -> None:
    out = tmp_path / "next.tar"
    must("collect", pristine.parent / "m.yaml", "-o", out, "--since", pristine, "--quiet")
    with tarfile.open(out) as bundle:
        inventory = json.loads(bundle.extractfile("inventory.json").read())
    base_inventory = (pristine.parent / "night.tar.inventory.json").read_bytes()
    assert inventory["base"]["inventory"] == "sha256:" + hashlib.sha256(base_inventory).hexdigest()
    assert not [m for m in inventory["files"] if m["path"].startswith("blobs/")]  # nothing changed upstream
