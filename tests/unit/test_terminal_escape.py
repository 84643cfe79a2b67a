"""`escape` shows every invisible format character (Unicode category Cf) as a visible escape: the Arabic letter
mark, zero-width spaces and joiners, the word joiner, the byte-order mark, the soft hyphen and tag characters
can hide or disguise text on a terminal as the bidi controls can."""

from __future__ import annotations

import json
import sys
import unicodedata

import pytest

from mirror.terminal import escape, escape_json


def format_characters() -> list[str]:
    return [chr(c) for c in range(sys.maxunicode + 1) if unicodedata.category(chr(c)) == "Cf"]


@pytest.mark.parametrize(
    ("character", "shown"),
    [
        pytest.param("\u061c", "\\u061c", id="arabic-letter-mark"),
        pytest.param("\u200b", "\\u200b", id="zero-width-space"),
        pytest.param("\u200d", "\\u200d", id="zero-width-joiner"),
        pytest.param("\u2060", "\\u2060", id="word-joiner"),
        pytest.param("\ufeff", "\\ufeff", id="byte-order-mark"),
        pytest.param("\u00ad", "\\xad", id="soft-hyphen"),
    ],
)
def test_escape_shows_a_format_character_as_a_visible_escape(character: str, shown: str) -> None:
    assert escape(f"ab{character}c") == f"ab{shown}c"


def test_escape_shows_a_tag_character_as_a_visible_escape() -> None:
    assert escape("flag\U000e0041") == "flag\\U000e0041"


def test_escape_leaves_no_format_character_this_python_knows() -> None:
    shown = escape("".join(format_characters()))
    assert not [ch for ch in shown if unicodedata.category(ch) == "Cf"]


def test_escape_json_writes_every_format_character_as_an_escape_of_the_same_value() -> None:
    text = "x" + "".join(format_characters()) + "y"
    line = escape_json(json.dumps({"m": text}, ensure_ascii=False))
    assert not [ch for ch in line if unicodedata.category(ch) == "Cf"]
    assert json.loads(line) == {"m": text}
