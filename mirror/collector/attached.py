"""Finding what upstream attached to the manifests a bundle carries (signatures, attestations, SBOMs), recursively
and within bounds, and downloading it like an image graph. See docs/supply-chain.md ("What is carried").

Requests are kept few: the referrers API is asked once per registry host whether it exists, each repository's
tags are listed once, and only the candidate tags that exist are fetched.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from mirror.bundle.inventory import ArtifactRecord
from mirror.errors import InvalidDocumentError, TransferError
from mirror.limits import Limits
from mirror.oci.document import Descriptor, ManifestDocument, parse_manifest
from mirror.oci.mediatypes import INDEXES, OCI_INDEX
from mirror.oci.reference import ImageReference
from mirror.parallel import run_parallel
from mirror.registry.client import RegistryClient
from mirror.registry.pool import ClientPool
from mirror.supplychain.attached import (
    COSIGN_SUFFIXES,
    FOUND_COSIGN_TAG,
    FOUND_REFERRERS,
    FOUND_TAG_SCHEMA,
    attached_record,
    cosign_tag,
    tag_schema_tag,
)

# The tags that can name something attached: the tag schema's sha256-<hex>, and cosign's .sig, .att, .sbom.
_CANDIDATE_TAG = re.compile(r"sha256-[0-9a-f]{64}(?:\.sig|\.att|\.sbom)?")


@dataclass(frozen=True)
class Subject:
    """A manifest whose attached manifests are looked for, in the repository that holds it."""

    repository: ImageReference  # registry and repository, no tag or digest
    digest: str
    image: str  # the source of the image or chart artifact it belongs to
    depth: int = 1  # the depth of what is attached to it: 1 for the image's own manifests


@dataclass(frozen=True)
class FoundAttached:
    """A manifest found attached to `subject`, with its exact bytes."""

    repository: ImageReference
    document: ManifestDocument
    subject: str
    artifact_type: str
    found: str  # one of mirror.supplychain.attached.FOUND
    image: str
    depth: int
    tag: str | None = None  # cosign's tag it was found under

    def record(self) -> ArtifactRecord:
        document = self.document
        return attached_record(
            self.repository.name,
            document.digest,
            document.media_type,
            document.size,
            subject=self.subject,
            artifact_type=self.artifact_type,
            found=self.found,
            image=self.image,
            tag=self.tag,
        )


def _artifact_type(document: ManifestDocument) -> str:
    """A manifest's artifact type as the referrers API states it: `artifactType`, else its config's media type."""
    stated = document.body.get("artifactType")
    if isinstance(stated, str) and stated:
        return stated
    return document.config.media_type if document.config is not None else ""


class AttachedFinder:
    """Looks up what is attached to one subject at a time; shared by worker threads."""

    def __init__(self, pool: ClientPool, limits: Limits, warn: Callable[[str], None]) -> None:
        self._pool = pool
        self._limits = limits
        self._warn = warn
        self._lock = threading.Lock()
        self._once: dict[str, threading.Lock] = {}  # a lock per host or repository, for what is learnt once
        self._has_api: dict[str, bool] = {}  # registry host → whether it has the referrers API
        self._tags: dict[str, frozenset[str] | None] = {}  # HOST/PATH → its candidate tags; None: not listable
        self._per_image: dict[str, int] = {}  # image → the attached manifests listed for it so far, every level

    def _lock_for(self, key: str) -> threading.Lock:
        with self._lock:
            return self._once.setdefault(key, threading.Lock())

    def find(self, subject: Subject) -> list[FoundAttached]:
        client = self._pool.for_host(subject.repository.registry)
        where = f"{subject.repository.name}@{subject.digest}"
        listed: dict[str, tuple[Descriptor, str]] = {}
        tags = self._candidate_tags(client, subject.repository)  # first: other threads list while one probes

        def exists(tag: str) -> bool:
            if tags is None:  # the repository's tags could not be listed: asked for one by one
                return client.manifest_digest(subject.repository.repository, tag) is not None
            return tag in tags

        referrers = self._referrers(client, subject)
        for descriptor in referrers or ():
            listed.setdefault(descriptor.digest, (descriptor, FOUND_REFERRERS))
        if referrers is None and exists(tag_schema_tag(subject.digest)):
            for descriptor in self._tag_schema_index(client, subject, where):
                listed.setdefault(descriptor.digest, (descriptor, FOUND_TAG_SCHEMA))
        cosign = [tag for tag in (cosign_tag(subject.digest, suffix) for suffix in COSIGN_SUFFIXES) if exists(tag)]
        if len(listed) + len(cosign) > self._limits.max_attached_per_subject:
            raise InvalidDocumentError(
                f"{where}: {len(listed) + len(cosign)} manifests are attached to it, more than the "
                f"{self._limits.max_attached_per_subject} allowed (limit max_attached_per_subject)"
            )
        self._count(subject, len(listed) + len(cosign))  # before they are fetched
        found = [self._listed(client, subject, d, how, where) for d, how in listed.values()]
        found += [self._cosign(client, subject, tag, where) for tag in cosign]
        return found

    def _count(self, subject: Subject, more: int) -> None:
        with self._lock:
            total = self._per_image[subject.image] = self._per_image.get(subject.image, 0) + more
        if total > self._limits.max_attached_per_image:
            raise InvalidDocumentError(
                f"{subject.image}: more than {self._limits.max_attached_per_image} manifests are attached to the "
                "image, its children and what is attached to them (limit max_attached_per_image)"
            )

    def _referrers(self, client: RegistryClient, subject: Subject) -> list[Descriptor] | None:
        """The referrers API's answer, or None where the host has none; the first request of a host tells."""
        host = subject.repository.registry
        repository = subject.repository.repository
        with self._lock_for(f"api {host}"):
            known = self._has_api.get(host)
            if known is None:
                answer = client.referrers(repository, subject.digest, max_count=self._limits.max_attached_per_subject)
                self._has_api[host] = answer is not None
                return answer
        if not known:
            return None
        return client.referrers(repository, subject.digest, max_count=self._limits.max_attached_per_subject)

    def _candidate_tags(self, client: RegistryClient, repository: ImageReference) -> frozenset[str] | None:
        """The repository's tags that may name attached manifests, listed once per run; None when the registry
        will not list them (refused, or more than the tag list limits): each candidate is then asked for."""
        with self._lock_for(f"tags {repository.name}"):
            if repository.name not in self._tags:
                tags: frozenset[str] | None
                try:
                    tags = frozenset(t for t in client.iter_tags(repository.repository) if _CANDIDATE_TAG.fullmatch(t))
                except TransferError as exc:  # a registry down fails the requests that follow all the same
                    self._warn(
                        f"{repository.name}: its tags cannot be listed ({exc.message}); cosign's tags and the "
                        "referrers tag schema are asked for one by one"
                    )
                    tags = None
                self._tags[repository.name] = tags
            return self._tags[repository.name]

    def _tag_schema_index(self, client: RegistryClient, subject: Subject, where: str) -> tuple[Descriptor, ...]:
        tag = tag_schema_tag(subject.digest)
        fetched = client.get_manifest(subject.repository.repository, tag)
        at = f"{subject.repository.name}:{tag}"
        index = parse_manifest(fetched.raw, declared_type=fetched.media_type, where=at, digest=fetched.digest)
        if index.media_type != OCI_INDEX:
            raise InvalidDocumentError(f"{where}: the referrers tag schema's {at} is not an image index")
        return index.manifests

    def _listed(
        self, client: RegistryClient, subject: Subject, descriptor: Descriptor, how: str, where: str
    ) -> FoundAttached:
        """A manifest the referrers API or the tag schema lists: fetched by digest, its size and `subject` checked."""
        if not descriptor.is_manifest:
            raise InvalidDocumentError(
                f"{where}: the {how} list names {descriptor.digest} of media type {descriptor.media_type!r}, "
                "not a manifest"
            )
        fetched = client.get_manifest(subject.repository.repository, descriptor.digest, descriptor.size)
        document = parse_manifest(
            fetched.raw, declared_type=descriptor.media_type, where=f"{where} {how}", digest=descriptor.digest
        )
        named = document.body.get("subject")
        named_digest = named.get("digest") if isinstance(named, dict) else None
        if named_digest != subject.digest:
            raise InvalidDocumentError(
                f"{where}: the {how} list names {descriptor.digest}, whose subject is {named_digest}, "
                f"not {subject.digest}"
            )
        artifact_type = descriptor.artifact_type or _artifact_type(document)
        return FoundAttached(
            subject.repository, document, subject.digest, artifact_type, how, subject.image, subject.depth
        )

    def _cosign(self, client: RegistryClient, subject: Subject, tag: str, where: str) -> FoundAttached:
        fetched = client.get_manifest(subject.repository.repository, tag)
        at = f"{subject.repository.name}:{tag}"
        document = parse_manifest(fetched.raw, declared_type=fetched.media_type, where=at, digest=fetched.digest)
        if document.digest == subject.digest:
            raise InvalidDocumentError(f"{where}: {at} names the manifest it is attached to")
        named = document.body.get("subject")
        named_digest = named.get("digest") if isinstance(named, dict) else None
        if named is not None and named_digest != subject.digest:  # the import would list it under that name
            raise InvalidDocumentError(
                f"{where}: {at} names {named_digest!r:.100} as its subject, not {subject.digest}"
            )
        artifact_type = COSIGN_SUFFIXES[tag[tag.rindex(".") :]]
        return FoundAttached(
            subject.repository,
            document,
            subject.digest,
            artifact_type,
            FOUND_COSIGN_TAG,
            subject.image,
            subject.depth,
            tag,
        )


