"""A Flux OCI artifact's tarball (what a Kustomization whose source is an OCIRepository builds from) is
unpacked by hand, never with extractall: member names checked, links and devices never created, and every
size and count capped by `Limits`."""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path

import pytest

from mirror.errors import UsageError
from mirror.flux.artifact import extract_artifact
from mirror.limits import Limits

WHERE = "deploy.yaml: OCIRepository flux-system/manifests"


def _tgz(members: list[tuple[str, bytes | None, bytes]]) -> io.BytesIO:
    """(name, data or None, type) entries; type tarfile.REGTYPE, DIRTYPE, SYMTYPE, LNKTYPE or CHRTYPE."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data, kind in members:
            info = tarfile.TarInfo(name)
            info.type = kind
            if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE):
                info.linkname = (data or b"").decode()
                tar.addfile(info)
            elif data is not None:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    return io.BytesIO(gzip.compress(raw.getvalue(), mtime=0))


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_the_files_of_an_artifact_are_unpacked_under_the_directory(tmp_path: Path) -> None:
    stream = _tgz([("./", None, tarfile.DIRTYPE), ("./deploy/web.yaml", b"kind: Deployment\n", tarfile.REGTYPE)])
    extract_artifact(stream, tmp_path / "out", where=WHERE)
    assert _files(tmp_path / "out") == {"deploy/web.yaml": b"kind: Deployment\n"}


@pytest.mark.parametrize("name", ["../escape.yaml", "/etc/escape.yaml", "deploy/../../escape.yaml"])
def test_a_member_outside_the_directory_is_refused_naming_it(tmp_path: Path, name: str) -> None:
    with pytest.raises(UsageError, match=rf"{WHERE}: .*{name.lstrip('/')}"):
        extract_artifact(_tgz([(name, b"x", tarfile.REGTYPE)]), tmp_path / "out", where=WHERE)
    assert not (tmp_path / "escape.yaml").exists()


@pytest.mark.parametrize(
    ("kind", "target"), [(tarfile.SYMTYPE, b"/etc/passwd"), (tarfile.LNKTYPE, b"ok.yaml"), (tarfile.CHRTYPE, None)]
)
def test_links_and_devices_are_never_created(tmp_path: Path, kind: bytes, target: bytes | None) -> None:
    stream = _tgz([("ok.yaml", b"a: 1\n", tarfile.REGTYPE), ("link.yaml", target, kind)])
    notes = extract_artifact(stream, tmp_path / "out", where=WHERE)
    assert _files(tmp_path / "out") == {"ok.yaml": b"a: 1\n"}
    assert not (tmp_path / "out" / "link.yaml").is_symlink()
    assert [n for n in notes if "link.yaml" in n]


def test_a_name_listed_twice_is_refused(tmp_path: Path) -> None:
    stream = _tgz([("a.yaml", b"1", tarfile.REGTYPE), ("./a.yaml", b"2", tarfile.REGTYPE)])
    with pytest.raises(UsageError, match=r"a\.yaml"):
        extract_artifact(stream, tmp_path / "out", where=WHERE)


def test_more_files_than_the_limit_are_refused_naming_it(tmp_path: Path) -> None:
    stream = _tgz([(f"f{i}.yaml", b"x", tarfile.REGTYPE) for i in range(5)])
    with pytest.raises(UsageError, match="max_flux_artifact_files"):
        extract_artifact(stream, tmp_path / "out", where=WHERE, limits=Limits(max_flux_artifact_files=4))


def test_more_content_than_the_limit_is_refused_before_it_is_written(tmp_path: Path) -> None:
    stream = _tgz([("big.yaml", b"x" * 5000, tarfile.REGTYPE)])
    with pytest.raises(UsageError, match="max_flux_artifact_content_bytes"):
        extract_artifact(stream, tmp_path / "out", where=WHERE, limits=Limits(max_flux_artifact_content_bytes=4096))
    assert not (tmp_path / "out" / "big.yaml").exists()


def test_a_tarball_that_is_not_gzip_is_refused_naming_the_artifact(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=WHERE):
        extract_artifact(io.BytesIO(b"not a tarball"), tmp_path / "out", where=WHERE)
