"""Tag selectors of image entries (`tags: {semver, regex, latest}`): which tags of a repository's list are collected.

The rules are in docs/mirrorset.md ("Tag selectors"). Every filter given applies (AND); `latest: N` then keeps
the N highest versions. Tags are read as Flux reads image tags (MAJOR.MINOR.PATCH, a `v` prefix accepted);
`regex` runs under RE2, as Flux's ImagePolicy `filterTags.pattern` does: searched anywhere in the tag, in time
linear in the tag, whatever the pattern.
"""

from __future__ import annotations

import functools
import heapq
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mirror.errors import UsageError
from mirror.limits import DEFAULT_LIMITS, Limits
from mirror.oci.reference import is_tag

if TYPE_CHECKING:
    from mirror.semver import Constraint, Version

# RE2 and mirror.semver are imported only where a selector is parsed or applied: every MirrorSet reaches
# TagSelector through the model, and most select no tags (docs/development.md, "Start-up").

__all__ = ["TagSelection", "TagSelector", "parse_tag_selector", "select_tags"]

FIELDS = frozenset({"semver", "regex", "latest"})
_SAMPLE = 10  # tags named when nothing matched


@functools.cache
def _options() -> Any:
    import re2

    options = re2.Options()
    options.log_errors = False  # RE2 would print its own line on stderr; the error names the field instead
    return options


@dataclass(frozen=True)
class TagSelector:
    """A parsed `tags:` mapping; `semver` is the constraint as written, `regex` the pattern as written."""

    semver: str | None = None
    regex: str | None = None
    latest: int | None = None

    def to_json(self) -> dict[str, object]:
        """As written in the MirrorSet: how the lock records, and later matches, the selector."""
        fields: dict[str, object] = {"semver": self.semver, "regex": self.regex, "latest": self.latest}
        return {k: v for k, v in fields.items() if v is not None}

    def describe(self) -> str:
        parts = []
        if self.semver is not None:
            parts.append(f"semver {self.semver!r}")
        if self.regex is not None:
            parts.append(f"regex {self.regex!r}")
        if self.latest is not None:
            parts.append(f"latest {self.latest}")
        return ", ".join(parts)

    def constraint(self) -> Constraint | None:
        # `latest` without `semver` ranks as `*` does: prereleases are left out unless a constraint names one.
        if self.semver is None and self.latest is None:
            return None
        from mirror.semver import Constraint

        return Constraint.parse(self.semver or "*")


def _compile(pattern: str) -> Any:
    import re2

    return re2.compile(pattern, _options())


def parse_tag_selector(value: Any, field: str, limits: Limits = DEFAULT_LIMITS) -> TagSelector:
    """A `tags:` mapping checked; raises UsageError whose message starts with the field at fault."""
    if not isinstance(value, Mapping):
        raise UsageError(f"{field}: expected a mapping with semver, regex and/or latest")
    unknown = sorted(str(k) for k in value if k not in FIELDS)
    if unknown:
        raise UsageError(f"{field}.{unknown[0]}: unknown field", hint="allowed fields here: latest, regex, semver")
    if not value:
        raise UsageError(f"{field}: give at least one of semver, regex or latest")
    semver = value.get("semver")
    if semver is not None:
        if isinstance(semver, float):
            raise UsageError(f"{field}.semver: {semver!r} was read as a number", hint='quote it, e.g. semver: "1.2"')
        if not isinstance(semver, str) or not semver.strip():
            raise UsageError(f"{field}.semver: expected a version constraint, got {semver!r}")
        from mirror.semver import Constraint

        try:
            Constraint.parse(semver)
        except UsageError as exc:
            raise UsageError(f"{field}.semver: {exc.message}", hint=exc.hint) from exc
    regex = value.get("regex")
    if regex is not None:
        if not isinstance(regex, str) or not regex:
            raise UsageError(f"{field}.regex: expected a regular expression, got {regex!r}")
        if len(regex) > limits.max_tag_regex_chars:
            raise UsageError(
                f"{field}.regex: longer than {limits.max_tag_regex_chars} characters (limit max_tag_regex_chars)"
            )
        import re2

        try:
            _compile(regex)
        except re2.error as exc:
            reason = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
            raise UsageError(
                f"{field}.regex: {regex!r} is not valid RE2 syntax: {reason}",
                hint="RE2, as Go and Flux: no backreferences or lookaround",
            ) from exc
    latest = value.get("latest")
    if latest is not None and (
        not isinstance(latest, int) or isinstance(latest, bool) or not 1 <= latest <= limits.max_selected_tags
    ):
        raise UsageError(
            f"{field}.latest: expected a whole number from 1 to {limits.max_selected_tags}, got {latest!r}"
        )
    return TagSelector(semver, regex, latest)


