"""Chart version selection exactly as Helm makes it: the rules of Masterminds/semver v3, re-implemented by hand
because no Python library agrees with it where it matters. See docs/collector.md ("Helm charts", versions).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache

from mirror.errors import UsageError
from mirror.limits import DEFAULT_LIMITS

__all__ = ["Constraint", "InvalidConstraint", "InvalidVersion", "Version", "select_version"]

_UINT64_MAX = (1 << 64) - 1
_UINT64_DIGITS = len(str(_UINT64_MAX))  # 20: a number written with more significant digits is beyond 64 bits
_CACHE_SIZE = 1 << 16

# The patterns below accept the same texts, and pick the same matches, as Masterminds' Go expressions. Runs
# use possessive quantifiers (`*+`, `++`), which change nothing here (no token can end inside a run of its
# own characters) but spare Python's backtracking engine; constraint length is capped (max_constraint_chars), as
# the unanchored searches can still take time quadratic in the length of one run, where Go's RE2 is linear.
# Go's `\s` is ASCII-only; Python's would also accept e.g. NBSP and vertical tab, which Helm rejects.
_WS = "[ \\t\\n\\f\\r]"
_IDENT = "[0-9A-Za-z-]++"
_IDENTS = f"{_IDENT}(?:\\.{_IDENT})*+"

# A version as Helm reads chart versions (loose) and as the OCI tag list is filtered (strict).
_LOOSE_VERSION = re.compile(
    f"v?(?P<major>[0-9]++)(?:\\.(?P<minor>[0-9]++))?(?:\\.(?P<patch>[0-9]++))?"
    f"(?:-(?P<pre>{_IDENTS}))?(?:\\+(?P<meta>{_IDENTS}))?"
)
_NUMBER = "(?:0|[1-9][0-9]*+)"
_STRICT_VERSION = re.compile(
    f"(?P<major>{_NUMBER})\\.(?P<minor>{_NUMBER})\\.(?P<patch>{_NUMBER})"
    f"(?:-(?P<pre>{_IDENTS}))?(?:\\+(?P<meta>{_IDENTS}))?"
)

# The version operand of a comparison. A part may hold digits, a wildcard, or (as Masterminds' grammar
# allows) `|`; anything but digits or a lone wildcard is rejected later when the bound is built.
_PART = "[0-9xX*|]++"
_OPERAND = f"v?{_PART}(?:\\.{_PART}){{0,2}}(?:-{_IDENTS})?(?:\\+{_IDENTS})?"
_OPERAND_PARTS = re.compile(
    f"v?(?P<major>{_PART})(?:\\.(?P<minor>{_PART}))?(?:\\.(?P<patch>{_PART}))?(?:-(?P<pre>{_IDENTS}))?(?:\\+{_IDENTS})?"
)
_OPERATOR = "(?:!=|>=|=>|<=|=<|~>|[=<>~^])"
_COMPARISON = f"(?:{_OPERATOR}{_WS}*+)?{_OPERAND}"
# One `||` alternative: comparisons separated by whitespace or a comma, optionally padded.
_ALTERNATIVE = re.compile(f"{_WS}*+{_COMPARISON}(?:(?:{_WS}*+,{_WS}*+|{_WS}++){_COMPARISON})*+{_WS}*+")
# The comparisons of a valid alternative, one by one (leading spaces included, as Go's FindAllString has them).
_FIND_COMPARISON = re.compile(f"(?P<op>{_OPERATOR})?{_WS}*+(?P<operand>{_OPERAND})")
# `A - B` with the spaces around it; a space before it goes too (Go rewrites `>1 2 - 3` as `>1>= 2, <= 3 `).
_HYPHEN_RANGE = re.compile(f"{_WS}*+(?P<low>{_OPERAND}){_WS}++-{_WS}++(?P<high>{_OPERAND}){_WS}*+")

_WILDCARDS = frozenset({"x", "X", "*"})
# Operator as written -> the comparison it performs (aliases: none/`=`, `=>`, `=<`, `~>`).
_CANONICAL_OP = {"": "=", "=": "=", "!=": "!=", ">": ">", "<": "<", ">=": ">=", "=>": ">=", "<=": "<="}
_CANONICAL_OP |= {"=<": "<=", "~": "~", "~>": "~", "^": "^"}

# How much of an operand is a wildcard: none (1.2.3), the patch (1.2, 1.2.x), minor and patch (1, 1.x),
# or everything (*, x).
_EXACT, _ANY_PATCH, _ANY_MINOR, _ANY = 0, 1, 2, 3

_CONSTRAINT_HINT = 'write e.g. 1.2.3, ">=1.2.0 <2.0.0", ~1.2, ^1.2, 1.2.x or "1.2 - 1.4.5"; join alternatives with "||"'


class InvalidVersion(ValueError):
    """A string that Helm does not accept as a chart version."""


class InvalidConstraint(UsageError):
    """A version constraint that Helm would refuse; the message quotes it."""

    def __init__(self, constraint: str, problem: str) -> None:
        super().__init__(f'invalid version constraint "{constraint}": {problem}', hint=_CONSTRAINT_HINT)
        self.constraint = constraint
        self.problem = problem


PrereleaseIdentifier = int | str


@dataclass(frozen=True, eq=False, slots=True)
class Version:
    """A parsed version. Ordering and `==` follow semver precedence (metadata ignored); `original` is the text."""

    major: int
    minor: int
    patch: int
    prerelease: tuple[PrereleaseIdentifier, ...] = ()
    metadata: str = ""
    original: str = ""
    _key: tuple[object, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.prerelease:
            # Numeric identifiers sort before alphanumeric ones; a shorter list of equal identifiers first.
            ids = tuple((0, i, "") if isinstance(i, int) else (1, 0, i) for i in self.prerelease)
            key: tuple[object, ...] = (self.major, self.minor, self.patch, 0, ids)
        else:
            key = (self.major, self.minor, self.patch, 1, ())
        object.__setattr__(self, "_key", key)

    @classmethod
    def parse(cls, text: str, *, strict: bool = False) -> Version:
        """Masterminds' NewVersion (loose, what Helm applies to chart versions) or, if strict, StrictNewVersion."""
        parsed = _parse_strict(text) if strict else _parse_loose(text)
        if isinstance(parsed, str):
            raise InvalidVersion(parsed)
        return parsed

    @property
    def is_prerelease(self) -> bool:
        return bool(self.prerelease)

    def __str__(self) -> str:
        text = f"{self.major}.{self.minor}.{self.patch}"
        if self.prerelease:
            text += "-" + ".".join(str(i) for i in self.prerelease)
        if self.metadata:
            text += "+" + self.metadata
        return text

    def __eq__(self, other: object) -> bool:
        return self._key == other._key if isinstance(other, Version) else NotImplemented

    def __hash__(self) -> int:
        return hash(self._key)

    def __lt__(self, other: Version) -> bool:
        return self._key < other._key if isinstance(other, Version) else NotImplemented

    def __le__(self, other: Version) -> bool:
        return self._key <= other._key if isinstance(other, Version) else NotImplemented

    def __gt__(self, other: Version) -> bool:
        return self._key > other._key if isinstance(other, Version) else NotImplemented

    def __ge__(self, other: Version) -> bool:
        return self._key >= other._key if isinstance(other, Version) else NotImplemented


