"""Pushing attached manifests (signatures, attestations, SBOMs) after their subjects: blobs, the manifest by digest,
then cosign's tag, or the referrers tag schema's index where the target does not index subjects itself.

See docs/importer.md ("Attached manifests").
"""

from __future__ import annotations

import threading
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from mirror.errors import InvalidDocumentError, Problem, RegistryHTTPError, UsageError
from mirror.importer.registry import RegistryImporter, Tally
from mirror.landing import ImagePlan
from mirror.limits import Limits
from mirror.oci import mediatypes as mt
from mirror.oci.document import ManifestDocument, parse_manifest
from mirror.oci.referrers import referrer_descriptor, referrers_index, subject_of
from mirror.parallel import run_parallel
from mirror.registry.client import RegistryClient
from mirror.supplychain.attached import Attached, tag_schema_tag
from mirror.terminal import escape

FALLBACK_TAG_INVALID = "FALLBACK_TAG_INVALID"

FallbackKey = tuple[str, str]  # (repository, subject digest)


@dataclass
class AttachedCounts(Tally):
    pushed: int = 0  # manifests pushed by digest (would be, in a dry run)
    present: int = 0  # on the target already
    tags_written: int = 0  # cosign tags put or moved
    indexes_written: int = 0  # referrers tag schema indexes written or extended

    def to_json(self) -> dict[str, int]:
        return {
            "pushed": self.pushed,
            "present": self.present,
            "tagsWritten": self.tags_written,
            "indexesWritten": self.indexes_written,
        }


def read_fallback_index(client: RegistryClient, repository: str, subject: str) -> list[dict[str, Any]]:
    """What the referrers tag schema's index of `subject` lists on the target (nothing when the tag is absent).

    Raises InvalidDocumentError when the tag names anything but an OCI image index.
    """
    tag = tag_schema_tag(subject)
    where = f"{client.endpoint.netloc}/{client.endpoint.repository(repository)}:{tag}"
    try:
        fetched = client.get_manifest(repository, tag)
    except RegistryHTTPError as exc:
        if exc.status == 404:
            return []
        raise
    document = parse_manifest(fetched.raw, declared_type=fetched.media_type, where=where, digest=fetched.digest)
    if document.media_type != mt.OCI_INDEX:
        raise InvalidDocumentError(f"{where}: a {document.media_type}, not the referrers tag schema's image index")
    return [dict(d.raw) for d in document.manifests]


def _fallback_keys(plans: list[ImagePlan]) -> dict[FallbackKey, list[ManifestDocument]]:
    """The fallback indexes the carried attached manifests with a `subject` may have to be listed in."""
    keys: dict[FallbackKey, list[ManifestDocument]] = defaultdict(list)
    for plan in plans:
        if plan.image.carried and (subject := subject_of(plan.image.top)) is not None:
            keys[(plan.repository, subject)].append(plan.image.top)
    return keys


def plan_fallback_indexes(
    client: RegistryClient, plans: list[ImagePlan], *, jobs: int, limits: Limits
) -> dict[FallbackKey, list[dict[str, Any]]]:
    """Before anything is written: every fallback index the import may extend is absent or an OCI image index,
    and stays within the manifest size limit once extended. Returns what each lists; raises UsageError (exit 2)
    listing every problem (the target holds something else under the tag)."""
    keys = _fallback_keys(plans)
    problems: list[Problem] = []
    found: dict[FallbackKey, list[dict[str, Any]]] = {}

    def read(key: FallbackKey) -> list[dict[str, Any]] | InvalidDocumentError:
        try:
            return read_fallback_index(client, *key)
        except InvalidDocumentError as exc:
            return exc

    for key, listed in zip(keys, run_parallel(list(keys), read, jobs), strict=True):
        if isinstance(listed, InvalidDocumentError):
            problems.append(Problem(FALLBACK_TAG_INVALID, escape(listed.message)))
            continue
        known = {d.get("digest") for d in listed}
        extended = listed + [referrer_descriptor(d) for d in keys[key] if d.digest not in known]
        if len(referrers_index(extended)) > limits.max_manifest_bytes:
            problems.append(
                Problem(
                    FALLBACK_TAG_INVALID,
                    f"{key[0]}:{tag_schema_tag(key[1])}: would list {len(extended)} manifests, more than fit in "
                    f"{limits.max_manifest_bytes} bytes (max_manifest_bytes)",
                )
            )
        found[key] = listed
    if problems:
        raise UsageError(
            f"{client.endpoint.netloc}: {len(problems)} tag(s) of the referrers tag schema cannot list what is "
            "attached to the images",
            problems=problems,
            hint="remove or rename those tags on the target, or import into another registry; nothing was written",
        )
    return found


