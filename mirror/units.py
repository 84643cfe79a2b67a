"""Sizes as operators write them on the command line: `700M`, `4G`, `4.7GB`, `512K`, or plain bytes.

A single-letter unit is binary, as in GNU `split -b` and `du`: `700M` is 700 MiB. Spelled with a B it is
decimal, as media are labelled: `4.7GB` is 4,700,000,000 bytes. `KiB`, `MiB`, `GiB` and `TiB` are binary too.
"""

from __future__ import annotations

import re

from mirror.errors import UsageError

_SIZE = re.compile(r"(?P<number>[0-9]+(?:\.[0-9]+)?)\s*(?P<unit>[A-Za-z]*)")
_UNITS = {
    "": 1,
    "b": 1,
    "k": 1024,
    "m": 1024**2,
    "g": 1024**3,
    "t": 1024**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
}


def parse_size(text: str, flag: str, *, minimum: int = 1) -> int:
    """Bytes meant by `text`, at least `minimum`; a UsageError naming `flag` otherwise.

    A fraction is allowed with a unit (`4.7GB`) and rounded down to whole bytes.
    """
    hint = "write a number of bytes with an optional unit: 512K, 700M, 4G (binary) or 4.7GB (decimal)"
    match = _SIZE.fullmatch(text.strip())
    unit = match.group("unit").lower() if match else ""
    if match is None or unit not in _UNITS:
        raise UsageError(f"{flag} {text!r}: not a size", hint=hint)
    number = match.group("number")
    whole, _, fraction = number.partition(".")
    scale = _UNITS[unit]
    size = int(whole) * scale + (int(fraction) * scale) // 10 ** len(fraction) if fraction else int(whole) * scale
    if fraction and scale == 1:
        raise UsageError(f"{flag} {text!r}: a number of bytes cannot have a fraction", hint=hint)
    if size < minimum:
        raise UsageError(f"{flag} {text!r}: {size} bytes is less than the minimum of {minimum} bytes", hint=hint)
    return size