def _number(digits: str) -> int | None:
    """The value of `digits`, or None past 20 significant digits (beyond 64 bits): int() of thousands of digits
    raises ValueError (Python's limit on int from text), and would cost quadratic time below that limit."""
    significant = digits.lstrip("0")
    return int(significant or "0") if len(significant) <= _UINT64_DIGITS else None


def _build_version(text: str, match: re.Match[str]) -> Version | str:
    numbers = []
    for part in ("major", "minor", "patch"):
        digits = match[part]
        value = _number(digits) if digits else 0
        if value is None or value > _UINT64_MAX:
            return f'"{text}": the {part} number does not fit in 64 bits'
        numbers.append(value)
    prerelease: list[PrereleaseIdentifier] = []
    if match["pre"]:
        for ident in match["pre"].split("."):
            if not ident.isdigit():
                prerelease.append(ident)
            elif len(ident) > 1 and ident[0] == "0":
                return f'"{text}": numeric prerelease identifier "{ident}" has a leading zero'
            else:
                # Like Masterminds, a number too large for 64 bits compares as text.
                number = _number(ident)
                prerelease.append(number if number is not None and number <= _UINT64_MAX else ident)
    return Version(numbers[0], numbers[1], numbers[2], tuple(prerelease), match["meta"] or "", text)


