"""The YAML budget: nodes counted as the document would expand (aliases at the size of what they point at),
nesting depth, and a refusal naming the file before anything is built."""

from __future__ import annotations

import time

import pytest

from mirror.yamlio import YamlBudget, YamlBudgetError, load_yaml_documents, read_yaml


def alias_bomb(levels: int, width: int = 10) -> str:
    """`levels` levels of `width` aliases to the level below: width**levels leaves in a few hundred bytes."""
    lines = ["l0: &l0 [" + ", ".join(["x"] * width) + "]"]
    lines += [f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * width) + "]" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


def budget(nodes: int = 1_000_000, depth: int = 100) -> YamlBudget:
    return YamlBudget(max_nodes=nodes, max_depth=depth)


def refused(text: str, nodes: int = 1_000_000, depth: int = 100) -> str:
    with pytest.raises(YamlBudgetError) as caught:
        read_yaml(text, "fleet/bomb.yaml", budget=budget(nodes, depth))
    assert caught.value.exit_code == 2
    return caught.value.message


def test_a_document_exactly_at_the_node_limit_passes():
    # The mapping, the key, the sequence and its two items.
    assert read_yaml("a: [b, c]\n", "f.yaml", budget=budget(nodes=5)) == [{"a": ["b", "c"]}]


def test_a_document_one_node_over_the_limit_is_refused_naming_the_file():
    message = refused("a: [b, c]\n", nodes=4)
    assert "fleet/bomb.yaml" in message
    assert "more than 4 nodes" in message


def test_a_shared_alias_counts_the_size_of_what_it_points_at_each_time():
    # 1 mapping + key b + [x, y] (3) + key u + the sequence + two aliases of 3 nodes each = 13.
    text = "b: &b [x, y]\nu: [*b, *b]\n"
    assert read_yaml(text, "f.yaml", budget=budget(nodes=13)) == [{"b": ["x", "y"], "u": [["x", "y"], ["x", "y"]]}]
    refused(text, nodes=12)


def test_nested_aliases_multiply():
    # Three levels of three: l3 alone expands to 1 + 3 * (1 + 3 * (1 + 3 * 4)) = 121 nodes.
    text = alias_bomb(3, width=3)
    refused(text, nodes=120)
    read_yaml(text, "f.yaml", budget=budget(nodes=1_000))


def test_a_merge_key_counts_the_merged_mapping():
    # 1 + key b + {x: 1, y: 2} (5) + key m + the mapping + `<<` + the alias (5) + z + 3 = 17.
    text = "b: &b {x: 1, y: 2}\nm: {<<: *b, z: 3}\n"
    assert read_yaml(text, "f.yaml", budget=budget(nodes=17))[0]["m"] == {"x": 1, "y": 2, "z": 3}
    refused(text, nodes=16)


def test_a_merge_bomb_is_refused():
    lines = ["m0: &m0 {a: 1, b: 2}"]
    lines += [f"m{i}: &m{i} {{<<: [*m{i - 1}, *m{i - 1}], k{i}: 1}}" for i in range(1, 40)]
    started = time.monotonic()
    assert "more than" in refused("\n".join(lines) + "\n")
    assert time.monotonic() - started < 5


def test_a_ten_level_alias_bomb_is_refused_quickly():
    text = alias_bomb(10)
    assert len(text) < 1000
    started = time.monotonic()
    message = refused(text)
    assert time.monotonic() - started < 5
    assert "alias" in message


def test_an_alias_that_contains_itself_is_refused():
    assert "refers to a node that contains it" in refused("a: &loop\n  again: *loop\n")


def test_nesting_at_the_depth_limit_passes_and_one_deeper_is_refused():
    assert read_yaml("[[[x]]]", "f.yaml", budget=budget(depth=3)) == [[[["x"]]]]
    assert "deeper than 2 levels" in refused("[[[x]]]", depth=2)


def test_aliases_do_not_make_a_document_deeper_than_what_they_point_at():
    # The mapping, b's sequence, then what *a points at: [[x]] is two levels.
    assert read_yaml("a: &a [[x]]\nb: [*a, *a]\n", "f.yaml", budget=budget(depth=4))


def test_the_documents_of_one_file_share_the_budget():
    text = "a: [b, c]\n---\na: [b, c]\n"
    assert len(read_yaml(text, "f.yaml", budget=budget(nodes=10))) == 2
    refused(text, nodes=9)


def test_one_budget_shared_by_several_files_is_spent_across_them():
    shared = budget(nodes=10)
    read_yaml("a: [b, c]\n", "Chart.yaml", budget=shared)
    read_yaml("a: [b, c]\n", "values.yaml", budget=shared)
    with pytest.raises(YamlBudgetError) as caught:
        read_yaml("a: b\n", "charts/sub/values.yaml", budget=shared)
    assert "charts/sub/values.yaml" in caught.value.message


def test_empty_documents_are_left_out():
    assert read_yaml("---\n---\na: 1\n", "f.yaml", budget=budget()) == [{"a": 1}]


def test_the_default_budget_reads_an_ordinary_document():
    assert read_yaml("a: 1\n", "f.yaml") == [{"a": 1}]


def test_a_people_written_file_with_an_alias_bomb_is_refused_naming_it(tmp_path):
    path = tmp_path / "mirrorset.yaml"
    path.write_text("apiVersion: mirror/v1\n" + alias_bomb(10))
    with pytest.raises(YamlBudgetError) as caught:
        load_yaml_documents(path)
    assert str(path) in caught.value.message


def test_a_people_written_file_still_refuses_duplicate_keys(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text("a: 1\na: 2\n")
    with pytest.raises(Exception, match="duplicate key"):
        load_yaml_documents(path)
