"""Sizes on the command line: single-letter units are binary, units spelled with B are decimal."""

from __future__ import annotations

import pytest

from mirror.errors import UsageError
from mirror.units import parse_size


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("4096", 4096),
        ("4096B", 4096),
        ("512K", 512 * 1024),
        ("512k", 512 * 1024),
        ("700M", 700 * 1024**2),
        ("4G", 4 * 1024**3),
        ("1T", 1024**4),
        ("700MiB", 700 * 1024**2),
        ("4GiB", 4 * 1024**3),
        ("700MB", 700_000_000),
        ("4.7GB", 4_700_000_000),
        ("1.5K", 1536),
        (" 2M ", 2 * 1024**2),
    ],
)
def test_sizes_parse_to_bytes(text: str, size: int) -> None:
    assert parse_size(text, "--split-size") == size


@pytest.mark.parametrize("text", ["", "abc", "-1M", "1X", "M", "1.5.2G", "1,5G", "4 G B", "0x10"])
def test_nonsense_is_refused_naming_the_flag(text: str) -> None:
    with pytest.raises(UsageError, match="--split-size") as caught:
        parse_size(text, "--split-size")
    assert caught.value.exit_code == 2


def test_a_fraction_of_a_byte_is_refused() -> None:
    with pytest.raises(UsageError, match="fraction"):
        parse_size("10.5", "--split-size")


def test_a_size_below_the_minimum_is_refused() -> None:
    with pytest.raises(UsageError, match="less than the minimum of 512"):
        parse_size("511", "--split-size", minimum=512)
    assert parse_size("512", "--split-size", minimum=512) == 512


def test_zero_is_refused() -> None:
    with pytest.raises(UsageError, match="--split-size"):
        parse_size("0M", "--split-size")