@lru_cache(maxsize=_CACHE_SIZE)
def _parse_loose(text: str) -> Version | str:
    """A Version, or the reason it is not one (cached either way: indexes repeat the same strings)."""
    match = _LOOSE_VERSION.fullmatch(text)
    if match is None:
        return f'"{text}" is not a semantic version'
    return _build_version(text, match)


@lru_cache(maxsize=_CACHE_SIZE)
def _parse_strict(text: str) -> Version | str:
    match = _STRICT_VERSION.fullmatch(text)
    if match is None:
        return f'"{text}" is not a strict semantic version (MAJOR.MINOR.PATCH, no "v", no leading zeros)'
    return _build_version(text, match)


@dataclass(frozen=True, slots=True)
class _Comparison:
    """One comparison: the operator as written, the operand as written, its lower bound and wildcard level."""

    spelled: str
    operand: str
    op: str
    bound: Version
    wildcard: int

    def __str__(self) -> str:
        return self.spelled + self.operand

    def allows(self, v: Version) -> bool:
        """Whether `v` passes, prereleases aside (those are decided for the whole alternative)."""
        b, wild, op = self.bound, self.wildcard, self.op
        if op == "=":
            return self._tilde(v) if wild != _EXACT else v == b
        if op == ">=":
            return v >= b
        if op == "<":
            return v < b
        if op == ">":
            if wild == _ANY_MINOR:
                return v.major > b.major
            if wild == _ANY_PATCH:
                return v.major > b.major or (v.major == b.major and v.minor > b.minor)
            return v > b
        if op == "<=":
            if wild == _EXACT:
                return v <= b
            if v.major != b.major:
                return v.major < b.major
            return wild == _ANY_MINOR or v.minor <= b.minor
        if op == "!=":
            if wild == _ANY_MINOR:
                return v.major != b.major
            if wild == _ANY_PATCH:
                return (v.major, v.minor) != (b.major, b.minor) or v.prerelease != b.prerelease
            return v != b
        if op == "~":
            return self._tilde(v)
        return self._caret(v)

    def _tilde(self, v: Version) -> bool:
        b = self.bound
        if v < b:
            return False
        if (b.major, b.minor, b.patch) == (0, 0, 0) and self.wildcard in (_EXACT, _ANY):
            return True  # `~0.0.0` and `~*` accept everything from 0.0.0 on
        if v.major != b.major:
            return False
        return self.wildcard == _ANY_MINOR or v.minor == b.minor

    def _caret(self, v: Version) -> bool:
        b = self.bound
        if v < b:
            return False
        if b.major > 0 or self.wildcard == _ANY_MINOR:
            return v.major == b.major
        if v.major > 0:
            return False
        if b.minor > 0 or self.wildcard == _ANY_PATCH:
            return v.minor == b.minor
        return v.minor == 0 and v.patch == b.patch


@dataclass(frozen=True, slots=True)
class _Alternative:
    comparisons: tuple[_Comparison, ...]
    prereleases: bool  # some comparison carries a prerelease, so prerelease versions are considered

    def allows(self, v: Version) -> bool:
        if v.prerelease and not self.prereleases:
            return False
        return all(c.allows(v) for c in self.comparisons)

    def __str__(self) -> str:
        return " ".join(str(c) for c in self.comparisons)


@dataclass(frozen=True, slots=True)
class Constraint:
    """A parsed constraint; `text` is what was written, `str()` the normalised form Masterminds prints."""

    text: str
    alternatives: tuple[_Alternative, ...]

    @classmethod
    def parse(cls, text: str) -> Constraint:
        return _parse_constraint(text)

    def allows(self, version: Version) -> bool:
        return any(a.allows(version) for a in self.alternatives)

    def __str__(self) -> str:
        return " || ".join(str(a) for a in self.alternatives)


