"""spec.charts[].values, valuesFiles, kubeVersion and apiVersions: what discovery renders a chart with.

Each mistake names the file and the field; values files are read when the MirrorSet is loaded, within the YAML
budget and a size limit.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

from mirror.errors import ManifestError, UsageError
from mirror.limits import DEFAULT_LIMITS
from mirror.manifest.load import load_mirrorsets
from mirror.manifest.model import ChartValues

HEADER = "apiVersion: mirror/v1\nkind: MirrorSet\nmetadata:\n  name: test\nspec:\n  charts:\n"


def mirrorset(tmp_path: Path, entry: str) -> Path:
    body = "    - name: podinfo\n      repo: https://stefanprodan.github.io/podinfo\n"
    body += textwrap.indent(textwrap.dedent(entry), "      ")
    path = tmp_path / "set.yaml"
    path.write_text(HEADER + body)
    return path


def chart_values(tmp_path: Path, entry: str) -> ChartValues:
    (mirror_set,) = load_mirrorsets([mirrorset(tmp_path, entry)])
    return mirror_set.charts[0].values


def refused(tmp_path: Path, entry: str) -> str:
    path = mirrorset(tmp_path, entry)
    with pytest.raises(ManifestError) as caught:
        load_mirrorsets([path])
    assert caught.value.exit_code == 2 and str(path) in str(caught.value)
    return str(caught.value)


def test_a_chart_without_the_fields_renders_with_its_own_defaults(tmp_path):
    assert chart_values(tmp_path, "") == ChartValues()
    assert not ChartValues().given


def test_inline_values_are_kept_as_yaml(tmp_path):
    values = chart_values(tmp_path, "values: {image: {tag: '6.5.0'}}\n")
    assert yaml.safe_load(values.inline) == {"image": {"tag": "6.5.0"}}
    assert values.given


def test_inline_values_must_be_a_mapping(tmp_path):
    assert "spec.charts[0].values" in refused(tmp_path, "values: [a, b]\n")


def test_values_files_are_read_relative_to_the_mirrorset(tmp_path):
    (tmp_path / "values").mkdir()
    (tmp_path / "values" / "prod.yaml").write_text("replicaCount: 3\n")
    values = chart_values(tmp_path, "valuesFiles: [values/prod.yaml]\n")
    assert values.files == (("values/prod.yaml", b"replicaCount: 3\n"),)


def test_values_files_keep_their_order(tmp_path):
    (tmp_path / "a.yaml").write_text("a: 1\n")
    (tmp_path / "b.yaml").write_text("b: 2\n")
    assert [name for name, _ in chart_values(tmp_path, "valuesFiles: [b.yaml, a.yaml]\n").files] == ["b.yaml", "a.yaml"]


def test_a_missing_values_file_names_the_field(tmp_path):
    text = refused(tmp_path, "valuesFiles: [absent.yaml]\n")
    assert "spec.charts[0].valuesFiles[0]" in text and "absent.yaml" in text


def test_values_files_must_be_a_list(tmp_path):
    assert "spec.charts[0].valuesFiles" in refused(tmp_path, "valuesFiles: prod.yaml\n")


def test_a_values_file_that_is_not_a_mapping_names_the_field(tmp_path):
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    assert "spec.charts[0].valuesFiles[0]" in refused(tmp_path, "valuesFiles: [list.yaml]\n")


def test_an_empty_values_file_is_accepted(tmp_path):
    (tmp_path / "empty.yaml").write_text("# nothing set\n")
    assert chart_values(tmp_path, "valuesFiles: [empty.yaml]\n").files == (("empty.yaml", b"# nothing set\n"),)


def test_a_values_file_that_is_not_yaml_names_the_field(tmp_path):
    (tmp_path / "bad.yaml").write_text("a: [unclosed\n")
    assert "spec.charts[0].valuesFiles[0]" in refused(tmp_path, "valuesFiles: [bad.yaml]\n")


def test_an_alias_bomb_in_a_values_file_is_refused(tmp_path):
    bomb = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]\n" for i in range(1, 9)
    )
    (tmp_path / "bomb.yaml").write_text(bomb)
    with pytest.raises(UsageError, match=r"bomb\.yaml"):
        load_mirrorsets([mirrorset(tmp_path, "valuesFiles: [bomb.yaml]\n")])


def test_a_values_file_larger_than_the_limit_is_refused(tmp_path):
    (tmp_path / "big.yaml").write_text("a: " + "x" * DEFAULT_LIMITS.max_values_file_bytes + "\n")
    text = refused(tmp_path, "valuesFiles: [big.yaml]\n")
    assert "spec.charts[0].valuesFiles[0]" in text and "max_values_file_bytes" in text


def test_a_values_file_that_is_a_directory_is_refused(tmp_path):
    (tmp_path / "dir").mkdir()
    assert "spec.charts[0].valuesFiles[0]" in refused(tmp_path, "valuesFiles: [dir]\n")


def test_kube_version_is_kept(tmp_path):
    assert chart_values(tmp_path, "kubeVersion: '1.31.0'\n").kube_version == "1.31.0"


def test_kube_version_accepts_a_v_prefix_and_two_parts(tmp_path):
    assert chart_values(tmp_path, "kubeVersion: v1.31\n").kube_version == "v1.31"


def test_kube_version_read_as_a_number_is_refused(tmp_path):
    with pytest.raises(ManifestError, match=r"spec\.charts\[0\]\.kubeVersion: 1\.3 was read as a number") as caught:
        load_mirrorsets([mirrorset(tmp_path, "kubeVersion: 1.30\n")])
    assert "quote" in (caught.value.hint or "")


def test_kube_version_that_is_not_a_version_is_refused(tmp_path):
    assert "spec.charts[0].kubeVersion" in refused(tmp_path, "kubeVersion: --debug\n")


def test_kube_version_in_other_scripts_digits_is_refused(tmp_path):
    # Python's \d takes any script's digits; helm's version parser takes 0-9 only.
    assert "spec.charts[0].kubeVersion" in refused(tmp_path, "kubeVersion: '\u0661.\u0663\u0661.0'\n")


def test_api_versions_are_kept_in_order(tmp_path):
    values = chart_values(tmp_path, "apiVersions: [monitoring.coreos.com/v1, policy/v1/PodDisruptionBudget, v1]\n")
    assert values.api_versions == ("monitoring.coreos.com/v1", "policy/v1/PodDisruptionBudget", "v1")


def test_api_versions_must_be_a_list(tmp_path):
    assert "spec.charts[0].apiVersions" in refused(tmp_path, "apiVersions: monitoring.coreos.com/v1\n")


@pytest.mark.parametrize("bad", ["--set=x", "a b/v1", "", "a/b/c/d", "monitoring.coreos.com/v1,batch/v1"])
def test_an_api_version_that_is_not_one_is_refused_naming_its_index(tmp_path, bad):
    assert "spec.charts[0].apiVersions[1]" in refused(tmp_path, f"apiVersions: [v1, {bad!r}]\n")


def test_the_same_chart_with_other_values_in_two_mirrorsets_is_refused(tmp_path):
    first = mirrorset(tmp_path, "values: {a: 1}\n")
    second = tmp_path / "other.yaml"
    second.write_text(first.read_text().replace("{a: 1}", "{a: 2}"))
    with pytest.raises(ManifestError, match=r"spec\.charts\[0\]") as caught:
        load_mirrorsets([first, second])
    assert "other values" in str(caught.value)
