"""A Flux `ref.semver` over OCI tags, chosen as source-controller chooses it.

source-controller reads each tag with fluxcd/pkg/version.ParseVersion (three dot-separated parts, a leading `v`
accepted: cert-manager's `v1.19.1`), skips tags that are not versions, and takes the newest one the Masterminds
constraint allows. Helm's own OCI listing (StrictNewVersion) would skip every `v` tag, so a chart that a Flux
OCIRepository names is chosen here, not by Helm's rule.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass

from mirror.git.refs import flux_tag_version
from mirror.semver import Constraint, Version

__all__ = ["TagChoice", "select_flux_tag"]

_SAMPLE = 10  # newest version tags named when nothing matches


@dataclass(frozen=True)
class TagChoice:
    """The tag chosen (or None), and what was seen, for the message when nothing matched."""

    tag: str | None
    newest_seen: tuple[str, ...]  # up to _SAMPLE version tags, newest first
    seen: int  # tags listed in all

    def describe_seen(self) -> str:
        if not self.seen:
            return "the repository lists no tags"
        if not self.newest_seen:
            return f"none of its {self.seen} tags is a version (MAJOR.MINOR.PATCH, an optional v prefix)"
        more = f", … ({self.seen} tags in all)" if self.seen > len(self.newest_seen) else ""
        return f"tags seen, newest first: {', '.join(self.newest_seen)}{more}"


def select_flux_tag(tags: Iterable[str], constraint: str) -> TagChoice:
    """One pass over `tags` (a stream of tag-list pages), keeping the best match and the newest few versions."""
    wanted = Constraint.parse(constraint)
    best: tuple[Version, str] | None = None
    newest: list[tuple[Version, str]] = []  # a min-heap of the newest _SAMPLE versions
    seen = 0
    for tag in tags:
        seen += 1
        version = flux_tag_version(tag)
        if version is None:
            continue
        if len(newest) < _SAMPLE:
            heapq.heappush(newest, (version, tag))
        elif version > newest[0][0]:
            heapq.heapreplace(newest, (version, tag))
        if (best is None or version > best[0]) and wanted.allows(version):
            best = (version, tag)
    ordered = tuple(tag for _, tag in sorted(newest, key=lambda item: item[0], reverse=True))
    return TagChoice(best[1] if best else None, ordered, seen)
