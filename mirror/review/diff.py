"""What changed between two bundles (or their inventory files). See docs/review.md ("The diff model")."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from mirror.bundle.inventory import ArtifactRecord, blob_path
from mirror.errors import MirrorError
from mirror.git.refs import is_object_id
from mirror.review.facts import content_size
from mirror.review.fluxobjects import FleetChange, object_changes, read_objects
from mirror.review.found import found_of
from mirror.review.gitlog import Commit, GitHistory, git_history, history_error
from mirror.review.source import Source
from mirror.review.thinlog import CarriedCommits
from mirror.supplychain.attached import ATTACHED
from mirror.supplychain.summary import Signer, recorded_signers


@dataclass(frozen=True)
class Change:
    kind: str
    source: str
    what: str  # tag moved | version bump | republished | ref moved | changed
    old_digest: str
    new_digest: str
    old_version: str | None = None
    new_version: str | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "source": self.source,
            "change": self.what,
            "oldDigest": self.old_digest,
            "newDigest": self.new_digest,
            "oldVersion": self.old_version,
            "newVersion": self.new_version,
        }


@dataclass
class RefMove:
    source: str
    ref: str
    old: str | None  # None: a ref the old state did not have
    new: str | None  # None: a ref the new state no longer has
    commits: list[Commit] = field(default_factory=list)
    total: int = 0
    dropped: int = 0
    note: str = ""

    def to_json(self) -> dict[str, object]:
        return {
            "source": self.source,
            "ref": self.ref,
            "old": self.old,
            "new": self.new,
            "commitCount": self.total,
            "commits": [{"id": c.id, "subject": c.subject} for c in self.commits],
            "droppedCount": self.dropped,
            "note": self.note,
        }


@dataclass(frozen=True)
class SignerChange:
    """The upstream signers the collector verified for an artifact, different from one bundle to the next.

    A signer changed or removed is a supply-chain alarm: the image is now vouched for by someone else, or by
    no one; a signer added to an image that had none is news, not an alarm. See docs/supply-chain.md.
    """

    kind: str
    source: str
    what: str  # signer added | signer removed | signer changed
    old: tuple[Signer, ...]
    new: tuple[Signer, ...]
    image_moved: bool  # its digest changed too

    @property
    def alarm(self) -> bool:
        return self.what != "signer added"

    def to_json(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "source": self.source,
            "change": self.what,
            "old": [s.to_json() for s in self.old],
            "new": [s.to_json() for s in self.new],
            "imageMoved": self.image_moved,
            "alarm": self.alarm,
        }


@dataclass(frozen=True)
class SupplyChainEvent:
    """A change an officer must look at before approving: who vouches for an image changed, or a name that
    should be immutable (a version tag, a chart version, a branch's history) now means something else."""

    what: str  # signer changed | signer removed | signer added | tag moved | chart republished | history rewritten
    kind: str
    source: str
    detail: str
    alarm: bool  # a signer changed or removed (SignerChange.alarm)

    @property
    def mark(self) -> str:
        return "ALARM" if self.alarm else "NOTE" if self.what == "signer added" else "CHECK"

    def to_json(self) -> dict[str, object]:
        return {
            "event": self.what,
            "kind": self.kind,
            "source": self.source,
            "detail": self.detail,
            "alarm": self.alarm,
        }


@dataclass
class Diff:
    old: str  # location
    old_bundle_id: str
    old_inventory: str  # sha256:<hex>
    new: str
    new_bundle_id: str
    added: list[ArtifactRecord] = field(default_factory=list)
    removed: list[ArtifactRecord] = field(default_factory=list)
    changed: list[Change] = field(default_factory=list)
    unchanged: int = 0
    refs: list[RefMove] = field(default_factory=list)
    new_blobs: list[tuple[str, int]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    signers: list[SignerChange] = field(default_factory=list)
    attached_added: int = 0  # manifests attached upstream (signatures, attestations, SBOMs) new in NEW
    attached_removed: int = 0
    flux: list[FleetChange] = field(default_factory=list)  # the objects of each fleet added or changed
    flux_read: bool = False  # NEW is a bundle, so its fleets' objects were compared (not an inventory file)
    sizes: dict[tuple[str, ...], int] = field(default_factory=dict)  # of added and removed artifacts, when read

    def size_of(self, artifact: ArtifactRecord) -> int | None:
        return self.sizes.get(_key(artifact))

    @property
    def removal_note(self) -> str | None:
        """What happens to removed artifacts on the high side: nothing (docs/importer.md)."""
        if not self.removed:
            return None
        return (
            f"import never deletes: the {len(self.removed)} removed artifact(s) stay on the targets "
            "(registry, Git server) until `mirror prune` removes them"
        )

    @property
    def events(self) -> list[SupplyChainEvent]:
        """Supply-chain events, alarms first; each names what to check (docs/officer-guide.md)."""
        found = [
            SupplyChainEvent(
                c.what,
                c.kind,
                c.source,
                f"{_signers(c.old)} -> {_signers(c.new)} ({'tag moved' if c.image_moved else 'same digest'})",
                c.alarm,
            )
            for c in self.signers
        ]
        for change in self.changed:
            if change.what in ("tag moved", "republished"):
                what = "tag moved" if change.what == "tag moved" else "chart republished"
                detail = f"{change.old_digest} -> {change.new_digest}"
                found.append(SupplyChainEvent(what, change.kind, change.source, detail, False))
        for move in self.refs:
            if move.dropped:
                detail = f"{move.dropped} commit(s) of the old state are gone (not a fast-forward)"
                found.append(SupplyChainEvent("history rewritten", "git", f"{move.source} {move.ref}", detail, False))
        order = {"ALARM": 0, "CHECK": 1, "NOTE": 2}
        return sorted(found, key=lambda e: order[e.mark])

    @property
    def new_blob_bytes(self) -> int:
        return sum(size for _, size in self.new_blobs)

    @property
    def moved_tags(self) -> list[Change]:
        return [c for c in self.changed if c.what == "tag moved"]

    @property
    def version_bumps(self) -> list[Change]:
        return [c for c in self.changed if c.what == "version bump"]

    @property
    def signer_alarms(self) -> list[SignerChange]:
        return [c for c in self.signers if c.alarm]

    def to_json(self) -> dict[str, object]:
        return {
            "old": {"location": self.old, "bundleId": self.old_bundle_id, "inventory": self.old_inventory},
            "new": {"location": self.new, "bundleId": self.new_bundle_id},
            "added": [self._listed(a) for a in self.added],
            "removed": [self._listed(a) for a in self.removed],
            "changed": [c.to_json() for c in self.changed],
            "unchanged": self.unchanged,
            "movedRefs": [r.to_json() for r in self.refs],
            "newBlobs": {"count": len(self.new_blobs), "bytes": self.new_blob_bytes},
            "signers": [c.to_json() for c in self.signers],
            "attached": {"added": self.attached_added, "removed": self.attached_removed},
            "flux": [f.to_json() for f in self.flux],
            "supplyChainEvents": [e.to_json() for e in self.events],
            "notes": [*self.notes, *([self.removal_note] if self.removal_note else [])],
        }

    def _listed(self, artifact: ArtifactRecord) -> dict[str, object]:
        return {**artifact_json(artifact), "size": self.size_of(artifact), "found": found_of(artifact)}


def _signers(signers: tuple[Signer, ...]) -> str:
    return "; ".join(s.describe() for s in signers) or "none"


def artifact_json(artifact: ArtifactRecord) -> dict[str, object]:
    listed: dict[str, object] = {
        "kind": artifact.kind,
        "source": artifact.source,
        "version": version_of(artifact),
        "digest": artifact.digest,
    }
    if artifact.kind == "file":
        listed |= {"name": artifact.extra.get("name"), "sha256": file_digest(artifact)}
        listed["fileSize"] = artifact.extra.get("fileSize")
    return listed


def version_of(artifact: ArtifactRecord) -> str | None:
    """The human version: an image's tag, a chart's version, a Git source's ref, a fleet's path, a file's name."""
    extra = artifact.extra
    if artifact.kind == "image":
        name = artifact.source.rsplit("/", 1)[-1]
        return name.split("@", 1)[0].split(":", 1)[1] if ":" in name.split("@", 1)[0] else None
    key = {"chart": "version", "git": "refName", "flux": "path", "file": "name"}.get(artifact.kind)
    value = extra.get(key) if key else None
    return value if isinstance(value, str) else None


def _key(artifact: ArtifactRecord) -> tuple[str, ...]:
    extra = artifact.extra
    if artifact.kind == "chart":
        return ("chart", artifact.source, str(extra.get("version")))
    if artifact.kind == "git":
        return ("git", artifact.source, str(extra.get("name")))
    if artifact.kind == "flux":
        return ("flux", artifact.source, str(extra.get("path")))
    if artifact.kind == "file":  # one name, one file: a new download URL for it is a change, not a new file
        return ("file", str(extra.get("name")).lower())
    return (artifact.kind, artifact.source)


def file_digest(artifact: ArtifactRecord) -> str | None:
    """A file's own sha256 (`sha256:<hex>`), what its publisher's checksum names; None for other kinds."""
    sha = artifact.extra.get("fileSha256") if artifact.kind == "file" else None
    return f"sha256:{sha}" if isinstance(sha, str) else None


def _chart_family(artifact: ArtifactRecord) -> tuple[str, str]:
    # The source of an HTTP chart names its version; repo + chart name is the chart across versions.
    return (str(artifact.extra.get("repo")), str(artifact.extra.get("chart")))


def _heads(artifact: ArtifactRecord, key: str = "heads") -> dict[str, str]:
    """The refs the artifact's git bundle carries (`heads`), or those an incremental record left to its base."""
    heads = artifact.extra.get(key)
    if not isinstance(heads, dict):
        return {}
    # The values reach git's command line: only full object ids, never something git could read as an option.
    return {k: v for k, v in heads.items() if isinstance(k, str) and isinstance(v, str) and is_object_id(v)}


def _refs(artifact: ArtifactRecord) -> dict[str, str]:
    """Every ref of the source at collect time: an incremental git bundle carries only the refs that moved."""
    return {**_heads(artifact, "unchanged"), **_heads(artifact)}


def _artifacts(source: Source) -> list[ArtifactRecord]:
    """The artifacts compared: not the attached manifests (counted), and an OCI chart once, as a chart (a Flux
    object that names it makes an image record of the same manifest too)."""
    artifacts = source.inventory.artifacts
    charts = {(a.source, a.digest) for a in artifacts if a.kind == "chart"}
    return [a for a in artifacts if a.kind != ATTACHED and not (a.kind == "image" and (a.source, a.digest) in charts)]


def _match(old: Source, new: Source, diff: Diff) -> list[tuple[ArtifactRecord, ArtifactRecord]]:
    """Pair artifacts by identity; fill added, removed, unchanged and the simple changes. Returns moved gits."""
    # Attached manifests are counted, not listed: each is named by its own digest, so every new signature of a
    # moved image would otherwise be an artifact added and the old one an artifact removed.
    before: dict[tuple[str, ...], ArtifactRecord] = {_key(a): a for a in _artifacts(old)}
    after: dict[tuple[str, ...], ArtifactRecord] = {_key(a): a for a in _artifacts(new)}
    gits = []
    for key, artifact in after.items():
        previous = before.get(key)
        if previous is None:
            continue
        _signer_change(previous, artifact, diff)
        if previous.digest == artifact.digest:
            diff.unchanged += 1
            continue
        what = {"image": "tag moved", "chart": "republished", "git": "ref moved"}.get(artifact.kind, "changed")
        if artifact.kind == "image" and version_of(artifact) is None:
            what = "changed"
        versions = (version_of(previous), version_of(artifact))
        if artifact.kind == "file":  # its name is its identity here: the versions shown are its bytes' sha256
            what = "other bytes" if previous.source == artifact.source else f"other source (was {previous.source})"
            versions = (file_digest(previous), file_digest(artifact))
        diff.changed.append(Change(artifact.kind, artifact.source, what, previous.digest, artifact.digest, *versions))
        if artifact.kind == "git":
            gits.append((previous, artifact))
    gone = [a for k, a in before.items() if k not in after]
    fresh = [a for k, a in after.items() if k not in before]
    # A chart family with exactly one version leaving and one arriving is a version bump.
    leaving: dict[tuple[str, str], list[ArtifactRecord]] = defaultdict(list)
    arriving: dict[tuple[str, str], list[ArtifactRecord]] = defaultdict(list)
    for artifact in gone:
        if artifact.kind == "chart":
            leaving[_chart_family(artifact)].append(artifact)
    for artifact in fresh:
        if artifact.kind == "chart":
            arriving[_chart_family(artifact)].append(artifact)
    bumped: set[int] = set()
    for family, olds in leaving.items():
        news = arriving.get(family, [])
        if len(olds) == 1 and len(news) == 1:
            previous, artifact = olds[0], news[0]
            bumped |= {id(previous), id(artifact)}
            diff.changed.append(
                Change(
                    "chart",
                    f"{family[0]} {family[1]}",
                    "version bump",
                    previous.digest,
                    artifact.digest,
                    version_of(previous),
                    version_of(artifact),
                )
            )
    diff.removed = [a for a in gone if id(a) not in bumped]
    diff.added = [a for a in fresh if id(a) not in bumped]
    return gits


def _signer_change(old: ArtifactRecord, new: ArtifactRecord, diff: Diff) -> None:
    before, after = recorded_signers(old), recorded_signers(new)
    if set(before) == set(after):
        return
    what = "signer added" if not before else "signer removed" if not after else "signer changed"
    diff.signers.append(SignerChange(new.kind, new.source, what, before, after, old.digest != new.digest))


def _attached(source: Source) -> set[str]:
    return {a.source for a in source.inventory.artifacts if a.kind == ATTACHED}


def _ref_moves(old: ArtifactRecord, new: ArtifactRecord) -> list[RefMove]:
    before, after = _refs(old), _refs(new)
    moves = []
    for ref in sorted(set(before) | set(after)):
        if before.get(ref) != after.get(ref):
            moves.append(RefMove(new.source, ref, before.get(ref), after.get(ref)))
    return moves


def _read_history(history: GitHistory, source: Source, artifact: ArtifactRecord, namespace: str) -> str | None:
    if source.reader is None:
        return "an inventory file carries no git objects"
    if not _carries(source, artifact):
        return f"the git bundle {artifact.digest} is not in {source.location}"
    try:
        history.add(source.reader, artifact.digest, _heads(artifact), namespace)
    except MirrorError as exc:
        if _incremental(artifact):
            return (
                f"commits not read: the git bundle {artifact.digest} in {source.location} is incremental; "
                f"its {len(artifact.extra['prerequisites'])} prerequisite commit(s) are in its own base chain, "
                "which was not given"
            )
        return history_error(exc)
    return None


def _carries(source: Source, artifact: ArtifactRecord) -> bool:
    return source.reader is not None and blob_path(artifact.digest) in source.reader.files()


def _incremental(artifact: ArtifactRecord) -> bool:
    prerequisites = artifact.extra.get("prerequisites")
    return isinstance(prerequisites, list) and bool(prerequisites)


def _carried(history: GitHistory, new: Source, artifact: ArtifactRecord, moves: list[RefMove]) -> None:
    """The commits of each move read from NEW's incremental git bundle alone (its thin pack's whole commits)."""
    assert new.reader is not None
    try:
        carried = CarriedCommits(history.scratch, new.reader, artifact.digest)
    except MirrorError as exc:
        for move in moves:
            move.note = history_error(exc)
        return
    before = f" (its base: bundle {new.base.bundle_id})" if new.base is not None else ""
    for move in moves:
        assert move.old and move.new
        log = carried.log(move.old, move.new)
        move.commits, move.total, move.dropped, move.note = log.commits, log.total, log.dropped, log.note
        if log.note.startswith("only the"):
            move.note += before


def _commits(
    old: Source, new: Source, pairs: list[tuple[ArtifactRecord, ArtifactRecord]], diff: Diff, read: bool
) -> None:
    moves = [_ref_moves(previous, artifact) for previous, artifact in pairs]
    for found in moves:
        diff.refs += found
    if not read or not any(m.old and m.new for found in moves for m in found):
        return
    with git_history() as history:
        for index, ((previous, artifact), found) in enumerate(zip(pairs, moves, strict=True)):
            moved = [m for m in found if m.old and m.new]
            if not moved:
                continue
            # OLD's git bundle first, so that NEW's incremental one finds its prerequisites; NEW's is tried
            # even when OLD's cannot be read (a whole NEW may hold the old commits itself).
            old_problem = _read_history(history, old, previous, f"old{index}")
            new_problem = _read_history(history, new, artifact, f"new{index}")
            if new_problem is None:
                for move in moved:
                    assert move.old and move.new
                    log = history.log(move.old, move.new)
                    move.commits, move.total, move.dropped, move.note = log.commits, log.total, log.dropped, log.note
                    if log.note and old_problem:
                        move.note = old_problem
            elif _incremental(artifact) and _carries(new, artifact):
                _carried(history, new, artifact, moved)
            else:
                for move in moved:
                    move.note = old_problem or new_problem


def _fleets(old: Source, new: Source, diff: Diff) -> None:
    """The objects of each Flux fleet that is new or changed, read from both bundles (not from inventory files)."""
    if new.reader is None:
        return
    diff.flux_read = True
    before = {_key(a): a for a in old.inventory.artifacts if a.kind == "flux"}
    for artifact in new.inventory.artifacts:
        previous = before.get(_key(artifact))
        if artifact.kind != "flux" or (previous is not None and previous.digest == artifact.digest):
            continue
        change = FleetChange(artifact.source, str(artifact.extra.get("path") or ""))
        diff.flux.append(change)
        try:
            objects = read_objects(new.reader, artifact)
            if previous is not None and old.reader is None:
                change.note = f"the objects before are not in {old.location}, an inventory file"
                continue
            earlier = read_objects(old.reader, previous) if previous is not None and old.reader is not None else []
        except MirrorError as exc:
            change.note = f"objects not read: {exc.message}"
            continue
        change.objects = object_changes(earlier, objects)


def _needed(source: Source) -> dict[str, int]:
    """Every blob the bundle's artifacts need: carried, or expected from its base chain."""
    return {**dict(source.expected), **source.blob_sizes}


def diff_sources(old: Source, new: Source, *, commits: bool = True) -> Diff:
    """What changed from old to new. commits=False compares the inventories only: moved refs without their
    commits, so no git bundle is read (cheap enough for every collect's report)."""
    diff = Diff(
        old.location,
        old.inventory.bundle_id,
        "sha256:" + old.inventory_sha256,
        new.location,
        new.inventory.bundle_id,
    )
    pairs = _match(old, new, diff)
    before_attached, after_attached = _attached(old), _attached(new)
    diff.attached_added, diff.attached_removed = (
        len(after_attached - before_attached),
        len(before_attached - after_attached),
    )
    _commits(old, new, pairs, diff, commits)
    _fleets(old, new, diff)
    for source, artifacts in ((new, diff.added), (old, diff.removed)):
        for artifact in artifacts:
            size = content_size(source.reader, artifact)
            if size is not None:
                diff.sizes[_key(artifact)] = size
    before = _needed(old)
    # What new leaves to its base is not new when old is that base: an incremental inventory need not list
    # (nor old have listed) a blob beneath a manifest the chain holds.
    after = new.blob_sizes if new.base is not None and new.base.inventory == diff.old_inventory else _needed(new)
    diff.new_blobs = sorted((d, s) for d, s in after.items() if d not in before)
    if new.base is not None and new.base.inventory != diff.old_inventory:
        diff.notes.append(
            f"{new.location} names base {new.base.inventory} (bundle {new.base.bundle_id}), "
            f"not {old.location} ({diff.old_inventory})"
        )
    return diff


def summary_counts(diff: Diff) -> dict[str, Any]:
    return {
        "added": len(diff.added),
        "removed": len(diff.removed),
        "changed": len(diff.changed),
        "movedTags": len(diff.moved_tags),
        "versionBumps": len(diff.version_bumps),
        "movedRefs": len(diff.refs),
        "newBlobs": len(diff.new_blobs),
        "newBlobBytes": diff.new_blob_bytes,
        "signerChanges": len(diff.signers),
        "signerAlarms": len(diff.signer_alarms),
        "attachedAdded": diff.attached_added,
        "attachedRemoved": diff.attached_removed,
        "fluxObjectChanges": sum(len(f.objects) for f in diff.flux) if diff.flux_read else None,
        "supplyChainEvents": len(diff.events),
    }
