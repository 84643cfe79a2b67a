"""index.yaml read as YAML events: the same entries `yaml.load` would give, only for the charts asked for."""

from __future__ import annotations

import io
from dataclasses import replace

import pytest
import yaml

from mirror.errors import InvalidDocumentError, UsageError
from mirror.helm.repoindex import IndexEntry, read_index
from mirror.limits import DEFAULT_LIMITS

DIGEST = "a" * 64


def read(text: str, *names: str, **limits: int) -> dict[str, list[IndexEntry] | None]:
    return read_index(
        io.BytesIO(text.encode()), names, where="repo/index.yaml", limits=replace(DEFAULT_LIMITS, **limits)
    )


INDEX = f"""\
apiVersion: v1
entries:
  app:
  - version: 1.0.0
    digest: {DIGEST}
    urls: [app-1.0.0.tgz, https://mirror.example/app-1.0.0.tgz]
    description: first
  - {{version: "1.10", urls: [app-1.10.tgz]}}
  - {{version: 1.10, urls: [unquoted-number.tgz]}}
  other:
  - version: 9.9.9
    urls: [other.tgz]
generated: now
"""


def test_the_charts_asked_for_keep_version_digest_and_first_url_only() -> None:
    assert read(INDEX, "app") == {
        "app": [
            IndexEntry("1.0.0", DIGEST, ("app-1.0.0.tgz",)),
            IndexEntry("1.10", None, ("app-1.10.tgz",)),
        ]
    }


def test_charts_not_asked_for_are_not_kept() -> None:
    assert "other" not in read(INDEX, "app")


def test_a_chart_the_index_does_not_list_is_absent_and_one_listed_as_a_scalar_is_none() -> None:
    assert read("entries:\n  app: oops\n", "app", "missing") == {"app": None}


def test_a_later_duplicate_key_wins_as_with_yaml_load() -> None:
    text = "entries:\n  app:\n  - {version: 1.0.0, version: 2.0.0, urls: [a.tgz]}\n  app:\n  - {version: 3.0.0}\n"
    assert read(text, "app") == {"app": [IndexEntry("3.0.0")]}


def test_null_digest_and_non_list_urls_read_as_none() -> None:
    assert read("entries:\n  app:\n  - {version: 1.0.0, digest: ~, urls: a.tgz}\n", "app") == {
        "app": [IndexEntry("1.0.0", None, None)]
    }


def test_aliases_in_entries_read_as_yaml_load_reads_them() -> None:
    # PyYAML writes an anchor for an object listed twice, such as the urls of a re-released version.
    text = (
        "entries:\n  app:\n  - {version: 1.0.0, digest: &d " + DIGEST + ", urls: &u [a.tgz, b.tgz]}\n"
        "  - &e {version: 1.0.0, digest: *d, urls: *u}\n  - *e\n"
    )
    assert read(text, "app") == {"app": [IndexEntry("1.0.0", DIGEST, ("a.tgz",))] * 3}


def test_merge_keys_in_entries_apply_with_explicit_keys_then_earlier_merges_winning() -> None:
    # The YAML merge-key rule, as Helm's Go YAML applies it (PyYAML 6.0's precedence depends on string identity).
    text = (
        "base: &b {version: 1.0.0, urls: [base.tgz], digest: " + DIGEST + "}\n"
        "other: &o {version: 2.0.0, urls: [other.tgz]}\n"
        "entries:\n  app:\n  - {<<: [*o, *b], urls: [own.tgz]}\n"
    )
    assert read(text, "app") == {"app": [IndexEntry("2.0.0", DIGEST, ("own.tgz",))]}


def test_an_alias_standing_for_a_whole_chart_list_is_refused() -> None:
    text = "entries:\n  old: &list\n  - {version: 1.0.0}\n  app: *list\n"
    with pytest.raises(InvalidDocumentError, match=r"alias \(\*list\)"):
        read(text, "app")


def test_an_undefined_alias_is_refused_as_invalid_yaml() -> None:
    with pytest.raises(InvalidDocumentError, match="undefined alias"):
        read("entries:\n  app:\n  - {version: *nowhere}\n", "app")


def test_an_alias_bomb_is_read_without_expansion() -> None:
    bomb = 'a: &a ["x","x","x","x","x","x","x","x","x"]\n'
    for level in "bcdefghij":
        previous = chr(ord(level) - 1)
        bomb += f"{level}: &{level} [*{previous},*{previous},*{previous},*{previous},*{previous},*{previous}]\n"
    text = "bombs:\n" + "".join(f"  {line}\n" for line in bomb.splitlines())
    text += "entries:\n  app:\n  - {version: 1.0.0, urls: *j}\n  - {version: 2.0.0, urls: *j}\n"
    entries = read(text, "app", max_index_yaml_nodes=200)["app"]
    assert entries is not None
    assert [(e.version, repr(e.urls)) for e in entries] == [("1.0.0", "(<a sequence>,)"), ("2.0.0", "(<a sequence>,)")]


def test_more_nodes_than_the_budget_is_refused_naming_the_limit() -> None:
    text = "entries:\n  other: [" + ", ".join(["x"] * 200) + "]\n"
    with pytest.raises(UsageError, match="max_index_yaml_nodes"):
        read(text, "app", max_index_yaml_nodes=100)


def test_more_versions_of_one_chart_than_the_limit_is_refused_naming_it() -> None:
    text = "entries:\n  app:\n" + "".join(f"  - {{version: 1.0.{i}}}\n" for i in range(11))
    with pytest.raises(UsageError, match=r"chart app lists more than 10 versions.*max_index_chart_versions"):
        read(text, "app", max_index_chart_versions=10)


@pytest.mark.parametrize(
    "text",
    ["entries: [", "entries: {}\n---\nentries: {}\n", "- a\n- b\n", "apiVersion: v1\n", "entries: ~\n", ""],
)
def test_what_is_no_single_index_document_is_refused(text: str) -> None:
    with pytest.raises(InvalidDocumentError):
        read(text, "app")


def test_same_entries_as_yaml_load_on_a_generated_index() -> None:
    entries = {
        f"c{i}": [{"version": f"{i}.{j}.0", "digest": DIGEST, "urls": [f"c{i}-{j}.tgz"]} for j in range(5)]
        for i in range(20)
    }
    text = yaml.safe_dump({"apiVersion": "v1", "entries": entries})
    got = read(text, *entries)
    assert got == {
        name: [IndexEntry(e["version"], e["digest"], (e["urls"][0],)) for e in listed]
        for name, listed in entries.items()
    }


@pytest.mark.parametrize(
    "version",
    [
        pytest.param("1" + "0" * 5000, id="integer-of-5001-digits"),
        pytest.param("2026-02-30", id="impossible-date"),
        pytest.param("!!timestamp abc", id="timestamp-tag-on-text"),
        pytest.param("!!int abc", id="int-tag-on-text"),
    ],
)
def test_a_kept_value_that_cannot_be_built_is_refused_as_invalid_yaml_with_its_line(version: str) -> None:
    with pytest.raises(InvalidDocumentError, match=r"repo/index\.yaml: not valid YAML: .*line 3") as caught:
        read(f"entries:\n  app:\n  - version: {version}\n    urls: [a.tgz]\n", "app")
    assert caught.value.exit_code == 3
