"""Checking a bundle before anything is written anywhere: every file against the inventory, then the OCI graph.

See docs/bundle-format.md ("Verifying a bundle").
"""

from __future__ import annotations

import hashlib
import io
import mmap
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import chain
from typing import cast

from mirror.bundle.attached import check_attached
from mirror.bundle.inventory import INVENTORY_PATH, ArtifactRecord, FileRecord, Inventory, blob_path, parse_inventory
from mirror.bundle.reader import BundleReader, opened, read_small
from mirror.bundle.signatures import is_signature_path, read_envelopes
from mirror.bundle.volumes import check_volumes, streamed_sha256
from mirror.errors import IntegrityError, InvalidDocumentError, MirrorError, Problem, cap_problems
from mirror.limits import DEFAULT_LIMITS, Limits
from mirror.oci.document import Descriptor, ManifestDocument, parse_descriptor, parse_manifest, strict_json
from mirror.oci.fileartifact import file_layer
from mirror.parallel import run_parallel
from mirror.progress import Progress
from mirror.supplychain.attached import ATTACHED
from mirror.supplychain.roots import TRUSTED_ROOT_KIND

OnBytes = Callable[[int], None]
REF_NAME = "org.opencontainers.image.ref.name"


@dataclass
class VerifiedImage:
    artifact: ArtifactRecord
    manifests: list[ManifestDocument]  # children before parents: the order they must be pushed in
    blobs: dict[str, int]  # digest → size of every config and layer
    # Of an incremental bundle: manifests and blobs the base chain carried; they must be on the target already.
    expected_manifests: dict[str, int] = field(default_factory=dict)
    expected_blobs: dict[str, int] = field(default_factory=dict)

    @property
    def top(self) -> ManifestDocument:
        return self.manifests[-1]

    @property
    def carried(self) -> bool:
        """False when the image's top manifest is expected: nothing of it is in this bundle."""
        return bool(self.manifests) and self.manifests[-1].digest == self.artifact.digest


@dataclass
class VerifiedBundle:
    """A bundle as checked: its inventory (and that file's sha256), images, envelopes and every problem."""

    reader: BundleReader
    inventory: Inventory
    inventory_sha256: str
    images: list[VerifiedImage] = field(default_factory=list)
    # Manifests attached to carried ones (signatures, attestations, SBOMs): checked as image graphs are, and
    # kept apart from the images, whose landing and tags they do not share.
    attached: list[VerifiedImage] = field(default_factory=list)
    git: list[ArtifactRecord] = field(default_factory=list)  # git bundle blobs; their refs are checked at import
    flux: list[ArtifactRecord] = field(default_factory=list)  # Flux objects, written rewritten by --flux-out
    envelopes: dict[str, bytes] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    files_checked: bool = False  # False while only the inventory and envelopes were read
    # Image blobs whose bytes are not hashed yet: an import hashes them while it streams them into upload sessions
    # (importer/streaming.py), and commits nothing before they all matched. Empty unless check_contents deferred.
    deferred: list[FileRecord] = field(default_factory=list)

    def raise_problems(self, what: str, hint: str) -> None:
        if self.problems:
            raise IntegrityError(f"{self.reader.location}: {what}", problems=self.problems, hint=hint)


def _hash_file(reader: BundleReader, path: str, buffer: memoryview, on_bytes: OnBytes) -> str:
    known = streamed_sha256(reader, path)
    if known is not None:
        return known
    digest = hashlib.sha256()
    with opened(reader, path) as handle:
        read_into = cast("io.BufferedIOBase", handle).readinto
        while count := read_into(buffer):
            digest.update(buffer[:count])  # hashlib lets go of the GIL for the update: files hash in parallel
            on_bytes(count)
    return digest.hexdigest()


def hash_problem(record: FileRecord, actual: str) -> Problem | None:
    """The problem of a file whose bytes hash to `actual` (hex), if the inventory says otherwise."""
    if actual != record.sha256:
        return Problem("FILE_DIGEST", f"{record.path}: sha256 {actual}, the inventory says {record.sha256}")
    return None


