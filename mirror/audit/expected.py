"""What the targets should hold: the import journal folded, entry by entry, for one registry and one Git base.

See docs/audit.md ("What is compared"). Pure: the entries come in, the expectation comes out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mirror.trust.journal import JournalEntry

RepoTag = tuple[str, str]  # (repository, tag) on the registry
RepoDigest = tuple[str, str]  # (repository, manifest digest)
RepoRef = tuple[str, str]  # (Git repository URL, ref)


@dataclass(frozen=True)
class HeldBundle:
    """A bundle the targets should hold, from its latest `imported` entry."""

    bundle_id: str
    inventory: str  # sha256:<hex>
    sequence: int | None
    seq: int  # the journal entry

    def to_json(self) -> dict[str, object]:
        return {"bundleId": self.bundle_id, "inventory": self.inventory, "sequence": self.sequence, "entry": self.seq}


@dataclass
class _Landed:
    """What one bundle's latest `imported` entry says it put on the targets this audit looks at."""

    tags: dict[RepoTag, str]
    manifests: dict[RepoDigest, tuple[str, ...]]  # top manifest → every manifest of its graph the journal lists
    refs: dict[RepoRef, str]


@dataclass
class Expected:
    """The fold. `tags` and `refs` hold where each must point; `manifests` every manifest whose graph must be
    complete; `tolerated` what a partial import or prune may or may not have left (neither drift when found nor
    when missing); `complete` is False when some entry did not list what it wrote (nothing is then unexpected)."""

    registry: str
    git: str | None
    tags: dict[RepoTag, str] = field(default_factory=dict)
    manifests: dict[RepoDigest, tuple[str, ...]] = field(default_factory=dict)
    refs: dict[RepoRef, str] = field(default_factory=dict)
    tolerated_tags: dict[RepoTag, set[str]] = field(default_factory=dict)
    tolerated_refs: dict[RepoRef, set[str]] = field(default_factory=dict)
    bundles: dict[str, HeldBundle] = field(default_factory=dict)  # by inventory, oldest latest-import first
    other_registries: set[str] = field(default_factory=set)
    unchecked_git: set[str] = field(default_factory=set)  # Git bases the journal pushed to, not this audit's
    notes: list[str] = field(default_factory=list)
    complete: bool = True
    known: set[str] = field(default_factory=set)  # every repository an import wrote to or a prune deleted from
    entries: int = 0
    _landed: dict[str, _Landed] = field(default_factory=dict, repr=False)

    @property
    def repositories(self) -> set[str]:
        """Every registry repository the journal knows: written to by an import (partial ones too), or pruned."""
        return self.known | {r for r, _ in self.tags} | {r for r, _ in self.manifests}

    @property
    def git_repositories(self) -> set[str]:
        return {r for r, _ in self.refs} | {r for r, _ in self.tolerated_refs}

    def digests_in(self, repository: str) -> set[str]:
        """The manifest digests the journal put in `repository`: the subjects whose referrers fallback tags
        (`sha256-<hex>`) the import may have written there."""
        found = {d for (r, _), d in self.tags.items() if r == repository}
        for (r, top), graph in self.manifests.items():
            if r == repository:
                found |= {top, *graph}
        return found


def fold(entries: Iterable[JournalEntry], registry: str, git: str | None) -> Expected:
    """The journal's entries, in order, applied to an empty expectation for `registry` (and `git`)."""
    expected = Expected(registry, git)
    for entry in entries:
        expected.entries = entry.seq
        body = entry.body
        if entry.kind == "adopt":
            expected.notes.append(
                f"entry {entry.seq}: the journal starts on an installation that imported before it; what those "
                "imports wrote is not in the journal (see --only-journaled)"
            )
        elif entry.kind in ("import", "restore"):  # a restored bundle is imported again: its latest import
            _import(expected, entry.seq, body)
        elif entry.kind == "prune" and body["registry"] == registry:
            _prune(expected, entry.seq, body)
    return expected


