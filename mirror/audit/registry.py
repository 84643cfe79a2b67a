"""The registry compared with the journal: every tag where the journal left it, every manifest graph complete,
and nothing the journal never wrote (tags in its repositories, repositories under the target's prefix).

See docs/audit.md ("What is compared").
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from mirror.audit.drift import (
    BLOB_MISSING,
    BLOB_SIZE_MISMATCH,
    MANIFEST_CORRUPT,
    MANIFEST_MISSING,
    REPOSITORY_UNEXPECTED,
    TAG_MISSING,
    TAG_MOVED,
    TAG_UNEXPECTED,
    Drift,
)
from mirror.audit.expected import Expected
from mirror.audit.targets import Graphs, Manifest, RegistryTarget

# The referrers tag schema's index of a subject: `<alg>-<hex>` (distribution-spec v1.1).
_FALLBACK_TAG = re.compile(r"([a-z0-9]+)-([a-f0-9]{32,128})")


@dataclass
class RegistryChecked:
    tags: int = 0
    manifests: int = 0
    blobs: int = 0
    repositories: int = 0  # whose tags were listed
    catalog: bool | None = None  # the registry's repositories listed (None: not asked)

    def to_json(self) -> dict[str, object]:
        return {
            "tags": self.tags,
            "manifests": self.manifests,
            "blobs": self.blobs,
            "repositoriesListed": self.repositories,
            "catalogListed": self.catalog,
        }


def check_registry(
    expected: Expected,
    target: RegistryTarget,
    *,
    prefix: str,
    only_journaled: bool,
    report: Callable[[Iterator[Drift]], None],
    note: Callable[[str], None],
) -> RegistryChecked:
    """Compare, reporting drift as it is found (`report`); returns what was looked at."""
    checked = RegistryChecked()
    tagged = target.tagged(expected.tags)  # where each tag points, and the manifest itself: no second request
    checked.tags = len(tagged)
    report(_tag_drift(expected, {key: _pointed(m) for key, m in tagged.items()}))
    roots = set(expected.manifests) | {(r, m) for (r, _), graph in expected.manifests.items() for m in graph}
    graphs = target.graphs(
        roots, known=[m for m in tagged.values() if m is not None and (m.repository, m.digest) in roots]
    )
    checked.manifests, checked.blobs = len(graphs.manifests), len(graphs.blobs)
    report(_graph_drift(graphs))
    if only_journaled:
        return checked
    if not expected.complete:
        note("tags and repositories no import wrote are not looked for: the journal does not list every write")
        return checked
    lists = target.tag_lists(expected.repositories)
    checked.repositories = len(lists)
    report(_unexpected_tags(expected, lists))
    repositories = target.repositories(prefix)
    checked.catalog = repositories is not None
    if repositories is None:
        note(
            "the registry does not list its repositories (_catalog) to these credentials: repositories no import "
            "wrote are not looked for"
        )
        return checked
    known = expected.repositories
    report(Drift(r, REPOSITORY_UNEXPECTED) for r in repositories if r not in known)
    return checked


def _pointed(manifest: Manifest | None) -> str | None:
    """The digest a tag names: of the bytes it answered, or `unreadable` (the registry contradicted itself)."""
    if manifest is None:
        return None
    return "unreadable" if manifest.corrupt is not None and manifest.digest == "" else manifest.digest


def _tag_drift(expected: Expected, found: dict[tuple[str, str], str | None]) -> Iterator[Drift]:
    for (repository, tag), digest in sorted(expected.tags.items()):
        now = found[(repository, tag)]
        subject = f"{repository}:{tag}"
        if now is None:
            yield Drift(subject, TAG_MISSING, expected=digest)
        elif now != digest and now not in expected.tolerated_tags.get((repository, tag), ()):
            yield Drift(subject, TAG_MOVED, expected=digest, found=now)


def _graph_drift(graphs: Graphs) -> Iterator[Drift]:
    declared: dict[tuple[str, str], tuple[int, str]] = {}
    for (repository, digest), manifest in sorted(graphs.manifests.items()):
        if manifest.corrupt is not None:
            yield Drift(f"{repository}@{digest}", MANIFEST_CORRUPT, detail=manifest.corrupt)
        elif manifest.document is None:
            yield Drift(f"{repository}@{digest}", MANIFEST_MISSING)
        for blob, wanted in manifest.blobs.items():
            declared.setdefault((repository, blob), (wanted, digest))
    for (repository, blob), size in sorted(graphs.blobs.items()):
        wanted, manifest_digest = declared[(repository, blob)]
        if size is None:
            yield Drift(f"{repository}@{blob}", BLOB_MISSING, detail=f"named by {manifest_digest}")
        elif size != wanted:
            yield Drift(f"{repository}@{blob}", BLOB_SIZE_MISMATCH, expected=f"{wanted} bytes", found=f"{size} bytes")


def _unexpected_tags(expected: Expected, lists: dict[str, list[str] | None]) -> Iterator[Drift]:
    for repository, tags in sorted(lists.items()):
        subjects = expected.digests_in(repository)
        for tag in tags or ():
            key = (repository, tag)
            if key in expected.tags or key in expected.tolerated_tags:
                continue
            fallback = _FALLBACK_TAG.fullmatch(tag)
            if fallback and f"{fallback[1]}:{fallback[2]}" in subjects:
                continue  # the referrers fallback index of a manifest the journal put here
            yield Drift(f"{repository}:{tag}", TAG_UNEXPECTED)
