"""The one escaping function for text that reaches a terminal or a log line from an untrusted source.

`escape` is for text lines; `escape_json` keeps JSON text valid JSON with the same value, only with the
characters json.dumps leaves raw (with ensure_ascii=False) written as \\u escapes.
"""

from __future__ import annotations

import functools
import re

# C0 and C1 controls, DEL, line and paragraph separators: each can move the cursor, repaint the screen or start
# a fake line. Every format character (Unicode category Cf): the bidirectional overrides, isolates and marks
# (U+061C, U+200E/F) reorder what the reader sees; zero-width spaces and joiners, the word joiner, the byte-order
# mark, the soft hyphen and tag characters hide text or make two names look alike. And surrogates: a name that
# is not UTF-8 (a file name, say) carries its bytes as U+DC80..U+DCFF, which print as the raw bytes (0x9b is CSI
# on a terminal that takes 8-bit controls) or fail to print at all.
# _FORMAT is Cf as of Unicode 15 (tests/unit/test_terminal_escape.py checks it against the running Python).
_FORMAT = (
    "\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064"
    "\u2066-\u206f\ufeff\ufff9-\ufffb\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3"
    "\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f"
)
# Compiled when first used (a few ms: every command imports this module, a quiet one may print nothing).
_UNSAFE = f"[\\x00-\\x1f\\x7f-\\x9f\\u2028\\u2029{_FORMAT}\\ud800-\\udfff]"
# The same set less C0, which json.dumps always escapes (and whose \n may separate indented JSON's tokens).
_UNSAFE_IN_JSON = f"[\\x7f-\\x9f\\u2028\\u2029{_FORMAT}\\ud800-\\udfff]"


@functools.cache
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def escape(value: object) -> str:
    """`value` as text with every unsafe character shown as a visible \\x.., \\u.... or \\U........ escape."""
    return _compiled(_UNSAFE).sub(_visible, str(value))


def escape_json(text: str) -> str:
    """JSON text from json.dumps, with DEL, C1, separators, format characters and surrogates as \\u escapes.

    Such characters can only occur inside JSON strings, where \\uXXXX denotes the very same character.
    """
    return _compiled(_UNSAFE_IN_JSON).sub(_json_escape, text)


def _json_escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code > 0xFFFF:  # JSON spells a character beyond the BMP as its UTF-16 surrogate pair
        code -= 0x10000
        return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"
    return f"\\u{code:04x}"


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8, shown as that byte
        return f"\\x{code - 0xDC00:02x}"
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"
