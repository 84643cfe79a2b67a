"""YAML values that cannot be built (an impossible date, an integer of thousands of digits, a tag whose text
does not fit it) are a YAML error naming the file, never a Python exception that escapes as exit 1."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mirror.errors import InvalidDocumentError, UsageError
from mirror.flux.objects import read_yaml_files
from mirror.helm.archive import read_chart
from mirror.yamlio import load_yaml_documents, read_yaml
from tests.unit.test_helm_archive import CHART_YAML, chart, tgz

UNBUILDABLE = [
    pytest.param("x: 1" + "0" * 5000 + "\n", id="integer-of-5001-digits"),
    pytest.param("when: 2026-02-30\n", id="impossible-date"),
    pytest.param("when: !!timestamp abc\n", id="timestamp-tag-on-text"),
    pytest.param("n: !!int abc\n", id="int-tag-on-text"),
    pytest.param("f: !!float abc\n", id="float-tag-on-text"),
]


@pytest.mark.parametrize("text", UNBUILDABLE)
def test_a_value_that_cannot_be_built_is_a_yaml_error_with_its_line(text: str) -> None:
    with pytest.raises(yaml.YAMLError) as caught:
        read_yaml(text, "values.yaml")
    assert "line 1" in str(caught.value)


@pytest.mark.parametrize("text", UNBUILDABLE)
def test_a_file_people_write_with_a_value_that_cannot_be_built_is_refused_naming_it(tmp_path: Path, text: str) -> None:
    path = tmp_path / "mirrorset.yaml"
    path.write_text(text)
    with pytest.raises(UsageError) as caught:
        load_yaml_documents(path)
    assert caught.value.exit_code == 2
    assert str(path) in str(caught.value)


@pytest.mark.parametrize("text", UNBUILDABLE)
def test_a_chart_whose_values_cannot_be_built_has_its_values_ignored_with_a_warning_naming_the_file(text: str) -> None:
    read = read_chart(chart({"values.yaml": text}), where="demo-1.2.3.tgz")
    assert read.values == {}
    assert "values.yaml" in read.warnings[0] and "not valid YAML" in read.warnings[0]


def test_a_chart_yaml_with_a_value_that_cannot_be_built_is_refused_naming_it() -> None:
    with pytest.raises(InvalidDocumentError) as caught:
        read_chart(tgz({"Chart.yaml": CHART_YAML + "kubeVersion: !!timestamp abc\n"}), where="demo-1.2.3.tgz")
    assert caught.value.exit_code == 3
    assert "Chart.yaml" in str(caught.value)


def test_a_fleet_file_with_a_value_that_cannot_be_built_is_skipped_with_a_warning_naming_it(tmp_path: Path) -> None:
    (tmp_path / "cm.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: default}\nx: 1" + "0" * 5000 + "\n"
    )
    warnings: list[str] = []
    assert read_yaml_files(tmp_path, warnings=warnings) == []
    assert len(warnings) == 1
    assert warnings[0].startswith("cm.yaml: skipped")
