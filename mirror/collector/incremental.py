"""Incremental bundles on the connected side (`--since`): what a base chain already carried, and what to
leave to it. See docs/collector.md ("Incremental collects").
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from mirror.bundle.inventory import (
    INVENTORY_PATH,
    ArtifactRecord,
    BaseRecord,
    ExpectedBlob,
    Inventory,
    parse_inventory,
)
from mirror.bundle.layout import LayoutWriter
from mirror.bundle.opening import open_bundle
from mirror.bundle.reader import BundleReader, read_small
from mirror.errors import MirrorError, UsageError
from mirror.fsutil import atomic_write
from mirror.limits import DEFAULT_LIMITS, Limits
from mirror.oci.document import ManifestDocument
from mirror.oci.mediatypes import INDEXES

BESIDE_SUFFIX = ".inventory.json"

_GRAPH_KINDS = ("image", "chart", "file", "attached")

# An artifact and the manifest (or index) it lands as: the top of its graph.
Graph = tuple[ArtifactRecord, ManifestDocument]


def beside_path(out: Path) -> Path:
    """Where collect writes the copy of a bundle's inventory: OUT's whole name plus `.inventory.json`, so that a
    directory bundle `night` and a tar `night.tar` beside it keep one each (`--since` reads any such file, the
    copies older versions wrote for a tar as `night.inventory.json` included)."""
    return out.with_name(out.name + BESIDE_SUFFIX)


def read_base_inventory(path: Path, limits: Limits = DEFAULT_LIMITS) -> bytes:
    """The inventory bytes of PREV: an inventory file, or a bundle in any form open_bundle reads."""
    return _read_base(path, limits)[0]


def _read_base(path: Path, limits: Limits) -> tuple[bytes, BundleReader | None]:
    """PREV's inventory bytes, and PREV opened when it is a bundle (None for an inventory file)."""
    if path.is_file() and path.name.endswith(".json"):
        with open(path, "rb") as handle:
            raw = handle.read(limits.max_inventory_bytes + 1)
        if len(raw) > limits.max_inventory_bytes:
            raise UsageError(f"--since {path}: more than {limits.max_inventory_bytes} bytes; not an inventory")
        return raw, None
    reader = open_bundle(path, limits)
    return read_small(reader, INVENTORY_PATH, limits.max_inventory_bytes), reader


@dataclass(frozen=True)
class MovedTag:
    """An upstream reference whose digest changed since the base: a tag re-pushed, or a chart re-published."""

    kind: str
    source: str
    old: str  # manifest digests
    new: str
    # A file's own sha256 before and after (`sha256:<hex>`): what an officer compares with the publisher's checksum.
    file_old: str | None = None
    file_new: str | None = None

    def to_json(self) -> dict[str, object]:
        moved: dict[str, object] = {"kind": self.kind, "source": self.source, "old": self.old, "new": self.new}
        if self.file_old is not None and self.file_new is not None:
            moved["fileSha256"] = {"old": self.file_old, "new": self.file_new}
        return moved

    def warning(self) -> str:
        if self.file_old is not None and self.file_new is not None:
            return f"{self.source}: moved since the base, from file {self.file_old} to {self.file_new}"
        return f"{self.source}: moved since the base, from {self.old} to {self.new}"


def _file_sha256(artifact: ArtifactRecord) -> str | None:
    sha = artifact.extra.get("fileSha256") if artifact.kind == "file" else None
    return f"sha256:{sha}" if isinstance(sha, str) else None


