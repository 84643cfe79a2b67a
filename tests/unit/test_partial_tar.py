"""A partial tar (the resume state of a collect to .tar): opened at its fixed name and locked, never through a
link; what it holds is kept only where this collect reserves the same member at the same place and the bytes
hash to the name; every other byte up to the end is rewritten, so a resumed tar is the tar an uninterrupted
collect writes. See docs/collector.md ("Resuming a .tar collect")."""

from __future__ import annotations

import fcntl
import hashlib
import os
from pathlib import Path

import pytest

from mirror.bundle.tarball import OnePassTar
from mirror.errors import UsageError

BLOBS = [bytes([n]) * (900 * n + 7) for n in range(1, 4)]
NAMES = {f"blobs/sha256/{hashlib.sha256(b).hexdigest()}": b for b in BLOBS}
SIZES = [(name, len(data)) for name, data in NAMES.items()]


def _write(tar: OnePassTar, names: dict[str, bytes]) -> None:
    for name, data in names.items():
        if tar.keep(name, name.rsplit("/", 1)[1]):
            continue
        with tar.filling(name) as slot:
            slot.write(data)


def _whole(path: Path) -> bytes:
    with OnePassTar(path) as tar:
        tar.reserve(SIZES)
        _write(tar, NAMES)
        tar.finish()
    return path.read_bytes()


def _killed_after(path: Path, names: dict[str, bytes]) -> None:
    """What a collect killed after filling `names` leaves: the partial tar, unfinished."""
    tar = OnePassTar.partial(path, resume=True)
    tar.reserve(SIZES)
    _write(tar, names)
    tar.close()


def _resume(path: Path, out: Path) -> list[str]:
    """Resume from the partial tar at `path`; the names it kept."""
    kept = []
    with OnePassTar.partial(path, resume=True) as tar:
        tar.reserve(SIZES)
        for name, data in NAMES.items():
            if tar.keep(name, name.rsplit("/", 1)[1]):
                kept.append(name)
            else:
                with tar.filling(name) as slot:
                    slot.write(data)
        tar.finish(out)
    return kept


def test_a_resumed_tar_keeps_what_the_killed_one_filled_and_equals_an_uninterrupted_one(tmp_path: Path) -> None:
    first = dict(list(NAMES.items())[:2])
    _killed_after(tmp_path / ".b.tar.partial", first)
    assert _resume(tmp_path / ".b.tar.partial", tmp_path / "b.tar") == list(first)
    assert (tmp_path / "b.tar").read_bytes() == _whole(tmp_path / "whole.tar")
    assert not (tmp_path / ".b.tar.partial").exists()


def test_a_tampered_member_is_not_kept(tmp_path: Path) -> None:
    partial = tmp_path / ".b.tar.partial"
    _killed_after(partial, NAMES)
    data = bytearray(partial.read_bytes())
    offset = data.index(BLOBS[1])
    data[offset + 5] ^= 0xFF
    partial.write_bytes(bytes(data))
    kept = _resume(partial, tmp_path / "b.tar")
    assert list(NAMES)[1] not in kept and len(kept) == 2
    assert (tmp_path / "b.tar").read_bytes() == _whole(tmp_path / "whole.tar")


def test_foreign_bytes_everywhere_are_rewritten_zero_padding_and_all(tmp_path: Path) -> None:
    partial = tmp_path / ".b.tar.partial"
    partial.write_bytes(b"\xa5" * 20000)  # no header where this collect reserves one: nothing is kept
    assert _resume(partial, tmp_path / "b.tar") == []
    assert (tmp_path / "b.tar").read_bytes() == _whole(tmp_path / "whole.tar")


def test_without_resume_the_partial_tar_starts_empty(tmp_path: Path) -> None:
    partial = tmp_path / ".b.tar.partial"
    _killed_after(partial, NAMES)
    with OnePassTar.partial(partial, resume=False) as tar:
        tar.reserve(SIZES)
        assert not any(tar.keep(name, name.rsplit("/", 1)[1]) for name in NAMES)


def test_a_partial_tar_another_collect_holds_is_refused_untouched(tmp_path: Path) -> None:
    partial = tmp_path / ".b.tar.partial"
    partial.write_bytes(b"theirs")
    with open(partial, "rb") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(UsageError, match="another collect is writing"):
            OnePassTar.partial(partial, resume=False)
    assert partial.read_bytes() == b"theirs"


def test_a_link_or_a_fifo_at_the_partial_name_is_refused_without_opening_it(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"keep")
    (tmp_path / ".a.tar.partial").symlink_to(victim)
    os.mkfifo(tmp_path / ".b.tar.partial")
    for name in (".a.tar.partial", ".b.tar.partial"):
        with pytest.raises(UsageError, match="not a partial tar"):
            OnePassTar.partial(tmp_path / name, resume=True)
    assert victim.read_bytes() == b"keep"


def test_a_partial_tar_with_a_second_link_is_refused(tmp_path: Path) -> None:
    partial = tmp_path / ".b.tar.partial"
    partial.write_bytes(b"")
    os.link(partial, tmp_path / "elsewhere")
    with pytest.raises(UsageError, match="one link"):
        OnePassTar.partial(partial, resume=True)


def test_finishing_onto_an_out_that_appeared_meanwhile_is_refused(tmp_path: Path) -> None:
    (tmp_path / "b.tar").write_bytes(b"someone else's")
    with OnePassTar.partial(tmp_path / ".b.tar.partial", resume=True) as tar, pytest.raises(UsageError):
        tar.finish(tmp_path / "b.tar")
    assert (tmp_path / "b.tar").read_bytes() == b"someone else's"