def _import(expected: Expected, seq: int, body: Mapping[str, Any]) -> None:
    if body["result"] not in ("imported", "restored", "partial") or body["inventory"] is None:
        return  # refused and failed attempts wrote nothing
    here = body["registry"] == expected.registry
    git_here = expected.git is not None and body["git"] == expected.git
    if not here:
        expected.other_registries.add(str(body["registry"]))
    if body["git"] is not None and not git_here:
        expected.unchecked_git.add(str(body["git"]))
    if not (here or git_here):
        return
    written = body["written"]
    if written is None:
        expected.complete = False
        expected.notes.append(
            f"entry {seq}: bundle {body['bundleId']} did not list what it wrote (the entry was too long), so it is "
            "not checked, and nothing is reported as unexpected"
        )
        landed = _Landed({}, {}, {})
    else:
        landed = _landed(written, here, git_here)
    if body["result"] == "partial":
        expected.notes.append(
            f"entry {seq}: a partial import of bundle {body['bundleId']}: what it wrote may or may not be on the "
            "targets (import it again to finish it)"
        )
        expected.known |= {r for r, _ in landed.tags} | {r for r, _ in landed.manifests}
        for key, digest in landed.tags.items():
            expected.tolerated_tags.setdefault(key, set()).add(digest)
        for ref_key, commit in landed.refs.items():
            expected.tolerated_refs.setdefault(ref_key, set()).add(commit)
        return
    _apply(expected, landed)
    inventory = str(body["inventory"])
    expected._landed.pop(inventory, None)
    expected._landed[inventory] = landed
    expected.bundles.pop(inventory, None)  # re-inserted last: ordered by each bundle's latest import
    expected.bundles[inventory] = HeldBundle(str(body["bundleId"]), inventory, body["sequence"], seq)


def _landed(written: Mapping[str, Any], registry: bool, git: bool) -> _Landed:
    tags: dict[RepoTag, str] = {}
    manifests: dict[RepoDigest, tuple[str, ...]] = {}
    refs: dict[RepoRef, str] = {}
    if registry:
        for image in written["images"]:
            if image["tag"] is not None:
                tags[(image["repository"], image["tag"])] = image["digest"]
            manifests[(image["repository"], image["digest"])] = tuple(image["manifests"])
        for attached in written["attached"]:
            if attached["tag"] is not None:
                tags[(attached["repository"], attached["tag"])] = attached["digest"]
            manifests.setdefault((attached["repository"], attached["digest"]), ())
    if git:
        refs = {(r["repository"], r["ref"]): r["new"] for r in written["git"]}
    return _Landed(tags, manifests, refs)


def _apply(expected: Expected, landed: _Landed) -> None:
    """A later import moves tags and refs it writes; its own writes are no longer in doubt."""
    expected.known |= {r for r, _ in landed.tags} | {r for r, _ in landed.manifests}
    for key, digest in landed.tags.items():
        expected.tags[key] = digest
        expected.tolerated_tags.pop(key, None)
    for manifest, graph in landed.manifests.items():
        expected.manifests[manifest] = tuple(sorted({*expected.manifests.get(manifest, ()), *graph}))
    for ref_key, commit in landed.refs.items():
        expected.refs[ref_key] = commit
        expected.tolerated_refs.pop(ref_key, None)


def _prune(expected: Expected, seq: int, body: Mapping[str, Any]) -> None:
    if body["result"] not in ("pruned", "partial"):
        return  # refused and failed prunes deleted nothing
    kept = set(body["kept"])
    for inventory in [i for i in expected.bundles if i not in kept]:
        del expected.bundles[inventory]
        expected._landed.pop(inventory, None)
    if body["deleted"] is None:
        expected.notes.append(
            f"entry {seq}: a prune that did not list what it deleted: the registry is expected to hold what the "
            "bundles it kept put there"
        )
        _rebuild_from_kept(expected)
        return
    partial = body["result"] == "partial"
    for deleted in body["deleted"]:
        repository, digest = deleted["repository"], deleted["digest"]
        expected.known.add(repository)
        expected.manifests.pop((repository, digest), None)
        for tag in deleted["tags"]:
            if expected.tags.get((repository, tag)) == digest:
                del expected.tags[(repository, tag)]
            if partial:
                expected.tolerated_tags.setdefault((repository, tag), set()).add(digest)
    if partial:
        expected.notes.append(f"entry {seq}: a partial prune: what it set out to delete may still be there")


def _rebuild_from_kept(expected: Expected) -> None:
    expected.tags.clear()
    expected.manifests.clear()
    refs = dict(expected.refs)  # a prune deletes from the registry only
    for landed in expected._landed.values():
        _apply(expected, landed)
    expected.refs = refs
