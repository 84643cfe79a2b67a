"""The one piece of TOML writing mirror needs: a basic string (Python's standard library reads TOML, tomllib,
but has no writer, and the files written are small and fixed in shape, so they are written by hand with every
value passed through here; the tests read each file back with tomllib)."""

from __future__ import annotations

_SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def toml_string(text: str) -> str:
    """`text` as a TOML basic string: quotes and backslashes escaped, every control character (which TOML does
    not allow raw) written as an escape, everything else as it is (TOML files are UTF-8)."""
    out = ['"']
    for char in text:
        code = ord(char)
        if char in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[char])
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\u{code:04X}")
        elif 0xD800 <= code <= 0xDFFF:
            raise ValueError("a lone surrogate is not text TOML can hold")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)
