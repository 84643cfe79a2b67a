"""JSON from elsewhere is refused past a nesting limit before json.loads (which would exhaust its recursion)."""

from __future__ import annotations

import json
import time

import pytest

from mirror.errors import InvalidDocumentError
from mirror.oci.document import JsonTooDeepError, bounded_json, json_nesting_depth, parse_manifest, strict_json


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def test_a_hundred_thousand_deep_array_is_refused_in_well_under_a_second():
    started = time.monotonic()
    with pytest.raises(InvalidDocumentError) as caught:
        strict_json(nested(100_000), "inventory.json")
    assert time.monotonic() - started < 1
    assert caught.value.exit_code == 3
    assert "inventory.json" in caught.value.message and "nested" in caught.value.message


def test_nesting_exactly_at_the_limit_is_read():
    assert strict_json(nested(10), "x.json", max_depth=10) == json.loads(nested(10))


def test_nesting_one_past_the_limit_is_refused():
    with pytest.raises(InvalidDocumentError, match="more than the 10 allowed"):
        strict_json(nested(11), "x.json", max_depth=10)


@pytest.mark.parametrize(
    ("document", "depth"),
    [
        ({"a": "[[[[{{", "b": [1, {"c": []}]}, 4),
        ({"a": 'quote " and [[[', "b": ["]]]]"]}, 2),
        ({"a": "\\", "b": [[['\\"[[[']]]}, 4),
        ({'k"[': "[\\\\"}, 1),
        (["[", "]", ["{"]], 2),
        ("just a string [", 0),
    ],
    ids=["brackets-in-strings", "escaped-quote", "escaped-backslashes", "escaped-keys", "adjacent-strings", "scalar"],
)
def test_brackets_inside_strings_do_not_count(document, depth):
    assert json_nesting_depth(json.dumps(document).encode()) == depth


def test_a_deep_registry_answer_is_a_value_error_as_other_unreadable_json_is():
    with pytest.raises(ValueError):
        bounded_json(nested(100_000))
    with pytest.raises(JsonTooDeepError):
        bounded_json(b'{"tags": ' + nested(300) + b"}", max_depth=200)


def test_a_deep_manifest_is_an_invalid_document():
    body = b'{"schemaVersion": 2, "annotations": {"x": ' + nested(1000) + b"}}"
    with pytest.raises(InvalidDocumentError, match="nested"):
        parse_manifest(body, declared_type=None, where="manifest")
