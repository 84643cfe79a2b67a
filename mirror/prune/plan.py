"""What `mirror prune` would delete, from the journal alone: no registry is asked here.

See docs/day-two.md ("What prune deletes").
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from mirror.errors import Problem
from mirror.trust.journal import JournalEntry
from mirror.trust.journal_read import ImportedBundle, LandedImage, LandedManifest, imported_bundles

PRUNE_TARGET_UNKNOWN = "PRUNE_TARGET_UNKNOWN"
PRUNE_KEPT_UNLISTED = "PRUNE_KEPT_UNLISTED"

# The order of deletion within a repository: what refers to a manifest goes before it (an attached signature
# before its image, an index before its platforms), so no moment leaves a present manifest pointing at a gone one.
ROLES = ("attached", "image", "child")
_MAX_TARGETS_NAMED = 10

Ref = tuple[str, str]  # (repository, digest)


@dataclass(frozen=True)
class Candidate:
    """A manifest an older bundle put on the target and no kept bundle uses there."""

    repository: str  # the full path on the registry, prefix included
    digest: str
    role: str  # attached, image (an image's or chart's top manifest), child (a manifest an index lists)
    tags: tuple[str, ...]  # the tags the journal recorded on it, sorted

    def to_json(self) -> dict[str, object]:
        return {"repository": self.repository, "digest": self.digest, "role": self.role, "tags": list(self.tags)}


@dataclass
class PrunePlan:
    target: str
    keep: int
    kept: list[ImportedBundle] = field(default_factory=list)
    pruned: list[ImportedBundle] = field(default_factory=list)  # the target's older bundles
    candidates: list[Candidate] = field(default_factory=list)  # in the order of deletion
    kept_tags: dict[Ref, str] = field(default_factory=dict)  # (repository, tag) → the digest a kept bundle put there
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def repositories(self) -> list[str]:
        return sorted({c.repository for c in self.candidates})


def _host(target: str) -> str:
    return (urlsplit(target).hostname or "").lower()


def _refs(bundle: ImportedBundle) -> Iterator[tuple[Ref, str]]:
    """Every manifest the bundle put on its target, with its role."""
    for manifest in bundle.attached:
        yield (manifest.repository, manifest.digest), "attached"
    for image in bundle.images:
        yield (image.repository, image.digest), "image"
        for child in image.manifests:
            if child != image.digest:
                yield (image.repository, child), "child"


def _tags(bundle: ImportedBundle) -> Iterator[tuple[Ref, str]]:
    """((repository, digest), tag) for every tag the bundle put on a manifest."""
    items: list[LandedImage | LandedManifest] = [*bundle.images, *bundle.attached]
    for item in items:
        if item.tag is not None:
            yield (item.repository, item.digest), item.tag


class _Partials:
    """Watches the entries going by for partial attempts: what each set out to write, and where."""

    def __init__(self) -> None:
        self.seen: list[ImportedBundle] = []

    def watch(self, entries: Iterable[JournalEntry]) -> Iterator[JournalEntry]:
        for entry in entries:
            body = entry.body
            if entry.kind in ("import", "restore") and body["result"] == "partial" and body["written"]:
                self.seen.append(ImportedBundle.from_entry(entry))
            yield entry


def plan_prune(entries: Iterable[JournalEntry], target: str, keep: int) -> PrunePlan:
    """The manifests the target's bundles older than its last `keep` put there and nothing kept uses.

    Kept (never candidates): whatever the last `keep` bundles imported to `target` list, per repository; whatever
    a bundle imported to another target on the same host lists (a prefix may be another's repository); whatever
    a partial attempt after the oldest kept bundle set out to write.
    """
    partials = _Partials()
    bundles = imported_bundles(partials.watch(entries))
    plan = PrunePlan(target, keep)
    mine = [b for b in bundles if b.registry == target]
    if not mine:
        plan.problems.append(_unknown_target(target, bundles))
        return plan
    plan.kept, plan.pruned = mine[-keep:], mine[:-keep]
    unlisted = [b for b in plan.kept if not b.listed]
    if unlisted:
        plan.problems.append(
            Problem(
                PRUNE_KEPT_UNLISTED,
                f"kept bundle {unlisted[0].bundle_id} ({unlisted[0].inventory}): its journal entry was too long to "
                "list what it wrote, so what it uses is unknown",
            )
        )
        return plan
    host = _host(target)
    protecting = [
        *plan.kept,
        *(b for b in bundles if b.registry != target and _host(b.registry) == host),
        *(p for p in partials.seen if _host(p.registry) == host and p.seq > plan.kept[0].seq),
    ]
    protected = {ref for bundle in protecting for ref, _ in _refs(bundle)}
    plan.kept_tags = {(repository, tag): digest for b in protecting for (repository, digest), tag in _tags(b)}
    plan.candidates = _candidates(plan.pruned, protected, plan.notes)
    return plan


def _candidates(pruned: list[ImportedBundle], protected: set[Ref], notes: list[str]) -> list[Candidate]:
    roles: dict[Ref, str] = {}  # in the order first met: ties keep the journal's order
    tags: dict[Ref, set[str]] = {}
    for bundle in pruned:
        if not bundle.listed:
            notes.append(
                f"bundle {bundle.bundle_id} ({bundle.inventory}): its journal entry was too long to list what it "
                "wrote; nothing only it used is deleted"
            )
            continue
        for ref, role in _refs(bundle):
            current = roles.get(ref)
            if ref not in protected and (current is None or ROLES.index(role) < ROLES.index(current)):
                roles[ref] = role
        for ref, tag in _tags(bundle):
            if ref not in protected:
                tags.setdefault(ref, set()).add(tag)
    met = {ref: position for position, ref in enumerate(roles)}
    ordered = sorted(roles.items(), key=lambda item: (item[0][0], ROLES.index(item[1]), met[item[0]]))
    return [
        Candidate(repo, digest, role, tuple(sorted(tags.get((repo, digest), ())))) for (repo, digest), role in ordered
    ]


def _unknown_target(target: str, bundles: list[ImportedBundle]) -> Problem:
    known = sorted({b.registry for b in bundles})
    named = ", ".join(known[:_MAX_TARGETS_NAMED]) + (" ..." if len(known) > _MAX_TARGETS_NAMED else "")
    recorded = f"it records imports to: {named}" if known else "it records no import"
    return Problem(
        PRUNE_TARGET_UNKNOWN,
        f"the journal records no bundle imported to {target} (compared as written at import); {recorded}",
    )