def check_file_hashes(
    reader: BundleReader, records: list[FileRecord], *, jobs: int, limits: Limits, on_bytes: OnBytes
) -> list[Problem]:
    """The sha256 of each file, in as many threads as `jobs` or the cores, whichever is more (hashlib lets go of
    the GIL while it hashes a read; reading a bundle is no network work); problems in the order of `records`.

    The largest files first: a file hashes on one thread, and a big one taken last would leave the other cores
    idle while it ends. Each thread reads every file it hashes into one page-aligned buffer of its own, allocated
    once: a fresh one per file cost a small file more than its hashing (page faults of verify_read_bytes).
    """
    buffers = threading.local()
    size = max(1, min(limits.verify_read_bytes, max((r.size for r in records), default=0)))

    def check(record: FileRecord) -> Problem | None:
        buffer = getattr(buffers, "buffer", None)
        if buffer is None:  # no bigger than the largest file: a bundle of small files faults in little memory
            # An anonymous mapping starts on a page. malloc puts a big block 16 bytes past a 64-byte boundary,
            # where the kernel's copy from the page cache ran 4 to 5 times slower (AMD EPYC): a third of the CPU.
            buffer = buffers.buffer = memoryview(mmap.mmap(-1, size))
        return hash_problem(record, _hash_file(reader, record.path, buffer, on_bytes))

    order = sorted(range(len(records)), key=lambda index: (-records[index].size, index))
    found = run_parallel([records[index] for index in order], check, max(jobs, _cores()))
    by_index = dict(zip(order, found, strict=True))
    return [p for index in range(len(records)) if (p := by_index[index]) is not None]


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def check_files(
    reader: BundleReader,
    inventory: Inventory,
    *,
    jobs: int,
    limits: Limits,
    on_bytes: OnBytes,
    deferred: list[FileRecord] | None = None,
    defer_from: int | None = None,
) -> list[Problem]:
    """Sizes first, then sha256 of every listed file; files missing from either side are problems too.

    Envelopes under signatures/ are the one exception to "every file is listed": they sign the inventory.
    At most limits.max_problems problems are listed, the rest counted by code in one summary.
    defer_from: blobs of at least this size, named by their own sha256, are not hashed but added to `deferred`.
    """
    present = reader.files()
    listed = {f.path: f for f in inventory.files}
    missing = (
        Problem("FILE_MISSING", f"{path}: listed in the inventory but missing")
        for path in sorted(listed)
        if path not in present
    )
    unlisted = (
        Problem("FILE_UNLISTED", f"{path}: present but not listed in the inventory")
        for path in sorted(present)
        if path not in listed and path != INVENTORY_PATH and not is_signature_path(path)
    )
    problems = cap_problems(chain(missing, unlisted), limits.max_problems)
    to_hash = []
    wrong_size = []
    for path, record in sorted(listed.items()):
        if path not in present:
            continue
        if present[path] != record.size:
            wrong_size.append(Problem("FILE_SIZE", f"{path}: {present[path]} bytes, the inventory says {record.size}"))
        elif deferred is not None and defer_from is not None and _deferrable(reader, record, defer_from):
            deferred.append(record)
        else:
            to_hash.append(record)
    digests = check_file_hashes(reader, to_hash, jobs=jobs, limits=limits, on_bytes=on_bytes)
    return cap_problems(chain(problems, wrong_size, digests), limits.max_problems)


def _deferrable(reader: BundleReader, record: FileRecord, defer_from: int) -> bool:
    """A big blob named by the sha256 the inventory gives it, not hashed already with its volume."""
    return (
        record.size >= defer_from
        and record.path == blob_path("sha256:" + record.sha256)
        and streamed_sha256(reader, record.path) is None
    )


def _read_index(reader: BundleReader, limits: Limits) -> list[Descriptor]:
    body = strict_json(read_small(reader, "index.json", limits.max_index_json_bytes), "index.json")
    if not isinstance(body, dict) or body.get("schemaVersion") != 2 or not isinstance(body.get("manifests"), list):
        raise InvalidDocumentError("index.json: not an OCI image index")
    return [parse_descriptor(d, f"index.json manifests[{i}]") for i, d in enumerate(body["manifests"])]