def _comparison(constraint: str, spelled: str, operand: str) -> _Comparison:
    parts = _OPERAND_PARTS.fullmatch(operand)
    assert parts is not None  # the operand was matched by the same grammar
    major, minor, patch = parts["major"], parts["minor"], parts["patch"]
    pre = f"-{parts['pre']}" if parts["pre"] else ""
    if major in _WILDCARDS:
        wildcard, bound = _ANY, f"0.0.0{pre}"
    elif minor is None or minor in _WILDCARDS:
        wildcard, bound = _ANY_MINOR, f"{major}.0.0{pre}"
    elif patch is None or patch in _WILDCARDS:
        wildcard, bound = _ANY_PATCH, f"{major}.{minor}.0{pre}"
    else:
        wildcard, bound = _EXACT, operand
    parsed = _parse_loose(bound)
    if isinstance(parsed, str):
        raise InvalidConstraint(constraint, f'"{spelled}{operand}" does not compare with a valid version')
    return _Comparison(spelled, operand, _CANONICAL_OP[spelled], parsed, wildcard)


@lru_cache(maxsize=1024)
def _parse_constraint(text: str) -> Constraint:
    if not text.strip():
        raise InvalidConstraint(text, "it is empty")
    if len(text) > DEFAULT_LIMITS.max_constraint_chars:
        raise InvalidConstraint(
            text[:60] + "…",
            f"it is longer than {DEFAULT_LIMITS.max_constraint_chars} characters (a limit of mirror, not of Helm)",
        )
    rewritten = _HYPHEN_RANGE.sub(lambda m: f">= {m['low']}, <= {m['high']} ", text)
    alternatives = []
    for segment in rewritten.split("||"):
        if _ALTERNATIVE.fullmatch(segment) is None:
            if not segment.strip():
                raise InvalidConstraint(text, 'an alternative around "||" is empty')
            if rewritten != text:
                raise InvalidConstraint(
                    text,
                    f'"{segment.strip()}" (its "A - B" ranges rewritten as ">= A, <= B") is not a version comparison;'
                    " if a range follows another comparison, put a comma before it",
                )
            raise InvalidConstraint(text, f'"{segment.strip()}" is not a version comparison')
        comparisons = tuple(_comparison(text, m["op"] or "", m["operand"]) for m in _FIND_COMPARISON.finditer(segment))
        alternatives.append(_Alternative(comparisons, any(c.bound.prerelease for c in comparisons)))
    return Constraint(text, tuple(alternatives))


def select_version(versions: Iterable[str], constraint: str, *, strict: bool = False) -> str | None:
    """The version string Helm would pick from a chart's index entries (or, with strict, an OCI tag list).

    As Helm's index lookup: an empty constraint means `*`; an invalid constraint raises InvalidConstraint;
    a version string equal to the constraint wins outright; otherwise the newest version that satisfies the
    constraint. Strings that do not parse are skipped (Helm drops them when it loads the index). Among
    versions of equal precedence (`1.2.3+a`, `1.2.3+b`, `v1.2.3`) the first listed wins, as in Helm for up to
    12 entries; beyond that Helm's pick among them follows Go's unstable sort. Returns the string as listed,
    or None. With strict, versions are read as Helm reads OCI tags (StrictNewVersion).
    """
    wanted = _parse_constraint(constraint or "*")
    parse = _parse_strict if strict else _parse_loose
    # One pass, keeping only the best so far: `versions` may be a stream of tag-list pages.
    exact = False
    best: tuple[Version, str] | None = None
    for text in versions:
        parsed = parse(text)
        if isinstance(parsed, str):
            continue
        exact = exact or (bool(constraint) and text == constraint)
        if (best is None or parsed > best[0]) and wanted.allows(parsed):
            best = (parsed, text)
    if exact:
        return constraint
    return best[1] if best else None


def is_version(text: str) -> bool:
    """Whether `text` reads as a version (Masterminds' loose parse), as opposed to a range."""
    try:
        Version.parse(text)
    except InvalidVersion:
        return False
    return True
