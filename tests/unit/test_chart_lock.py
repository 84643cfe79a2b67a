"""A chart's dependencies are collected at the versions its Chart.lock (requirements.lock) pins, as
`helm dependency build` takes them, not at the newest version the Chart.yaml constraint allows."""

from __future__ import annotations

import io
import tarfile

import yaml

from mirror.collector.charts import dependency_sources
from mirror.helm.archive import read_chart
from mirror.manifest.model import ChartImages, ChartSource
from tests.support.charts import build_chart
from tests.support.realdata import realdata

BITNAMI = "oci://registry-1.docker.io/bitnamicharts"
PARENT = ChartSource(
    name="wordpress",
    repo=BITNAMI,
    version="27.0.0",
    images=ChartImages(discover=True),
    dependencies=True,
    platforms=None,
    origin="platform.yaml: spec.charts[0]",
)


def _archive(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _versions(sources: list[ChartSource]) -> dict[str, str | None]:
    return {s.name: s.version for s in sources}


def test_the_real_wordpress_chart_lock_pins_its_dependencies() -> None:
    chart_dir = realdata("bitnami__charts", "bitnami", "wordpress")
    files = {f"wordpress/{n}": (chart_dir / n).read_bytes() for n in ("Chart.yaml", "Chart.lock", "values.yaml")}
    chart = read_chart(_archive(files), where="wordpress")
    notes: list[str] = []
    sources = dependency_sources(chart, PARENT, "wordpress@27.0.0", notes)
    assert _versions(sources) == {"memcached": "7.9.7", "mariadb": "22.0.0", "common": "2.31.4"}
    assert not notes


def test_a_chart_without_a_lock_keeps_its_constraints() -> None:
    archive = build_chart("web", "1.0.0", dependencies=[{"name": "db", "version": "22.x.x", "repository": BITNAMI}])
    sources = dependency_sources(read_chart(archive, where="web"), PARENT, "web@1.0.0", [])
    assert _versions(sources) == {"db": "22.x.x"}


def test_a_lock_entry_of_another_repository_is_not_taken() -> None:
    lock = {"dependencies": [{"name": "db", "version": "22.0.0", "repository": "https://charts.example/other"}]}
    archive = build_chart(
        "web",
        "1.0.0",
        dependencies=[{"name": "db", "version": "22.x.x", "repository": BITNAMI}],
        extra_files={"Chart.lock": yaml.safe_dump(lock)},
    )
    sources = dependency_sources(read_chart(archive, where="web"), PARENT, "web@1.0.0", [])
    assert _versions(sources) == {"db": "22.x.x"}


def test_a_lock_out_of_sync_with_the_constraint_is_reported_and_the_constraint_kept() -> None:
    lock = {"dependencies": [{"name": "db", "version": "21.0.0", "repository": BITNAMI + "/"}]}
    archive = build_chart(
        "web",
        "1.0.0",
        dependencies=[{"name": "db", "version": "22.x.x", "repository": BITNAMI}],
        extra_files={"Chart.lock": yaml.safe_dump(lock)},
    )
    notes: list[str] = []
    sources = dependency_sources(read_chart(archive, where="web"), PARENT, "web@1.0.0", notes)
    assert _versions(sources) == {"db": "22.x.x"}
    assert len(notes) == 1 and "out of sync" in notes[0] and "21.0.0" in notes[0]
