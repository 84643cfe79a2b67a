"""Image tag selectors (`tags: {semver, regex, latest}`): every filter given applies, then `latest` keeps the N
highest versions; tags are read as Flux reads them (a `v` prefix accepted); the regex is RE2, searched."""

from __future__ import annotations

from dataclasses import replace

import pytest

from mirror.errors import UsageError
from mirror.limits import DEFAULT_LIMITS
from mirror.manifest.tagselect import TagSelector, parse_tag_selector, select_tags

TAGS = ["1.0.0", "v1.2.0", "1.2.1", "1.3.0-rc.1", "1.10.0", "2.0.0", "latest", "main-abc123", "1.2", "v1.9.9"]


def chosen(selector: TagSelector, tags: list[str] = TAGS) -> list[str]:
    return list(select_tags(tags, selector).tags)


def test_semver_keeps_every_tag_in_the_range_highest_first() -> None:
    assert chosen(TagSelector(semver=">=1.2 <2")) == ["1.10.0", "v1.9.9", "1.2.1", "v1.2.0"]


def test_semver_accepts_a_v_prefix_as_flux_does() -> None:
    assert "v1.2.0" in chosen(TagSelector(semver="~1.2"))


def test_semver_leaves_prereleases_out_unless_the_constraint_names_one() -> None:
    assert "1.3.0-rc.1" not in chosen(TagSelector(semver=">=1.2"))
    assert "1.3.0-rc.1" in chosen(TagSelector(semver=">=1.3.0-0"))


def test_tags_with_fewer_than_three_parts_are_not_versions() -> None:
    assert "1.2" not in chosen(TagSelector(semver="*"))


def test_regex_is_searched_anywhere_in_the_tag() -> None:
    assert chosen(TagSelector(regex="abc")) == ["main-abc123"]


def test_regex_alone_keeps_tags_that_are_not_versions_after_the_versions() -> None:
    assert chosen(TagSelector(regex="^(latest|2\\.)")) == ["2.0.0", "latest"]


def test_latest_keeps_the_n_highest_versions() -> None:
    assert chosen(TagSelector(latest=2)) == ["2.0.0", "1.10.0"]


def test_latest_without_semver_leaves_prereleases_and_non_versions_out() -> None:
    assert chosen(TagSelector(latest=100)) == ["2.0.0", "1.10.0", "v1.9.9", "1.2.1", "v1.2.0", "1.0.0"]


def test_all_filters_apply_before_latest() -> None:
    assert chosen(TagSelector(semver="<2", regex="^v", latest=1)) == ["v1.9.9"]


def test_nothing_matching_is_an_empty_selection_naming_the_newest_tags_seen() -> None:
    selection = select_tags(TAGS, TagSelector(semver=">=3"))
    assert selection.tags == ()
    assert selection.describe_seen().startswith("version tags seen, newest first: 2.0.0, 1.10.0")


def test_tags_that_break_the_tag_grammar_are_never_chosen() -> None:
    assert chosen(TagSelector(regex="."), ["1.0.0", "../x", "a" * 200, ".hidden"]) == ["1.0.0"]


def test_a_tag_listed_twice_is_chosen_once() -> None:
    assert chosen(TagSelector(semver="*"), ["1.0.0", "1.0.0"]) == ["1.0.0"]


def test_more_tags_chosen_than_the_limit_are_refused_naming_it() -> None:
    limits = replace(DEFAULT_LIMITS, max_selected_tags=3)
    with pytest.raises(UsageError, match="max_selected_tags"):
        select_tags([f"1.0.{i}" for i in range(10)], TagSelector(semver="*"), limits)


def test_latest_bounds_the_choice_within_the_limit() -> None:
    limits = replace(DEFAULT_LIMITS, max_selected_tags=3)
    selection = select_tags([f"1.0.{i}" for i in range(10)], TagSelector(latest=3), limits)
    assert selection.tags == ("1.0.9", "1.0.8", "1.0.7")


def test_a_selection_streams_over_many_tags() -> None:
    tags = (f"1.{i // 100}.{i % 100}" for i in range(1200))
    assert select_tags(tags, TagSelector(semver="~1.11", latest=3)).tags == ("1.11.99", "1.11.98", "1.11.97")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({}, "at least one of semver, regex or latest"),
        ({"semvr": "1"}, "tags.semvr: unknown field"),
        ({"semver": 1.2}, "read as a number"),
        ({"semver": ">>1"}, "tags.semver: invalid version constraint"),
        ({"regex": "(a"}, "tags.regex: .* is not valid RE2 syntax"),
        ({"regex": "(a)\\1"}, "not valid RE2 syntax"),
        ({"regex": "a" * 257}, "max_tag_regex_chars"),
        ({"latest": 0}, "tags.latest: expected a whole number from 1 to 1000"),
        ({"latest": True}, "tags.latest"),
        ({"latest": 1001}, "tags.latest"),
        ("1.2", "expected a mapping"),
    ],
)
def test_an_invalid_selector_is_refused_naming_the_field(value: object, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_tag_selector(value, "tags")


def test_a_selector_records_itself_as_written() -> None:
    selector = parse_tag_selector({"semver": ">=1.2 <2", "latest": 3}, "tags")
    assert selector.to_json() == {"semver": ">=1.2 <2", "latest": 3}