def _levels(plans: list[ImagePlan]) -> list[list[ImagePlan]]:
    """The plans in levels, each after the level holding its subject (a signature after the SBOM it signs)."""
    remaining = list(plans)
    levels = []
    while remaining:
        waiting = {(p.repository, p.image.artifact.digest) for p in remaining}
        level = [p for p in remaining if (p.repository, Attached(p.image.artifact).subject) not in waiting]
        level = level or remaining  # a cycle no honest collector records: pushed together
        levels.append(level)
        placed = {id(p) for p in level}
        remaining = [p for p in remaining if id(p) not in placed]
    return levels


class AttachedPusher:
    """Pushes the attached manifests of a verified bundle, once their subjects are on the target."""

    def __init__(self, importer: RegistryImporter, fallback: dict[FallbackKey, list[dict[str, Any]]]) -> None:
        self.importer = importer
        self.client = importer.client
        self.dry_run = importer.dry_run
        self.counts = AttachedCounts()
        self._fallback = fallback
        self._lock = threading.Lock()
        self._indexes_subjects: bool | None = None  # whether the target has the referrers API
        self._to_list: dict[FallbackKey, list[dict[str, Any]]] = defaultdict(list)

    def run(self, plans: list[ImagePlan]) -> AttachedCounts:
        carried = [p for p in plans if p.image.carried]
        self.counts.add(present=len(plans) - len(carried))  # left to the base: checked on the target already
        jobs = self.importer.jobs
        digest_of = self.client.manifest_digest
        here = run_parallel(carried, lambda p: digest_of(p.repository, p.image.artifact.digest) is not None, jobs)
        present = {id(p) for p, found in zip(carried, here, strict=True) if found}
        missing = [p for p in carried if id(p) not in present]
        if missing:
            self.importer.push_blobs(missing)
        for level in _levels(carried):
            run_parallel(level, lambda p: self._push(p, id(p) in present), jobs)
        run_parallel(sorted(self._to_list.items()), self._list, jobs)
        return self.counts

    def _push(self, plan: ImagePlan, present: bool) -> None:
        top = plan.image.top
        indexed: bool | None = None  # what the PUT of the top manifest said; None without one
        if present:
            self.counts.add(present=1)
        else:
            for document in plan.image.manifests:  # children before their index
                if document is not top and self.client.manifest_digest(plan.repository, document.digest):
                    continue
                if not self.dry_run:
                    pushed = self.client.put_manifest(
                        plan.repository, document.digest, document.raw, document.media_type
                    )
                    if document is top:
                        indexed = pushed.oci_subject is not None
            self.counts.add(pushed=1)
        cosign_tag = Attached(plan.image.artifact).cosign_tag
        if cosign_tag is not None:
            self._tag(plan, cosign_tag)
        subject = subject_of(top)
        if subject is not None and not indexed and (indexed is False or self._needs_listing(plan, subject)):
            with self._lock:
                self._to_list[(plan.repository, subject)].append(referrer_descriptor(top))

    def _needs_listing(self, plan: ImagePlan, subject: str) -> bool:
        """Of a manifest not pushed now: whether the fallback index must list it (it does not yet, and the target
        has no referrers API to list it instead)."""
        listed = self._fallback.get((plan.repository, subject), [])
        if any(d.get("digest") == plan.image.top.digest for d in listed):
            return False
        with self._lock:
            if self._indexes_subjects is None:
                self._indexes_subjects = self.client.referrers(plan.repository, subject) is not None
            return not self._indexes_subjects

    def _tag(self, plan: ImagePlan, tag: str) -> None:
        top = plan.image.top
        if self.client.manifest_digest(plan.repository, tag) == top.digest:
            return
        if not self.dry_run:
            self.client.put_manifest(plan.repository, tag, top.raw, top.media_type)
        self.counts.add(tags_written=1)

    def _list(self, item: tuple[FallbackKey, list[dict[str, Any]]]) -> None:
        """Merge descriptors into the subject's fallback index as the target holds it now; nothing listed twice."""
        (repository, subject), descriptors = item
        current = self._fallback.get((repository, subject), []) if self.dry_run else None
        if current is None:
            current = read_fallback_index(self.client, repository, subject)
        listed = list(current)
        for descriptor in descriptors:
            if all(d.get("digest") != descriptor["digest"] for d in listed):
                listed.append(descriptor)
        if len(listed) == len(current):
            return
        if not self.dry_run:
            self.client.put_manifest(repository, tag_schema_tag(subject), referrers_index(listed), mt.OCI_INDEX)
        self.counts.add(indexes_written=1)
