"""A bundle may hold what its inventory lists, its envelopes and a little more: the rest is refused before it is
indexed, and unlisted files are listed only up to the problem cap."""

from __future__ import annotations

import io
import tarfile
import tracemalloc
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mirror.bundle.opening import open_bundle
from mirror.bundle.reader import DirectoryBundle, TarBundle
from mirror.cli import app
from mirror.errors import PROBLEMS_OMITTED, BundleFormatError, problem_count
from mirror.limits import Limits
from mirror.trust.check import check_trust
from tests.support.craft import Crafted, craft_bundle, p256_signer, write_policy

COLLECTOR = p256_signer("collector")


@pytest.fixture
def policy(tmp_path: Path) -> Path:
    directory = tmp_path / "trust"
    directory.mkdir()
    return write_policy(directory, COLLECTOR)


@pytest.fixture
def crafted(tmp_path: Path) -> Crafted:
    return craft_bundle(tmp_path / "bundle", COLLECTOR)


def as_tar(bundle: Path, out: Path, unlisted: int = 0, inventory_last: bool = False) -> Path:
    """The directory bundle as a plain ustar tar, inventory first (as collect writes it) unless told otherwise,
    then `unlisted` tiny members the inventory does not list."""
    files = sorted(str(p.relative_to(bundle)) for p in bundle.rglob("*") if p.is_file())
    files.remove("inventory.json")
    files = [*files, "inventory.json"] if inventory_last else ["inventory.json", *files]
    with tarfile.open(out, "w", format=tarfile.USTAR_FORMAT) as tar:
        for name in files:
            tar.add(bundle / name, arcname=name, recursive=False)
        for i in range(unlisted):
            info = tarfile.TarInfo(f"blobs/sha256/{i:064x}")
            info.size, info.mtime, info.mode = 1, 0, 0o644
            tar.addfile(info, io.BytesIO(b"x"))
    return out


def test_a_tar_with_100000_unlisted_members_is_refused_with_bounded_output_and_memory(crafted, policy, tmp_path):
    bundle = as_tar(crafted.root, tmp_path / "stuffed.tar", unlisted=100_000)
    tracemalloc.start()
    try:
        result = CliRunner().invoke(app, ["verify", str(bundle), "--trust", str(policy)])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result.exit_code == 3, result.stdout + result.stderr
    assert "members" in result.stderr and "its inventory lists 5 files" in result.stderr
    assert (result.stdout + result.stderr).count("\n") < 200
    assert peak < 20_000_000, f"peak {peak / 1e6:.0f} MB"


def test_a_tar_whose_inventory_is_its_last_member_is_bounded_all_the_same(crafted, tmp_path):
    bundle = as_tar(crafted.root, tmp_path / "late.tar", unlisted=2_000, inventory_last=True)
    with pytest.raises(BundleFormatError, match="more than 1093 members"):
        TarBundle(bundle)


def test_an_intact_tar_within_the_bound_is_read(crafted, policy, tmp_path):
    bundle = as_tar(crafted.root, tmp_path / "plain.tar")
    assert check_trust(bundle, policy).ok


def test_a_directory_with_thousands_of_unlisted_files_is_refused_before_indexing_them(crafted):
    for i in range(3_000):
        (crafted.root / "blobs" / "sha256" / f"{i:064x}").write_bytes(b"x")
    with pytest.raises(BundleFormatError, match="more than 1093 files: its inventory lists 5 files"):
        open_bundle(crafted.root)


def test_unlisted_files_within_the_bound_are_listed_up_to_the_problem_cap(crafted, policy):
    for i in range(500):
        (crafted.root / "blobs" / "sha256" / f"{i:064x}").write_bytes(b"x")
    report = check_trust(crafted.root, policy)
    assert len(report.problems) == 101
    assert report.problems[-1].code == PROBLEMS_OMITTED
    assert problem_count(report.problems) == 500
    assert report.to_json()["problemCount"] == 500


def test_a_bundle_without_a_readable_inventory_is_bounded_by_max_bundle_members(tmp_path):
    root = tmp_path / "noinventory"
    root.mkdir()
    for i in range(30):
        (root / f"f{i}").write_bytes(b"x")
    assert len(DirectoryBundle(root, Limits(max_bundle_members=30)).files()) == 30
    with pytest.raises(BundleFormatError, match="more than 29 files"):
        DirectoryBundle(root, Limits(max_bundle_members=29))