@dataclass(frozen=True)
class BaseChain:
    """PREV as an incremental collect sees it."""

    record: BaseRecord
    inventory: Inventory
    have: dict[str, int]  # digest → size of every blob the chain up to PREV carried
    # PREV opened, when it is a bundle: its manifests are read from it (mirror.collector.known), and a tar's
    # headers are walked once, not again
    reader: BundleReader | None = None

    def git_record(self, url: str, name: str) -> ArtifactRecord | None:
        """PREV's record of this git source: same URL, preferably the same name."""
        records = [a for a in self.inventory.artifacts if a.kind == "git" and a.source == url]
        return next((a for a in records if a.extra.get("name") == name), records[0] if records else None)

    def git_commits(self, url: str) -> list[str]:
        """Every commit and tag object PREV's chain brought to the target repository of `url`."""
        found: set[str] = set()
        for record in self.inventory.artifacts:
            if record.kind != "git" or record.source != url:
                continue
            for key in ("heads", "unchanged"):
                refs = record.extra.get(key)
                if isinstance(refs, dict):
                    found.update(v for v in refs.values() if isinstance(v, str))
        return sorted(found)

    @cached_property
    def _artifact_keys(self) -> frozenset[tuple[str, str, str]]:
        return frozenset((a.kind, a.source, a.digest) for a in self.inventory.artifacts)

    def unchanged(self, artifact: ArtifactRecord) -> bool:
        """The same source on the same digest as in PREV: its target repository has the whole graph."""
        return (artifact.kind, artifact.source, artifact.digest) in self._artifact_keys

    def add_unchanged_graphs(self, graphs: Iterable[Graph], read: Callable[[str], ManifestDocument | None]) -> None:
        """What the chain has beneath every unchanged artifact's manifest, added to `have`.

        PREV need not list it (its `expected` names no blob beneath a manifest it leaves to its own base), but
        an unchanged manifest is in its target repository with its whole graph: a changed image sharing one of
        those blobs leaves it to the chain instead of carrying it again.
        """
        collected = set()
        for artifact, document in graphs:
            collected.add(artifact.digest)
            if self.unchanged(artifact):
                self.have.update(beneath(document, read))
        self._add_dropped(collected, read)

    def _add_dropped(self, collected: set[str], read: Callable[[str], ManifestDocument | None]) -> None:
        """The same for PREV's artifacts this collect no longer has (a cosign tag that moved, an image removed
        from the MirrorSet), where their manifest is held locally; the others' blobs are carried again if needed."""
        for artifact in self.inventory.artifacts:
            if artifact.digest in collected or artifact.kind not in _GRAPH_KINDS:
                continue
            document = read(artifact.digest)
            if document is not None:
                self.have.update(beneath(document, read))

    def changed_manifests(
        self,
        graphs: Iterable[tuple[ArtifactRecord, ManifestDocument]],
        read: Callable[[str], ManifestDocument | None] = lambda _: None,
    ) -> set[str]:
        """The manifests to carry even if the chain has them: those of every artifact not unchanged.

        Registries keep manifests per repository, and a manifest cannot be mounted; so only an unchanged
        artifact (same source, same digest, hence the same target repository) leaves its manifests to the base.
        `read` gives a child document, so that indexes nested in indexes are followed to their leaves.
        """
        carried: set[str] = set()

        def carry(document: ManifestDocument, depth: int) -> None:
            carried.add(document.digest)
            for child in document.manifests:
                if child.digest in carried:
                    continue
                carried.add(child.digest)
                followed = child.media_type in INDEXES and depth < DEFAULT_LIMITS.max_base_index_depth
                nested = read(child.digest) if followed else None
                if nested is not None:
                    carry(nested, depth + 1)

        for artifact, document in graphs:
            if not self.unchanged(artifact):
                carry(document, 0)
        return carried

    def moved(self, artifacts: Iterable[ArtifactRecord]) -> list[MovedTag]:
        """Images, charts and files whose source now resolves to another digest than in PREV."""
        kinds = ("image", "chart", "file")
        before = {(a.kind, a.source): a for a in self.inventory.artifacts if a.kind in kinds}
        moved = []
        for artifact in artifacts:
            old = before.get((artifact.kind, artifact.source))
            if old is not None and old.digest != artifact.digest:
                files = (_file_sha256(old), _file_sha256(artifact))
                moved.append(MovedTag(artifact.kind, artifact.source, old.digest, artifact.digest, *files))
        return moved


def chain_from_inventory(raw: bytes, where: str) -> BaseChain:
    """The have-set of a base: the blobs it carried as files, and the blobs it expected from its own base."""
    try:
        inventory = parse_inventory(raw)
    except MirrorError as exc:
        raise UsageError(
            f"--since {where}: {exc.message}", hint="give a bundle or inventory that collect wrote"
        ) from exc
    have = {f"sha256:{f.sha256}": f.size for f in inventory.files if f.path.startswith("blobs/")}
    have.update(inventory.expected_sizes)  # what it listed, and the artifacts it left to its own base
    record = BaseRecord("sha256:" + hashlib.sha256(raw).hexdigest(), inventory.bundle_id, inventory.created)
    return BaseChain(record, inventory, have)