@dataclass(frozen=True)
class TagSelection:
    """The tags chosen (highest version first; tags that are not versions after, in listing order), and what
    was seen, for the message when nothing matched."""

    tags: tuple[str, ...]
    newest_seen: tuple[str, ...]  # up to _SAMPLE version tags, newest first
    seen: int

    def describe_seen(self) -> str:
        if not self.seen:
            return "the repository lists no tags"
        if not self.newest_seen:
            return f"none of its {self.seen} tags is a version (MAJOR.MINOR.PATCH, an optional v prefix)"
        more = f", … ({self.seen} tags in all)" if self.seen > len(self.newest_seen) else ""
        return f"version tags seen, newest first: {', '.join(self.newest_seen)}{more}"


def select_tags(tags: Iterable[str], selector: TagSelector, limits: Limits = DEFAULT_LIMITS) -> TagSelection:
    """One pass over `tags` (a stream of tag-list pages). Names that break the tag grammar are skipped (a
    registry's list is not trusted); more than `max_selected_tags` chosen is a UsageError (exit 2)."""
    from mirror.git.refs import flux_tag_version  # mirror.git and semver: only when a MirrorSet selects tags

    constraint = selector.constraint()
    pattern = _compile(selector.regex) if selector.regex is not None else None
    ranked: list[tuple[Version, str]] = []  # with latest: a min-heap of the best N
    plain: list[str] = []  # without semver or latest, tags the regex keeps that are not versions
    chosen_versions: list[tuple[Version, str]] = []
    newest: list[tuple[Version, str]] = []
    seen = 0
    listed: set[str] = set()
    for tag in tags:
        if not is_tag(tag) or tag in listed:
            continue
        listed.add(tag)
        seen += 1
        version = flux_tag_version(tag)
        if version is not None:
            if len(newest) < _SAMPLE:
                heapq.heappush(newest, (version, tag))
            elif (version, tag) > newest[0]:
                heapq.heapreplace(newest, (version, tag))
        if pattern is not None and pattern.search(tag) is None:
            continue
        if constraint is not None and (version is None or not constraint.allows(version)):
            continue
        if selector.latest is not None:
            assert version is not None  # latest implies a constraint, which only versions pass
            if len(ranked) < selector.latest:
                heapq.heappush(ranked, (version, tag))
            elif (version, tag) > ranked[0]:
                heapq.heapreplace(ranked, (version, tag))
            continue
        if version is not None:
            chosen_versions.append((version, tag))
        else:
            plain.append(tag)
        if len(chosen_versions) + len(plain) > limits.max_selected_tags:
            raise UsageError(
                f"the tag selector ({selector.describe()}) chooses more than {limits.max_selected_tags} tags "
                "(limit max_selected_tags)",
                hint="narrow it, or add latest: N",
            )
    best = sorted(ranked if selector.latest is not None else chosen_versions, reverse=True)
    ordered = tuple(tag for _, tag in best) + tuple(plain)
    return TagSelection(ordered, tuple(tag for _, tag in sorted(newest, reverse=True)), seen)
