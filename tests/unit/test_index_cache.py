"""A repository's index.yaml is fetched once per run; charts asked for later are read from the stored copy."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Any, BinaryIO

import pytest

from mirror.collector import chartindex as charts
from mirror.collector.chartindex import IndexCache
from mirror.collector.httpfetch import HttpFetcher
from mirror.errors import SourceNotFoundError
from mirror.helm.repoindex import IndexEntry, read_index
from mirror.manifest.model import ChartImages, ChartSource
from tests.support.hostile import HostileServer
from tests.support.hostile.unbounded import ChartRepository

INDEX = """\
apiVersion: v1
entries:
  a:
  - {version: 1.0.0, urls: [a-1.0.0.tgz]}
  b:
  - {version: 2.0.0, urls: [b-2.0.0.tgz]}
"""


@pytest.fixture
def repository(tmp_path: Path) -> ChartRepository:
    index = tmp_path / "index.yaml"
    index.write_text(INDEX)
    return ChartRepository(index=index)


def test_a_chart_asked_for_after_another_is_read_without_fetching_the_index_again(repository) -> None:
    with HostileServer(repository.route) as server, HttpFetcher() as fetcher:
        cache = IndexCache(fetcher)
        assert cache.versions(server.url, "a") == [IndexEntry("1.0.0", None, ("a-1.0.0.tgz",))]
        assert cache.versions(server.url, "b") == [IndexEntry("2.0.0", None, ("b-2.0.0.tgz",))]
        assert cache.versions(server.url, "missing") is None
        cache.close()
        assert len(server.seen(lambda r: r.path == "/index.yaml")) == 1


def _source(name: str, repo: str) -> ChartSource:
    return ChartSource(name, repo, None, ChartImages(), True, None, "test")


def test_charts_expected_for_a_wave_are_read_in_one_walk(repository, monkeypatch) -> None:
    walks: list[set[str]] = []

    def recorded(handle: BinaryIO, names: Collection[str], **options: Any) -> dict[str, Any]:
        walks.append(set(names))
        return read_index(handle, names, **options)

    monkeypatch.setattr(charts, "read_index", recorded)
    with HostileServer(repository.route) as server, HttpFetcher() as fetcher:
        cache = IndexCache(fetcher)
        cache.expect([_source("a", server.url), _source("b", server.url)])
        cache.versions(server.url, "a")
        cache.versions(server.url, "b")
        cache.close()
    assert walks == [{"a", "b"}]


def test_a_repository_without_an_index_is_not_found() -> None:
    with (
        HostileServer() as server,
        HttpFetcher() as fetcher,
        pytest.raises(SourceNotFoundError, match="no chart repository index here"),
    ):
        IndexCache(fetcher).versions(server.url, "a")