class _GraphWalker:
    def __init__(self, reader: BundleReader, inventory: Inventory, limits: Limits) -> None:
        self.reader = reader
        self.sizes = {f.path: f.size for f in inventory.files}
        self.expected = inventory.expected_sizes
        self.limits = limits

    def manifest(self, descriptor: Descriptor, where: str) -> ManifestDocument:
        path = blob_path(descriptor.digest)
        if path not in self.sizes:
            raise InvalidDocumentError(f"{where}: manifest {descriptor.digest} is not in the bundle")
        if self.sizes[path] != descriptor.size:
            raise InvalidDocumentError(
                f"{where}: manifest {descriptor.digest} is {self.sizes[path]} bytes, "
                f"its descriptor says {descriptor.size}"
            )
        raw = read_small(self.reader, path, self.limits.max_manifest_bytes)
        if "sha256:" + hashlib.sha256(raw).hexdigest() != descriptor.digest:
            raise IntegrityError(f"{where}: manifest {descriptor.digest} changed since it was verified")
        return parse_manifest(raw, declared_type=descriptor.media_type, where=f"{where} {descriptor.digest}")

    def walk(self, descriptor: Descriptor, where: str, image: VerifiedImage, depth: int = 0) -> None:
        if depth > self.limits.max_graph_depth:
            raise InvalidDocumentError(f"{where}: indexes nested deeper than {self.limits.max_graph_depth}")
        if not descriptor.is_manifest:
            raise InvalidDocumentError(
                f"{where}: {descriptor.digest} has unsupported media type {descriptor.media_type}"
            )
        if blob_path(descriptor.digest) not in self.sizes and descriptor.digest in self.expected:
            if self.expected[descriptor.digest] != descriptor.size:
                raise InvalidDocumentError(
                    f"{where}: expected manifest {descriptor.digest} is listed with another size than its descriptor's"
                )
            image.expected_manifests[descriptor.digest] = descriptor.size  # the base chain has its whole graph
            return
        document = self.manifest(descriptor, where)
        for child in document.manifests:
            self.walk(child, where, image, depth + 1)
        for blob in document.blobs:
            size = self.sizes.get(blob_path(blob.digest))
            if size is None and blob.digest in self.expected:
                if self.expected[blob.digest] != blob.size:
                    raise InvalidDocumentError(f"{where}: expected blob {blob.digest} is listed with another size")
                image.expected_blobs[blob.digest] = blob.size
                continue
            if size is None:
                raise InvalidDocumentError(f"{where}: blob {blob.digest} is not in the bundle")
            if size != blob.size:
                raise InvalidDocumentError(
                    f"{where}: blob {blob.digest} is {size} bytes, its descriptor says {blob.size}"
                )
            image.blobs[blob.digest] = blob.size
        if all(m.digest != document.digest for m in image.manifests):
            image.manifests.append(document)


def _check_git(artifact: ArtifactRecord, sizes: dict[str, int], expected: dict[str, int]) -> list[Problem]:
    where = f"git source {artifact.source}"
    heads = artifact.extra.get("heads")
    if (
        not isinstance(heads, dict)
        or not heads
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in heads.items())
    ):
        return [Problem("GRAPH_INVALID", f"{where}: the inventory lists no refs for it")]
    if expected.get(artifact.digest) == artifact.size and blob_path(artifact.digest) not in sizes:
        return []  # nothing new since the base chain: the target must hold these refs already
    if sizes.get(blob_path(artifact.digest)) != artifact.size:
        return [Problem("GRAPH_INVALID", f"{where}: its bundle {artifact.digest} is missing or of another size")]
    return []


def _file_problem(image: VerifiedImage, where: str) -> Problem | None:
    """A file artifact: one layer titled with its name, holding the bytes its record names."""
    extra = image.artifact.extra
    name, sha256, size = extra.get("name"), extra.get("fileSha256"), extra.get("fileSize")
    if not image.carried:
        return None  # left to the base chain, which was checked when it was imported
    try:
        layer = file_layer(image.top, str(name), where)
    except MirrorError as exc:
        return Problem("GRAPH_INVALID", str(exc))
    if (layer.digest, layer.size) != (f"sha256:{sha256}", size):
        return Problem("GRAPH_INVALID", f"{where}: its layer is not the file its record names")
    return None


