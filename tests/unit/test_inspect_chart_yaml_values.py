"""`mirror inspect` of a bundle carrying a chart whose YAML holds values that cannot be built (an impossible date,
a tag on text it cannot hold) shows the chart with a note, never exit 1."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from mirror.cli import app
from tests.support.charts import build_chart
from tests.support.signedbundles import SmallBundle


def inspect_chart(tmp_path: Path, archive: bytes):
    bundle = SmallBundle(tmp_path / "bundle")
    bundle.chart("demo", "1.0.0", archive=archive)
    bundle.finish()
    return CliRunner().invoke(app, ["inspect", str(bundle.root)])


def test_inspect_shows_a_chart_whose_values_hold_an_impossible_date(tmp_path: Path) -> None:
    result = inspect_chart(tmp_path, build_chart("demo", "1.0.0", extra_files={"values.yaml": "when: 2026-02-30\n"}))
    assert result.exit_code == 0, result.output
    assert "demo" in result.output


def test_inspect_notes_a_chart_yaml_holding_a_timestamp_tag_on_text(tmp_path: Path) -> None:
    chart_yaml = "apiVersion: v2\nname: demo\nversion: 1.0.0\nkubeVersion: !!timestamp abc\n"
    result = inspect_chart(tmp_path, build_chart("demo", "1.0.0", extra_files={"Chart.yaml": chart_yaml}))
    assert result.exit_code == 0, result.output
    assert "Chart.yaml not read" in result.output
