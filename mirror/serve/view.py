"""What `mirror serve` answers from: a verified chain of bundles merged into repositories, each with its tags, the
manifests and blobs reachable from them, and the manifests attached to each subject.

Repositories and tags are the landing names an import would write (mirror/landing.py, without a prefix); a later
bundle's tag wins. Manifests are the documents verification parsed from the bundles, kept in memory; blobs are
(bundle, path, size), read only when asked for. Pure: builds from what verification read. See docs/serve.md.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from mirror.bundle.inventory import blob_path
from mirror.bundle.reader import BundleReader
from mirror.bundle.verify import VerifiedBundle
from mirror.errors import Problem, VerificationError
from mirror.landing import plan_images
from mirror.oci import mediatypes as mt
from mirror.oci.document import ManifestDocument, parse_manifest
from mirror.oci.referrers import referrer_descriptor, referrers_index, subject_of
from mirror.supplychain.attached import ATTACHED, FOUND_COSIGN_TAG, Attached, tag_schema_tag

CHAIN_INCOMPLETE = "CHAIN_INCOMPLETE"


@dataclass(frozen=True)
class StoredBlob:
    """Where a verified blob is: a member of a bundle, read through that bundle's reader."""

    reader: BundleReader
    path: str
    size: int


@dataclass
class Repository:
    tags: dict[str, str] = field(default_factory=dict)  # tag → manifest digest
    manifests: set[str] = field(default_factory=set)  # every manifest reachable from the repository's artifacts
    blobs: set[str] = field(default_factory=set)  # every config and layer of those
    referrers: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # subject → descriptors, by digest


@dataclass
class View:
    repositories: dict[str, Repository]
    manifests: dict[str, ManifestDocument]  # by digest: the verified bytes
    blobs: dict[str, StoredBlob]  # by digest

    @property
    def tag_count(self) -> int:
        return sum(len(r.tags) for r in self.repositories.values())


def _roots_and_tags(chain: Sequence[VerifiedBundle]) -> tuple[dict[str, set[str]], dict[str, dict[str, str]]]:
    """Each repository's artifacts (digests) and tags, bundle after bundle: a later bundle's tag wins."""
    roots: dict[str, set[str]] = defaultdict(set)
    tags: dict[str, dict[str, str]] = defaultdict(dict)
    for verified in chain:
        for plan in plan_images(verified):
            artifact = plan.image.artifact
            roots[plan.repository].add(artifact.digest)
            tag = plan.tag
            if artifact.kind == ATTACHED:
                attached = Attached(artifact)
                tag = attached.tag if attached.found == FOUND_COSIGN_TAG else None
            if tag is not None:
                tags[plan.repository][tag] = artifact.digest
    return roots, tags


def _content(chain: Sequence[VerifiedBundle]) -> tuple[dict[str, ManifestDocument], dict[str, StoredBlob]]:
    """Every manifest and blob the bundles carry, by digest; a digest carried twice is the same bytes."""
    manifests: dict[str, ManifestDocument] = {}
    blobs: dict[str, StoredBlob] = {}
    for verified in chain:
        for image in [*verified.images, *verified.attached]:
            for document in image.manifests:
                manifests.setdefault(document.digest, document)
            for digest, size in image.blobs.items():
                blobs.setdefault(digest, StoredBlob(verified.reader, blob_path(digest), size))
    return manifests, blobs


def _close(
    name: str,
    repository: Repository,
    roots: set[str],
    manifests: dict[str, ManifestDocument],
    blobs: dict[str, StoredBlob],
) -> list[Problem]:
    """Put in `repository` every manifest and blob reachable from `roots`; a problem for each one no bundle has."""
    problems = []
    waiting = sorted(roots)
    while waiting:
        digest = waiting.pop()
        if digest in repository.manifests:
            continue
        document = manifests.get(digest)
        if document is None:
            problems.append(Problem(CHAIN_INCOMPLETE, f"{name}: manifest {digest} is in none of the bundles"))
            continue
        repository.manifests.add(digest)
        waiting += [child.digest for child in document.manifests]
        for blob in document.blobs:
            if blob.digest in blobs:
                repository.blobs.add(blob.digest)
            else:
                problems.append(Problem(CHAIN_INCOMPLETE, f"{name}: blob {blob.digest} is in none of the bundles"))
    return problems


def _attach(repository: Repository, manifests: dict[str, ManifestDocument]) -> None:
    """The referrers of each subject in the repository; and, where no tag of the bundles holds it, the referrers
    tag schema's index at `sha256-<hex>` for clients without the referrers API, as an import writes it."""
    for digest in sorted(repository.manifests):
        document = manifests[digest]
        subject = subject_of(document)
        if subject is not None:
            repository.referrers.setdefault(subject, []).append(referrer_descriptor(document))
    for subject, descriptors in repository.referrers.items():
        tag = tag_schema_tag(subject)
        if tag in repository.tags:
            continue
        index = parse_manifest(
            referrers_index(descriptors), declared_type=mt.OCI_INDEX, where=f"referrers of {subject}"
        )
        manifests.setdefault(index.digest, index)
        repository.manifests.add(index.digest)
        repository.tags[tag] = index.digest


def build_view(chain: Sequence[VerifiedBundle]) -> View:
    """The verified bundles, in chain order, as one registry; raises VerificationError (landing names the
    distribution grammar refuses, or content no bundle of the chain carries) and UsageError (two sources that
    would land on one repository), as an import would."""
    roots, tags = _roots_and_tags(chain)
    manifests, blobs = _content(chain)
    repositories: dict[str, Repository] = {}
    problems: list[Problem] = []
    for name in sorted(roots):
        repository = Repository(tags=tags[name])
        problems += _close(name, repository, roots[name], manifests, blobs)
        repositories[name] = repository
    if problems:
        raise VerificationError(
            f"the {len(chain)} bundle(s) do not carry everything their artifacts need",
            problems=problems,
            hint="give the whole chain: the full bundle, then each incremental one in order",
        )
    for repository in repositories.values():
        _attach(repository, manifests)
    return View(repositories, manifests, blobs)