def check_graph(
    reader: BundleReader, inventory: Inventory, limits: Limits
) -> tuple[list[VerifiedImage], list[VerifiedImage], list[Problem]]:
    """Walk every image, chart and attached manifest from index.json: each manifest present and parseable, each
    blob present with its size; then what the attached manifests are attached to. Returns the images and charts,
    the attached manifests, and every problem."""
    problems: list[Problem] = []
    try:
        entries = {d.digest: d for d in _read_index(reader, limits)}
    except MirrorError as exc:
        return [], [], [Problem("GRAPH_INVALID", str(exc))]
    walker = _GraphWalker(reader, inventory, limits)
    images: list[VerifiedImage] = []
    attached: list[VerifiedImage] = []
    for artifact in inventory.artifacts:
        where = f"artifact {artifact.source}"
        if artifact.kind == "git":
            problems += _check_git(artifact, walker.sizes, walker.expected)
            continue
        if artifact.kind == "flux":
            if walker.sizes.get(blob_path(artifact.digest)) != artifact.size:
                problems.append(Problem("GRAPH_INVALID", f"Flux objects {artifact.source}: blob missing or resized"))
            continue
        if artifact.kind == TRUSTED_ROOT_KIND:  # read at import to verify keyless signatures, never pushed
            if walker.sizes.get(blob_path(artifact.digest)) != artifact.size:
                problems.append(Problem("GRAPH_INVALID", f"trusted root {artifact.source}: blob missing or resized"))
            continue
        if artifact.kind not in ("image", "chart", "file", ATTACHED):
            problems.append(Problem("ARTIFACT_UNSUPPORTED", f"{where}: kind {artifact.kind!r} is not supported"))
            continue
        entry = entries.get(artifact.digest)
        if entry is None and artifact.digest in walker.expected:
            entry = Descriptor(artifact.media_type, artifact.digest, artifact.size)  # left to the base chain
        if entry is None:
            problems.append(Problem("GRAPH_INVALID", f"{where}: {artifact.digest} is not in index.json"))
            continue
        if (entry.media_type, entry.size) != (artifact.media_type, artifact.size):
            problems.append(Problem("GRAPH_INVALID", f"{where}: index.json and the inventory disagree"))
            continue
        image = VerifiedImage(artifact, [], {})
        try:
            walker.walk(entry, where, image)
        except MirrorError as exc:
            problems.append(Problem("GRAPH_INVALID", str(exc)))
            continue
        if artifact.kind == "file" and (problem := _file_problem(image, where)) is not None:
            problems.append(problem)
            continue
        (attached if artifact.kind == ATTACHED else images).append(image)
    problems += check_attached(images, attached, inventory)
    return images, attached, problems


def read_signed_part(reader: BundleReader, limits: Limits = DEFAULT_LIMITS) -> VerifiedBundle:
    """The inventory (bounded) and the envelopes: all a trust verdict depends on, and cheap to read.

    Envelope problems are in `problems`; the files are not checked yet (`files_checked` is False).
    Raises only for an unusable inventory.
    """
    raw = read_small(reader, INVENTORY_PATH, limits.max_inventory_bytes)
    inventory = parse_inventory(raw)
    checked = VerifiedBundle(reader, inventory, hashlib.sha256(raw).hexdigest())
    checked.envelopes, checked.problems = read_envelopes(reader, limits)
    return checked


