"""Where collect may write: OUT, and the copy of its inventory beside it, named so that no two bundles share one."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from mirror.collector.incremental import beside_path, read_base_inventory
from mirror.collector.run import collect
from mirror.errors import UsageError


def test_an_existing_out_is_refused(tmp_path: Path) -> None:
    (tmp_path / "night.tar").write_bytes(b"")
    with pytest.raises(UsageError, match="already exists"):
        collect([tmp_path / "unused.yaml"], tmp_path / "night.tar")


def test_a_directory_bundle_and_a_tar_of_the_same_name_have_distinct_inventory_copies(tmp_path: Path) -> None:
    assert beside_path(tmp_path / "night") != beside_path(tmp_path / "night.tar")


@pytest.mark.parametrize("other", ["night", "night.tar.000"])
def test_a_tar_beside_another_bundle_of_the_same_stem_is_not_refused(tmp_path: Path, other: str) -> None:
    (tmp_path / other).mkdir()
    (tmp_path / "night.inventory.json").write_text("{}")
    # Past the output checks, the run fails on the missing MirrorSet, not on the other bundle's copy.
    with pytest.raises(UsageError) as caught:
        collect([tmp_path / "missing.yaml"], tmp_path / "night.tar")
    assert "missing.yaml" in str(caught.value)


def test_an_inventory_copy_under_the_old_name_of_a_tar_is_still_read_by_since(tmp_path: Path) -> None:
    # Before 0.x the copy of night.tar was night.inventory.json; nightly jobs point --since at such files.
    old = tmp_path / "night.inventory.json"
    old.write_bytes(b'{"inventory": "as written"}')
    assert read_base_inventory(old) == old.read_bytes()


@pytest.fixture
def immutable_directory(tmp_path: Path):
    """A directory nobody may create files in, root included (chattr +i; the tests run as root)."""
    directory = tmp_path / "locked"
    directory.mkdir()
    if subprocess.run(["chattr", "+i", str(directory)], capture_output=True).returncode != 0:
        pytest.skip("chattr +i is not available on this file system")
    try:
        yield directory
    finally:
        subprocess.run(["chattr", "-i", str(directory)], check=True)


def test_an_unwritable_output_directory_is_a_usage_error_before_any_work(immutable_directory: Path) -> None:
    with pytest.raises(UsageError, match=r"locked: cannot write the bundle here"):
        collect([immutable_directory / "unused.yaml"], immutable_directory / "night.tar")
