"""The blob cache: an entry is reused only when its bytes still hash to its name."""

from __future__ import annotations

import errno
import hashlib
import os
import time
from pathlib import Path

import pytest

from mirror.collector import cache as cache_module
from mirror.collector.cache import BlobCache, default_cache_dir
from mirror.errors import UsageError

DATA = b"layer bytes " * 1000
DIGEST = "sha256:" + hashlib.sha256(DATA).hexdigest()


def _stored(tmp_path: Path) -> BlobCache:
    cache = BlobCache(tmp_path / "cache")
    with cache.storing(DIGEST, len(DATA)) as handle:
        handle.write(DATA)
    return cache


def test_a_stored_blob_is_placed_with_its_bytes_and_counted_as_reused(tmp_path):
    cache = _stored(tmp_path)
    target = tmp_path / "bundle-blob"
    assert cache.reuse(DIGEST, len(DATA), target)
    assert target.read_bytes() == DATA
    assert (cache.use.reused, cache.use.reused_bytes, cache.use.reused_blobs) == (1, len(DATA), {DIGEST: len(DATA)})


def test_on_one_file_system_the_placed_blob_is_a_hard_link_not_a_copy(tmp_path):
    cache = _stored(tmp_path)
    target = tmp_path / "bundle-blob"
    cache.place(DIGEST, len(DATA), target)
    assert target.stat().st_ino == cache.entry(DIGEST).stat().st_ino


def test_a_corrupted_entry_is_refused_and_deleted(tmp_path):
    cache = _stored(tmp_path)
    damaged = bytearray(DATA)
    damaged[5] ^= 1
    cache.entry(DIGEST).write_bytes(bytes(damaged))
    target = tmp_path / "bundle-blob"
    assert not cache.reuse(DIGEST, len(DATA), target)
    assert not target.exists()
    assert not cache.entry(DIGEST).exists()
    assert (cache.use.discarded, cache.use.reused) == (1, 0)


def test_an_entry_of_the_wrong_size_is_refused_and_deleted(tmp_path):
    cache = _stored(tmp_path)
    assert not cache.place(DIGEST, len(DATA) + 1, tmp_path / "bundle-blob")
    assert not cache.entry(DIGEST).exists()


def test_a_missing_entry_is_a_miss(tmp_path):
    cache = BlobCache(tmp_path / "cache")
    assert not cache.place(DIGEST, len(DATA), tmp_path / "bundle-blob")
    assert cache.use.discarded == 0


def test_across_file_systems_the_blob_is_copied_and_checked(tmp_path, monkeypatch):
    cache = _stored(tmp_path)

    def cross_device(source: object, target: object, **_: object) -> None:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(cache_module.os, "link", cross_device)
    target = tmp_path / "bundle-blob"
    assert cache.reuse(DIGEST, len(DATA), target)
    assert target.read_bytes() == DATA
    assert target.stat().st_ino != cache.entry(DIGEST).stat().st_ino


def test_a_corrupted_entry_copied_across_file_systems_is_refused(tmp_path, monkeypatch):
    cache = _stored(tmp_path)
    cache.entry(DIGEST).write_bytes(DATA[:-1] + b"!")
    monkeypatch.setattr(cache_module.os, "link", lambda *_, **__: (_ for _ in ()).throw(OSError(errno.EXDEV, "x")))
    target = tmp_path / "bundle-blob"
    assert not cache.reuse(DIGEST, len(DATA), target)
    assert not target.exists() and not cache.entry(DIGEST).exists()


def test_a_download_that_fails_leaves_no_entry_and_no_temporary_file(tmp_path):
    cache = BlobCache(tmp_path / "cache")
    with pytest.raises(RuntimeError), cache.storing(DIGEST, len(DATA)) as handle:
        handle.write(DATA[:10])
        raise RuntimeError("connection reset")
    assert list(cache.blobs.iterdir()) == []


def test_prune_deletes_entries_unused_for_the_max_age_and_keeps_recent_ones(tmp_path):
    cache = _stored(tmp_path)
    old = cache.blobs / ("0" * 64)
    old.write_bytes(b"old")
    month_ago = time.time() - 30 * 86400
    os.utime(old, (month_ago, month_ago))
    assert cache.prune() == 1
    assert sorted(p.name for p in cache.blobs.iterdir()) == [DIGEST.removeprefix("sha256:")]


def test_reuse_refreshes_an_entry_so_prune_keeps_it(tmp_path):
    cache = _stored(tmp_path)
    month_ago = time.time() - 30 * 86400
    os.utime(cache.entry(DIGEST), (month_ago, month_ago))
    assert cache.reuse(DIGEST, len(DATA), tmp_path / "bundle-blob")
    assert cache.prune() == 0


def test_prune_deletes_temporary_files_left_by_a_killed_run(tmp_path):
    cache = BlobCache(tmp_path / "cache")
    left = cache.blobs / f".{'a' * 64}.0123.partial"
    left.write_bytes(b"half")
    two_days_ago = time.time() - 2 * 86400
    os.utime(left, (two_days_ago, two_days_ago))
    assert cache.prune() == 1 and not left.exists()


def test_a_recent_temporary_file_may_belong_to_a_running_collect_and_is_kept(tmp_path):
    cache = BlobCache(tmp_path / "cache")
    (cache.blobs / f".{'a' * 64}.0123.partial").write_bytes(b"half")
    assert cache.prune() == 0


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"MIRROR_CACHE_DIR": "/srv/cache", "XDG_CACHE_HOME": "/x"}, Path("/srv/cache")),
        ({"XDG_CACHE_HOME": "/var/cache/user"}, Path("/var/cache/user/mirror")),
        ({"XDG_CACHE_HOME": "relative/is/ignored"}, Path.home() / ".cache" / "mirror"),
        ({}, Path.home() / ".cache" / "mirror"),
    ],
)
def test_default_cache_directory(env, expected):
    assert default_cache_dir(env) == expected