def find_attached(finder: AttachedFinder, subjects: list[Subject], limits: Limits, jobs: int) -> list[FoundAttached]:
    """Everything attached to `subjects`, and to what is attached to them, level by level; each manifest once."""
    seen = {(s.repository.name, s.digest) for s in subjects}
    found: list[FoundAttached] = []
    level = list({(s.repository.name, s.digest): s for s in reversed(subjects)}.values())[::-1]
    while level:
        following = []
        for items in run_parallel(level, finder.find, jobs):
            for item in items:
                key = (item.repository.name, item.document.digest)
                if key in seen:
                    continue
                if item.depth > limits.max_attached_depth:
                    raise InvalidDocumentError(
                        f"{item.repository.name}@{item.subject}: has {item.document.digest} attached, more than "
                        f"{limits.max_attached_depth} levels below the image (limit max_attached_depth)"
                    )
                seen.add(key)
                found.append(item)
                following.append(Subject(item.repository, item.document.digest, item.image, item.depth + 1))
        level = following
    return found


def carried_manifests(
    document: ManifestDocument, read: Callable[[str], ManifestDocument | None], depth: int = 0, max_depth: int = 4
) -> Iterator[str]:
    """The digests of an index's children, and of theirs (read from the layout), down to `max_depth`."""
    for child in document.manifests:
        yield child.digest
        nested = read(child.digest) if child.media_type in INDEXES and depth < max_depth else None
        if nested is not None:
            yield from carried_manifests(nested, read, depth + 1, max_depth)