def load_base(path: Path, limits: Limits = DEFAULT_LIMITS) -> BaseChain:
    if not path.exists():
        raise UsageError(f"--since {path}: no such bundle or inventory file")
    try:
        raw, reader = _read_base(path, limits)
        return dataclasses.replace(chain_from_inventory(raw, str(path)), reader=reader)
    except UsageError:
        raise
    except MirrorError as exc:  # an unreadable PREV is a bad flag value (2), not a refused bundle (3)
        raise UsageError(f"--since {path}: {exc.message}", hint="give a bundle or its .inventory.json") from exc


def leave_to_base(
    chain: BaseChain, writer: LayoutWriter, needed: dict[str, int], keep: Iterable[str] = ()
) -> tuple[ExpectedBlob, ...]:
    """Drop from the layout every blob the chain has, and return what the artifacts now expect from it.

    needed: blobs the artifacts use that may never have been written (image blobs not downloaded, the git
    bundles of sources that did not move). keep: blobs carried regardless (Flux objects, read at import).
    """
    kept = set(keep)
    expected: dict[str, int] = {}
    for digest, size in writer.blob_sizes().items():
        if digest in chain.have and digest not in kept:
            writer.drop(digest)
            expected[digest] = size
    for digest, size in needed.items():
        if not writer.has(digest):
            if digest not in chain.have:
                raise ValueError(f"{digest} is neither carried nor in the base chain")  # a caller bug
            expected[digest] = size
    return tuple(ExpectedBlob(d, expected[d]) for d in sorted(expected))


def beneath(
    document: ManifestDocument, read: Callable[[str], ManifestDocument | None], depth: int = 0
) -> dict[str, int]:
    """Every manifest and blob beneath a manifest or index (children read with `read`), digest → size."""
    found = {blob.digest: blob.size for blob in document.blobs}
    for child in document.manifests:
        found[child.digest] = child.size
        nested = read(child.digest) if depth < DEFAULT_LIMITS.max_graph_depth else None
        if nested is not None:
            found.update(beneath(nested, read, depth + 1))
    return found


def to_list(
    expected: Iterable[ExpectedBlob],
    artifacts: Iterable[ArtifactRecord],
    graphs: Iterable[Graph],
    read: Callable[[str], ManifestDocument | None],
    carried: Callable[[str], bool],
    in_graphs: set[str],
) -> tuple[ExpectedBlob, ...]:
    """What of `expected` the inventory lists: what the high side's walk of the graphs reaches and does not
    find carried, except the artifacts' own manifests (an artifact not carried is expected whole). A blob
    beneath a manifest left to the base is the base's with that manifest, and is not listed; what is in no
    graph (git bundles of sources that did not move, an upstream index's bytes) is listed as before.

    in_graphs: every digest of every graph, beneath the manifests left to the base too.
    """
    reached: set[str] = set()
    walked: set[str] = set()

    def walk(document: ManifestDocument, depth: int) -> None:
        if document.digest in walked:
            return
        walked.add(document.digest)
        for child in document.manifests:
            if not carried(child.digest):
                reached.add(child.digest)
                continue
            nested = read(child.digest) if depth < DEFAULT_LIMITS.max_graph_depth else None
            if nested is None:
                reached.update(in_graphs)  # a carried child unread: list everything, as before
                return
            walk(nested, depth + 1)
        reached.update(blob.digest for blob in document.blobs if not carried(blob.digest))

    tops = {a.digest for a in artifacts}
    for _, document in graphs:
        if carried(document.digest):
            walk(document, 0)
    return tuple(e for e in expected if e.digest not in tops and (e.digest in reached or e.digest not in in_graphs))


def write_beside(path: Path, raw: bytes) -> None:
    """The inventory copy beside a bundle, written whole or not at all."""
    atomic_write(path, raw)
