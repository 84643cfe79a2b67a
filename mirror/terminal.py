"""The one escaping function for text that reaches a terminal or a log line from an untrusted source.

`escape` is for text lines; `escape_json` keeps JSON text valid JSON with the same value, only with the
characters json.dumps leaves raw (with ensure_ascii=False) written as \\u escapes.
"""

from __future__ import annotations

import re

# C0 and C1 controls, DEL, line and paragraph separators, and the bidirectional overrides and isolates: each can
# move the cursor, repaint the screen, start a fake line or reorder what the reader sees. And surrogates: a name
# that is not UTF-8 (a file name, say) carries its bytes as U+DC80..U+DCFF, which print as the raw bytes (0x9b
# is CSI on a terminal that takes 8-bit controls) or fail to print at all.
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
# The same set less C0, which json.dumps always escapes (and whose \n may separate indented JSON's tokens).
_UNSAFE_IN_JSON = re.compile(r"[\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def escape(value: object) -> str:
    """`value` as text with every unsafe character shown as a visible \\x.. or \\u.... escape."""
    return _UNSAFE.sub(_visible, str(value))


def escape_json(text: str) -> str:
    """JSON text from json.dumps, with DEL, C1, separators, bidi controls and surrogates as \\u escapes.

    Such characters can only occur inside JSON strings, where \\uXXXX denotes the very same character.
    """
    return _UNSAFE_IN_JSON.sub(lambda match: f"\\u{ord(match.group()):04x}", text)


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8, shown as that byte
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
