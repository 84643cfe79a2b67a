"""Platforms: parsing `os/architecture[/variant]` and matching index entries against a filter."""

from __future__ import annotations

import pytest

from mirror.errors import UsageError
from mirror.oci.platform import Platform, parse_platform, platform_of_descriptor


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("linux/amd64", Platform("linux", "amd64"), id="os-arch"),
        pytest.param("linux/arm64/v8", Platform("linux", "arm64", "v8"), id="os-arch-variant"),
        pytest.param("linux/arm/v7", Platform("linux", "arm", "v7"), id="arm-v7"),
        pytest.param("windows/amd64", Platform("windows", "amd64"), id="windows"),
        pytest.param("linux/ppc64le", Platform("linux", "ppc64le"), id="digits-in-arch"),
    ],
)
def test_platform_parses(text, expected):
    assert parse_platform(text) == expected


@pytest.mark.parametrize("text", ["linux/amd64", "linux/arm/v7"])
def test_platform_prints_as_parsed(text):
    assert str(parse_platform(text)) == text


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("linux", id="no-architecture"),
        pytest.param("linux/", id="empty-architecture"),
        pytest.param("/amd64", id="empty-os"),
        pytest.param("linux/arm/", id="empty-variant"),
        pytest.param("linux/arm64/v8/extra", id="four-parts"),
        pytest.param("", id="empty"),
        pytest.param("linux/amd64 ", id="trailing-space"),
        pytest.param("linux amd64", id="space-separator"),
        pytest.param("linux/amd*", id="glob-character"),
        pytest.param(None, id="not-a-string-none"),
        pytest.param(["linux", "amd64"], id="not-a-string-list"),
    ],
)
def test_invalid_platform_is_refused(text):
    with pytest.raises(UsageError, match="os/architecture") as caught:
        parse_platform(text)
    assert caught.value.exit_code == 2


@pytest.mark.parametrize(
    ("wanted", "offered"),
    [
        pytest.param("linux/amd64", "linux/amd64", id="same-os-arch"),
        pytest.param("linux/arm", "linux/arm/v7", id="filter-without-variant-takes-v7"),
        pytest.param("linux/arm", "linux/arm/v6", id="filter-without-variant-takes-v6"),
        pytest.param("linux/arm/v7", "linux/arm/v7", id="same-variant"),
        pytest.param("linux/arm64/v8", "linux/arm64", id="arm64-variant-defaults-to-v8"),
        pytest.param("linux/arm64", "linux/arm64/v8", id="arm64-filter-without-variant-takes-v8"),
        pytest.param("linux/arm64/v8", "linux/arm64/v8", id="arm64-explicit-v8"),
    ],
)
def test_filter_matches(wanted, offered):
    assert parse_platform(wanted).matches(parse_platform(offered))


@pytest.mark.parametrize(
    ("wanted", "offered"),
    [
        pytest.param("linux/amd64", "linux/arm64", id="other-architecture"),
        pytest.param("linux/amd64", "windows/amd64", id="other-os"),
        pytest.param("linux/arm/v7", "linux/arm/v6", id="other-variant"),
        pytest.param("linux/arm/v7", "linux/arm64/v7", id="variant-on-other-architecture"),
        pytest.param("linux/arm64/v9", "linux/arm64", id="arm64-default-is-v8-not-v9"),
        pytest.param("linux/arm64/v8", "linux/arm64/v9", id="arm64-v8-filter-refuses-v9"),
        pytest.param("linux/amd64/v3", "linux/amd64", id="default-v8-applies-only-to-arm64"),
    ],
)
def test_filter_does_not_match(wanted, offered):
    assert not parse_platform(wanted).matches(parse_platform(offered))


def test_descriptor_platform_is_read():
    assert platform_of_descriptor({"os": "linux", "architecture": "arm", "variant": "v7"}) == Platform(
        "linux", "arm", "v7"
    )


def test_descriptor_platform_empty_variant_is_none():
    assert platform_of_descriptor({"os": "linux", "architecture": "arm64", "variant": ""}) == Platform("linux", "arm64")


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(None, id="absent"),
        pytest.param("linux/amd64", id="string-not-object"),
        pytest.param({"os": "linux"}, id="no-architecture"),
        pytest.param({"architecture": "amd64"}, id="no-os"),
        pytest.param({"os": "linux", "architecture": 64}, id="architecture-not-string"),
    ],
)
def test_descriptor_without_usable_platform_gives_none(value):
    assert platform_of_descriptor(value) is None


def test_arm_filter_with_variant_matches_an_entry_without_one():
    # A bare "arm" in an index means v7, as containerd reads it.
    assert parse_platform("linux/arm/v7").matches(Platform("linux", "arm"))
