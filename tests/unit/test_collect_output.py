"""Where collect may write: OUT and its inventory copy beside it never replace another bundle's."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from mirror.collector.run import collect
from mirror.errors import UsageError


def test_an_existing_out_is_refused(tmp_path: Path) -> None:
    (tmp_path / "night.tar").write_bytes(b"")
    with pytest.raises(UsageError, match="already exists"):
        collect([tmp_path / "unused.yaml"], tmp_path / "night.tar")


@pytest.mark.parametrize("other", ["night", "night.tar.000"])
def test_a_tar_whose_inventory_copy_belongs_to_another_bundle_is_refused(tmp_path: Path, other: str) -> None:
    (tmp_path / other).mkdir()
    (tmp_path / "night.inventory.json").write_text("{}")
    with pytest.raises(UsageError, match=r"night.inventory.json: would replace the inventory copy of .*night"):
        collect([tmp_path / "unused.yaml"], tmp_path / "night.tar")


def test_a_directory_bundle_beside_a_tar_of_the_same_name_is_refused(tmp_path: Path) -> None:
    (tmp_path / "night.tar").mkdir()
    with pytest.raises(UsageError, match="inventory copy of"):
        collect([tmp_path / "unused.yaml"], tmp_path / "night")


def test_a_stale_inventory_copy_whose_bundle_is_gone_does_not_block_a_rerun(tmp_path: Path) -> None:
    (tmp_path / "night.inventory.json").write_text("{}")
    # Past the output checks, the run fails on the missing MirrorSet, not on the stale copy.
    with pytest.raises(UsageError) as caught:
        collect([tmp_path / "missing.yaml"], tmp_path / "night.tar")
    assert "inventory copy" not in str(caught.value)
    assert "missing.yaml" in str(caught.value)


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
