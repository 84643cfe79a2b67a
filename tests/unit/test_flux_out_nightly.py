"""--flux-out night after night: a directory mirror wrote before is updated in place; anything else in it (a file
mirror did not write, or one edited since) is refused before a single write."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mirror.errors import UsageError
from mirror.importer import flux_out, outdir
from mirror.importer.flux_out import check_output_directory, write_flux_out
from mirror.importer.run import WriteLog

NIGHT_1 = {
    "kustomization.yaml": "resources: [flux-system/gitrepository/apps.yaml, apps/helmrelease/old.yaml]\n",
    "flux-system/gitrepository/apps.yaml": "night: 1\n",
    "apps/helmrelease/old.yaml": "gone: tomorrow\n",
}
NIGHT_2 = {
    "kustomization.yaml": "resources: [flux-system/gitrepository/apps.yaml, apps/helmrelease/new.yaml]\n",
    "flux-system/gitrepository/apps.yaml": "night: 2\n",
    "apps/helmrelease/new.yaml": "new: today\n",
}


def contents(directory: Path) -> dict[str, str]:
    return {
        p.relative_to(directory).as_posix(): p.read_text()
        for p in sorted(directory.rglob("*"))
        if p.is_file() and p.name != flux_out.RECORD_NAME
    }


def night(files: dict[str, str], directory: Path) -> WriteLog:
    written = WriteLog()
    write_flux_out(files, directory, written, check_output_directory(directory))
    return written


def test_a_second_night_into_the_same_directory_replaces_what_the_first_wrote(tmp_path):
    out = tmp_path / "flux-out"
    night(NIGHT_1, out)
    written = night(NIGHT_2, out)
    assert contents(out) == NIGHT_2
    assert written.flux_files == len(NIGHT_2)
    assert not (out / "apps/helmrelease").joinpath("old.yaml").exists()


def test_a_night_with_the_same_files_leaves_the_directory_as_it_was(tmp_path):
    out = tmp_path / "flux-out"
    night(NIGHT_1, out)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    night(NIGHT_1, out)
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_a_directory_emptied_by_a_night_is_removed(tmp_path):
    out = tmp_path / "flux-out"
    night(NIGHT_1, out)
    night(NIGHT_2, out)
    night({"kustomization.yaml": "resources: []\n"}, out)
    assert sorted(p.name for p in out.iterdir()) == sorted(["kustomization.yaml", flux_out.RECORD_NAME])


def test_a_file_mirror_did_not_write_is_refused_before_any_write(tmp_path):
    out = tmp_path / "flux-out"
    night(NIGHT_1, out)
    (out / "flux-system/mine.yaml").write_text("an operator's file\n")
    with pytest.raises(UsageError) as refused:
        check_output_directory(out)
    assert "flux-system/mine.yaml" in str(refused.value) and "mirror did not write" in str(refused.value)


def test_a_file_edited_since_mirror_wrote_it_is_refused_before_any_write(tmp_path):
    out = tmp_path / "flux-out"
    night(NIGHT_1, out)
    (out / "flux-system/gitrepository/apps.yaml").write_text("edited by hand\n")
    with pytest.raises(UsageError) as refused:
        check_output_directory(out)
    assert "flux-system/gitrepository/apps.yaml" in str(refused.value) and "changed" in str(refused.value)


def test_every_foreign_or_edited_file_is_named_together(tmp_path):
    out = tmp_path / "flux-out"
    night(NIGHT_1, out)
    (out / "a.yaml").write_text("mine\n")
    (out / "apps/helmrelease/old.yaml").write_text("edited\n")
    with pytest.raises(UsageError) as refused:
        check_output_directory(out)
    assert "a.yaml" in str(refused.value) and "apps/helmrelease/old.yaml" in str(refused.value)


def test_a_link_in_the_directory_is_refused(tmp_path):
    out = tmp_path / "flux-out"
    night(NIGHT_1, out)
    (out / "flux-system/gitrepository/apps.yaml").unlink()
    (out / "flux-system/gitrepository/apps.yaml").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(UsageError):
        check_output_directory(out)


def test_a_non_empty_directory_without_mirrors_record_is_still_refused(tmp_path):
    out = tmp_path / "flux-out"
    out.mkdir()
    (out / "kept.yaml").write_text("mine\n")
    with pytest.raises(UsageError, match="not empty"):
        check_output_directory(out)


def test_a_directory_that_changed_between_plan_and_write_is_refused_before_writing(tmp_path):
    out = tmp_path / "flux-out"
    night(NIGHT_1, out)
    planned = check_output_directory(out)
    (out / "late.yaml").write_text("arrived during the import\n")
    with pytest.raises(UsageError):
        write_flux_out(NIGHT_2, out, WriteLog(), planned)
    assert contents(out) == {**NIGHT_1, "late.yaml": "arrived during the import\n"}


def test_a_night_interrupted_half_way_can_be_run_again(tmp_path, monkeypatch):
    out = tmp_path / "flux-out"
    night(NIGHT_1, out)
    real = outdir.atomic_write
    calls = []

    def failing(path, data, **kwargs):
        calls.append(path)
        if len(calls) == 3:  # the pending record, then one file, then the crash
            raise OSError("disk full")
        real(path, data, **kwargs)

    monkeypatch.setattr(outdir, "atomic_write", failing)
    with pytest.raises(OSError):
        night(NIGHT_2, out)
    monkeypatch.setattr(outdir, "atomic_write", real)
    night(NIGHT_2, out)
    assert contents(out) == NIGHT_2


def test_a_special_file_where_mirror_wrote_one_is_refused_without_being_opened(tmp_path):
    out = tmp_path / "flux-out"
    night(NIGHT_1, out)
    (out / "flux-system/gitrepository/apps.yaml").unlink()
    os.mkfifo(out / "flux-system/gitrepository/apps.yaml")  # opening it to hash it would block
    with pytest.raises(UsageError, match="not a regular file"):
        check_output_directory(out)


def test_a_flux_out_directory_under_a_regular_file_is_refused_before_any_write(tmp_path):
    (tmp_path / "exe.sh").write_text("#!/bin/sh\n")
    (tmp_path / "exe.sh").chmod(0o755)  # writable and executable: os.access alone lets it through
    with pytest.raises(UsageError, match="not a directory"):
        check_output_directory(tmp_path / "exe.sh" / "flux")
