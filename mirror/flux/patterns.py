"""Regular expressions that fleets write (patch targets, OCIRepository semverFilter), run the way Flux runs them.

Flux and kustomize evaluate them with Go's regexp package, which is RE2: linear time in the input, no
backreferences or lookaround. Python's `re` backtracks, so an upstream pattern such as `(a+)+$` against a long
tag would spin for minutes; these patterns go through the RE2 binding instead, and a pattern RE2 cannot compile is
refused, naming the object, as Flux would refuse it.
"""

from __future__ import annotations

from typing import Any

import re2

from mirror.errors import UsageError

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # RE2 would print its own error line on stderr; ours names the object instead


def compile_upstream(pattern: str, where: str) -> Any:
    """`pattern` compiled by RE2; a pattern RE2 cannot compile is a UsageError naming `where`."""
    try:
        return re2.compile(pattern, _OPTIONS)
    except re2.error as exc:
        reason = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise UsageError(
            f"{where}: regular expression {pattern!r} is not valid RE2 syntax: {reason}",
            hint="Flux evaluates these with Go's RE2 (no backreferences or lookaround); fix the object upstream",
        ) from exc


def literal(text: str) -> str:
    """A pattern that matches exactly `text`."""
    return str(re2.escape(text))