# Planted links and special files (issue 20): the cache never follows a link, and never trusts what it did not make.


def test_a_symlinked_blob_directory_is_refused_and_nothing_is_written_through_it(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "cache" / "blobs").mkdir(parents=True)
    (tmp_path / "cache" / "blobs" / "sha256").symlink_to(elsewhere)
    with pytest.raises(UsageError, match="sha256"):
        BlobCache(tmp_path / "cache")
    assert list(elsewhere.iterdir()) == []


def test_a_symlinked_blobs_level_is_refused(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "sha256").mkdir(parents=True)
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "blobs").symlink_to(elsewhere)
    with pytest.raises(UsageError, match="blobs"):
        BlobCache(tmp_path / "cache")


def test_prune_never_deletes_files_the_cache_did_not_create(tmp_path):
    cache = BlobCache(tmp_path / "cache")
    foreign = cache.blobs / "notes.txt"
    foreign.write_bytes(b"someone else's")
    month_ago = time.time() - 30 * 86400
    os.utime(foreign, (month_ago, month_ago))
    assert cache.prune() == 0
    assert foreign.exists()


def test_prune_removes_an_old_link_named_like_an_entry_but_never_its_target(tmp_path):
    cache = BlobCache(tmp_path / "cache")
    victim = tmp_path / "victim"
    victim.write_bytes(b"keep me")
    month_ago = time.time() - 30 * 86400
    os.utime(victim, (month_ago, month_ago))
    (cache.blobs / ("1" * 64)).symlink_to(victim)
    cache.prune()
    assert victim.read_bytes() == b"keep me"


def test_an_entry_linked_to_an_endless_device_is_a_miss_not_an_endless_hash(tmp_path):
    empty = "sha256:" + hashlib.sha256(b"").hexdigest()  # /dev/zero's size is 0, like the empty blob's
    cache = BlobCache(tmp_path / "cache")
    cache.entry(empty).symlink_to("/dev/zero")
    started = time.monotonic()
    assert not cache.place(empty, 0, tmp_path / "bundle-blob")
    assert time.monotonic() - started < 5
    assert not (tmp_path / "bundle-blob").exists()


def test_an_entry_that_is_a_fifo_is_a_miss_and_does_not_block(tmp_path):
    empty = "sha256:" + hashlib.sha256(b"").hexdigest()
    cache = BlobCache(tmp_path / "cache")
    os.mkfifo(cache.entry(empty))
    assert not cache.place(empty, 0, tmp_path / "bundle-blob")


def test_an_entry_linked_to_a_file_of_the_right_bytes_elsewhere_is_still_a_miss(tmp_path):
    outside = tmp_path / "outside"
    outside.write_bytes(DATA)
    cache = BlobCache(tmp_path / "cache")
    cache.entry(DIGEST).symlink_to(outside)
    assert not cache.place(DIGEST, len(DATA), tmp_path / "bundle-blob")


def test_storing_over_a_planted_link_replaces_the_link_and_leaves_its_target_alone(tmp_path):
    victim = tmp_path / "victim"
    victim.write_bytes(b"keep me")
    cache = BlobCache(tmp_path / "cache")
    cache.entry(DIGEST).symlink_to(victim)
    with cache.storing(DIGEST, len(DATA)) as handle:
        handle.write(DATA)
    assert victim.read_bytes() == b"keep me"
    assert not cache.entry(DIGEST).is_symlink()
    assert cache.place(DIGEST, len(DATA), tmp_path / "bundle-blob")


def test_an_unwritable_cache_directory_is_a_usage_error_naming_it(tmp_path):
    parent = tmp_path / "ro"
    parent.mkdir()
    (parent / "cache").write_bytes(b"a file where the cache directory should be")
    with pytest.raises(UsageError, match="cache"):
        BlobCache(parent / "cache")


def _counting_unlinks(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    calls: list[object] = []
    real = os.unlink

    def counting(path: object, *args: object, **kwargs: object) -> None:
        calls.append(path)
        real(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "unlink", counting)
    return calls


def test_a_stored_blob_costs_no_unlink_of_its_renamed_temporary(tmp_path, monkeypatch):
    calls = _counting_unlinks(monkeypatch)  # each is a system call that hands the GIL to the other workers
    _stored(tmp_path)
    assert calls == []


def test_a_kept_manifest_costs_no_unlink_of_its_renamed_temporary(tmp_path, monkeypatch):
    cache = BlobCache(tmp_path / "cache")
    calls = _counting_unlinks(monkeypatch)
    cache.keep_small(DIGEST, DATA)
    assert calls == []
    assert cache.read_small(DIGEST, len(DATA)) == DATA


def test_a_manifest_that_fails_to_be_kept_leaves_no_temporary_file(tmp_path, monkeypatch):
    cache = BlobCache(tmp_path / "cache")
    monkeypatch.setattr(cache_module.os, "replace", _failing_replace)
    with pytest.raises(OSError, match="disk full"):
        cache.keep_small(DIGEST, DATA)
    assert list((tmp_path / "cache").rglob(".*.partial")) == []


def _failing_replace(*_: object, **__: object) -> None:
    raise OSError(errno.ENOSPC, "disk full")