def check_contents(
    checked: VerifiedBundle,
    *,
    jobs: int = 4,
    limits: Limits = DEFAULT_LIMITS,
    progress: Progress | None = None,
    defer_from: int | None = None,
) -> None:
    """Check every file of a bundle whose signed part was read, then the image graph; adds every problem.

    defer_from (import): the images' blobs of at least this size are left unhashed, in `checked.deferred`; every
    other file is hashed, and the graph is walked from manifests that check their own digest as they are read.
    """
    progress = progress or Progress(quiet=True)
    reader, inventory = checked.reader, checked.inventory
    deferred: list[FileRecord] = []
    progress.start("verify", inventory.total_size)
    problems = check_volumes(reader, inventory, progress.advance)
    if not problems:  # files are indexed from volumes proven intact; a wrong volume would only add noise
        problems = check_files(
            reader,
            inventory,
            jobs=jobs,
            limits=limits,
            on_bytes=progress.advance,
            deferred=deferred,
            defer_from=defer_from,
        )
    progress.finish()
    if not problems:
        # The graph is read from files just proven intact (or, deferred, from manifests that check their own
        # digest); on a damaged bundle it would only add noise.
        checked.images, checked.attached, problems = check_graph(reader, inventory, limits)
        checked.git = [a for a in inventory.artifacts if a.kind == "git"]
        checked.flux = [a for a in inventory.artifacts if a.kind == "flux"]
    # A bundle refused already has its deferred files hashed too, so the refusal lists every problem.
    checked.deferred, unused = ([], deferred) if problems else _images_blobs(checked, deferred)
    # Deferred files that are no image's blob (a Git bundle, an attached layer, a file nothing names) are
    # hashed now: something other than an upload reads them before the commit.
    problems += check_file_hashes(reader, unused, jobs=jobs, limits=limits, on_bytes=_no_bytes)
    checked.problems = cap_problems([*problems, *checked.problems], limits.max_problems)
    checked.files_checked = True


def _no_bytes(_: int) -> None:
    pass


def _images_blobs(checked: VerifiedBundle, deferred: list[FileRecord]) -> tuple[list[FileRecord], list[FileRecord]]:
    """The deferred files that are blobs of images only (not of attached manifests, which are read to judge
    signatures, nor the blob of a Git, Flux or trusted-root artifact, which the import reads before it uploads
    anything), and the others."""
    attached = {digest for image in checked.attached for digest in image.blobs}
    read_first = {a.digest for a in checked.inventory.artifacts if a.kind not in ("image", "chart", "file", ATTACHED)}
    images = {digest for image in checked.images for digest in image.blobs} - attached - read_first
    keep = [r for r in deferred if "sha256:" + r.sha256 in images]
    return keep, [r for r in deferred if "sha256:" + r.sha256 not in images]


def finish_deferred(
    checked: VerifiedBundle, *, jobs: int, limits: Limits, progress: Progress | None = None
) -> list[Problem]:
    """Hash the files check_contents deferred (nothing is uploaded: a dry run, `verify`); their problems."""
    progress = progress or Progress(quiet=True)
    progress.start("verify", sum(r.size for r in checked.deferred))
    problems = check_file_hashes(checked.reader, checked.deferred, jobs=jobs, limits=limits, on_bytes=progress.advance)
    progress.finish()
    return problems


def add_problems(checked: VerifiedBundle, problems: list[Problem], limits: Limits) -> None:
    """The deferred files were hashed (or streamed): their problems join the bundle's, and none is deferred."""
    checked.deferred = []
    checked.problems = cap_problems([*problems, *checked.problems], limits.max_problems)


def check_bundle(
    reader: BundleReader,
    *,
    jobs: int = 4,
    limits: Limits = DEFAULT_LIMITS,
    progress: Progress | None = None,
    defer_from: int | None = None,
) -> VerifiedBundle:
    """Check every file, then the image graph, collecting every problem; raises only for an unusable inventory.

    No trust policy here (--allow-unsigned, inspect): everything is checked. With a policy, trust/check.py
    judges the signatures between the two steps and hashes nothing when they already refuse.
    """
    checked = read_signed_part(reader, limits)
    check_contents(checked, jobs=jobs, limits=limits, progress=progress, defer_from=defer_from)
    return checked


def verify_bundle(
    reader: BundleReader,
    *,
    jobs: int = 4,
    limits: Limits = DEFAULT_LIMITS,
    progress: Progress | None = None,
    defer_from: int | None = None,
) -> VerifiedBundle:
    """Check the bundle and raise IntegrityError listing every problem found (defer_from: see check_contents)."""
    checked = check_bundle(reader, jobs=jobs, limits=limits, progress=progress, defer_from=defer_from)
    raise_integrity(checked)
    return checked


def raise_integrity(checked: VerifiedBundle) -> None:
    """IntegrityError listing every problem of a bundle checked without a trust policy, if it has any."""
    checked.raise_problems(
        "the bundle does not match its inventory",
        "the bundle was damaged or altered in transit; nothing was imported",
    )
