"""Stable codes of the warnings a collect gives, and the MirrorSet's acknowledgements of them (`spec.acknowledge`).

A warning that repeats every night (a chart guessing a tag that does not exist, a fleet note) can be
acknowledged: it is then counted, not repeated. See docs/collector.md ("Acknowledged warnings").
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

from mirror.supplychain.codes import ATTACHED_SUBJECT_FILTERED

WARNING = "WARNING"  # a warning without a code of its own (the import's, for one)

TRANSFER_RETRY = "TRANSFER_RETRY"
IMAGE_GUESS_NOT_FOUND = "IMAGE_GUESS_NOT_FOUND"
IMAGE_GUESS_UNREACHABLE = "IMAGE_GUESS_UNREACHABLE"
CHART_INDEX_NO_DIGEST = "CHART_INDEX_NO_DIGEST"
CHART_DEPENDENCY = "CHART_DEPENDENCY"
CHART_IMAGES = "CHART_IMAGES"
FLUX_FLEET = "FLUX_FLEET"
FLUX_GIT_CHART = "FLUX_GIT_CHART"
GIT_REFS_SKIPPED = "GIT_REFS_SKIPPED"
ATTACHED_TAGS_UNLISTED = "ATTACHED_TAGS_UNLISTED"
UPSTREAM_TAG_MOVED = "UPSTREAM_TAG_MOVED"
SEQUENCE_RECORD_AHEAD = "SEQUENCE_RECORD_AHEAD"  # given before the MirrorSets are read: not acknowledgeable

# What a MirrorSet may acknowledge, and what each says (docs/collector.md lists them; a test keeps both equal).
ACKNOWLEDGEABLE = {
    TRANSFER_RETRY: "a request failed and is tried again",
    IMAGE_GUESS_NOT_FOUND: "an image whose tag a chart only guessed is not upstream, and is left out",
    IMAGE_GUESS_UNREACHABLE: "an image a chart only guessed whose host cannot be reached or refuses it, left out",
    CHART_INDEX_NO_DIGEST: "a chart repository's index gives no digest for an archive",
    CHART_DEPENDENCY: "a chart dependency that is not collected (not vendored, or from a repository not followed)",
    CHART_IMAGES: "what image discovery in a chart could not read or resolve",
    FLUX_FLEET: "what reading a Flux fleet left out or could not imitate",
    FLUX_GIT_CHART: "a chart from a Git repository, which travels in that repository only",
    GIT_REFS_SKIPPED: "Git refs whose names git refuses, left out",
    ATTACHED_TAGS_UNLISTED: "a repository whose tags cannot be listed, so attached manifests are asked for one by one",
    ATTACHED_SUBJECT_FILTERED: "attached manifests pointing at an upstream index the platform filter narrowed",
    UPSTREAM_TAG_MOVED: "an upstream tag on another digest than in the --since base",
}


@dataclass(frozen=True)
class Acknowledgement:
    """One `spec.acknowledge` entry: warnings with this code (and, if given, whose text matches the glob)."""

    code: str | None
    match: str | None
    reason: str
    origin: str  # file and field, for messages

    def covers(self, code: str, message: str) -> bool:
        if self.code is not None and self.code != code:
            return False
        return self.match is None or fnmatch.fnmatchcase(message, self.match)
