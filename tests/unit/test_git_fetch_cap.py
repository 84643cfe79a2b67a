"""What a Git fetch may write is capped while git runs: by Limits.max_git_fetch_bytes, and in a collect by
--max-bundle-size, which Git sources count against as images do. Past the cap git is stopped, not waited for."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from mirror.collector.run import collect
from mirror.errors import MirrorError
from mirror.limits import DEFAULT_LIMITS, MiB
from mirror.progress import Progress
from tests.support.hostile import Answer, HostileServer, Request
from tests.support.hostile.dumbgit import bare_repository, dumb_git, head_commit

PACK = "pack-" + "ab" * 20
HUGE = 256 * MiB  # what the upstream would send: far more than any cap below lets through


class HugePackIndex:
    """A dumb-HTTP upstream whose one pack index is HUGE bytes, sent 1 MiB at a time; counts what it sent."""

    def __init__(self, commit: str) -> None:
        self.commit = commit
        self.sent = 0

    def _chunks(self) -> Iterator[bytes]:
        chunk = b"\0" * MiB
        for _ in range(HUGE // MiB):
            self.sent += len(chunk)
            yield chunk

    def __call__(self, request: Request) -> Answer:
        path = request.path.split("?")[0]
        if path == "/repo.git/info/refs":
            return Answer(200, {"Content-Type": "text/plain"}, f"{self.commit}\trefs/heads/main\n".encode())
        if path == "/repo.git/HEAD":
            return Answer(200, {"Content-Type": "text/plain"}, b"ref: refs/heads/main\n")
        if path == "/repo.git/objects/info/packs":
            return Answer(200, {"Content-Type": "text/plain"}, f"P {PACK}.pack\n\n".encode())
        if path == f"/repo.git/objects/pack/{PACK}.idx":
            return Answer(200, {"Content-Type": "application/octet-stream"}, self._chunks(), piece_delay_s=0.01)
        return Answer(404)


def collect_from(tmp_path: Path, upstream: HugePackIndex, **options: object) -> MirrorError:
    with HostileServer(upstream) as server:
        manifest = tmp_path / "m.yaml"
        source = {"name": "r", "url": f"{server.url}/repo.git", "ref": {"branch": "main"}}
        spec = {"apiVersion": "mirror/v1", "kind": "MirrorSet", "metadata": {"name": "t"}, "spec": {"git": [source]}}
        manifest.write_text(json.dumps(spec))
        with pytest.raises(MirrorError) as caught:
            collect([manifest], tmp_path / "out", progress=Progress(quiet=True), **options)  # type: ignore[arg-type]
    return caught.value


@pytest.fixture
def upstream(tmp_path: Path) -> HugePackIndex:
    return HugePackIndex(head_commit(bare_repository(tmp_path / "upstream")))


def test_a_git_fetch_past_max_git_fetch_bytes_is_stopped_as_a_transfer_failure(
    tmp_path: Path, upstream: HugePackIndex
) -> None:
    error = collect_from(tmp_path, upstream, limits=replace(DEFAULT_LIMITS, max_git_fetch_bytes=MiB))
    assert error.exit_code == 4
    assert "max_git_fetch_bytes" in error.message
    assert upstream.sent < HUGE // 4


def test_a_git_source_past_max_bundle_size_is_stopped_while_it_is_fetched(
    tmp_path: Path, upstream: HugePackIndex
) -> None:
    error = collect_from(tmp_path, upstream, max_bundle_size=MiB)
    assert error.exit_code == 2
    assert "--max-bundle-size" in error.message
    assert upstream.sent < HUGE // 4


def test_a_git_fetch_under_the_cap_is_not_stopped(tmp_path: Path) -> None:
    bare = bare_repository(tmp_path / "upstream")
    with HostileServer(dumb_git(bare)) as server:
        manifest = tmp_path / "m.yaml"
        source = {"name": "r", "url": f"{server.url}/repo.git", "ref": {"branch": "main"}}
        spec = {"apiVersion": "mirror/v1", "kind": "MirrorSet", "metadata": {"name": "t"}, "spec": {"git": [source]}}
        manifest.write_text(json.dumps(spec))
        result = collect(
            [manifest],
            tmp_path / "out",
            progress=Progress(quiet=True),
            limits=replace(DEFAULT_LIMITS, max_git_fetch_bytes=MiB),
            max_bundle_size=MiB,
        )
    assert [a.kind for a in result.inventory.artifacts] == ["git"]
