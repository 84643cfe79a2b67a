"""Loading verified images into the internal registry: blobs, then manifests by digest, then tags.

See docs/importer.md ("The registry").
"""

from __future__ import annotations

import threading
from collections import defaultdict
from dataclasses import dataclass, field

from mirror.bundle.inventory import blob_path
from mirror.bundle.reader import BundleReader, opened
from mirror.credentials import Credentials, target_registry_credentials
from mirror.errors import needed_for
from mirror.importer.streaming import Staged
from mirror.landing import ImagePlan
from mirror.parallel import run_parallel
from mirror.progress import Progress
from mirror.registry.client import OpenSource, RegistryClient
from mirror.registry.endpoint import Endpoint


def target_credentials(endpoint: Endpoint, env: dict[str, str] | None = None) -> Credentials | None:
    return target_registry_credentials(endpoint.netloc, env)


@dataclass
class Tally:
    """Counters that worker threads add to at once; a subclass declares them as int fields."""

    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **amounts: int) -> None:
        with self.lock:
            for name, amount in amounts.items():
                setattr(self, name, getattr(self, name) + amount)


@dataclass
class ImportCounts(Tally):
    blobs_uploaded: int = 0
    blobs_mounted: int = 0
    blobs_present: int = 0
    bytes_uploaded: int = 0
    manifests_pushed: int = 0
    manifests_present: int = 0

    def to_json(self) -> dict[str, int]:
        return {
            "blobsUploaded": self.blobs_uploaded,
            "blobsMounted": self.blobs_mounted,
            "blobsPresent": self.blobs_present,
            "bytesUploaded": self.bytes_uploaded,
            "manifestsPushed": self.manifests_pushed,
            "manifestsPresent": self.manifests_present,
        }


@dataclass(frozen=True)
class ImageOutcome:
    source: str
    target: str
    digest: str
    status: str  # pushed | unchanged | would-push
    previous_tag_digest: str | None = None

    def to_json(self) -> dict[str, object]:
        result: dict[str, object] = {
            "source": self.source,
            "target": self.target,
            "digest": self.digest,
            "status": self.status,
        }
        if self.previous_tag_digest:
            result["tagMovedFrom"] = self.previous_tag_digest
        return result


Found = tuple[bool, str | None]  # the image's top manifest is on the target; where its tag points


def missing_images(plans: list[ImagePlan], found: list[Found]) -> list[ImagePlan]:
    return [plan for plan, (here, _) in zip(plans, found, strict=True) if not here]


def blob_needs(plans: list[ImagePlan]) -> tuple[dict[str, list[str]], dict[str, int], dict[str, list[str]]]:
    """Each blob's repositories (the first one is where it is placed first), its size, and the images using it."""
    # Each blob's repositories as a dict, in order, each once: a base layer shared by 20,000 images was 20,000
    # scans of a list of up to 20,000 names (10 s).
    wanted: dict[str, dict[str, None]] = defaultdict(dict)
    sizes: dict[str, int] = {}
    users: dict[str, list[str]] = defaultdict(list)  # the images that need each blob, for messages
    for plan in plans:
        for digest, size in plan.image.blobs.items():
            wanted[digest][plan.repository] = None
            users[digest].append(plan.source)
            sizes[digest] = size
    return {digest: list(repositories) for digest, repositories in wanted.items()}, sizes, users


def first_repositories(plans: list[ImagePlan]) -> dict[str, str]:
    """Blob digest → the repository the import places it in first (and mounts it from into the others)."""
    return {digest: repositories[0] for digest, repositories in blob_needs(plans)[0].items()}


class RegistryImporter:
    def __init__(
        self, client: RegistryClient, reader: BundleReader, *, jobs: int, progress: Progress, dry_run: bool
    ) -> None:
        self.client = client
        self.reader = reader
        self.jobs = jobs
        self.progress = progress
        self.dry_run = dry_run
        self.counts = ImportCounts()
        self.present_blobs: list[tuple[str, str]] = []  # (repository, digest) found on the target, for --report
        self._users: dict[str, list[str]] = {}  # digest → the images that need it, set by push_blobs
        self._staged = Staged()  # what the verification streamed, set by push_blobs

    def target_name(self, plan: ImagePlan) -> str:
        endpoint = self.client.endpoint
        name = f"{endpoint.netloc}/{endpoint.repository(plan.repository)}"
        return f"{name}:{plan.tag}" if plan.tag else name

    def run(
        self, plans: list[ImagePlan], found: list[Found] | None = None, staged: Staged | None = None
    ) -> list[ImageOutcome]:
        """found: survey(plans), when it was asked already; staged: the blobs streamed during the verification."""
        found = self.survey(plans) if found is None else found
        self.push_blobs(missing_images(plans, found), staged)
        return run_parallel(list(zip(plans, found, strict=True)), lambda f: self._finish_image(f[0], *f[1]), self.jobs)

    def survey(self, plans: list[ImagePlan]) -> list[Found]:
        """For each image, whether it is on the target and where its tag points; reads only."""
        return run_parallel(plans, self._on_target, self.jobs)

    def _on_target(self, plan: ImagePlan) -> tuple[bool, str | None]:
        """Whether the image's top manifest is on the target, and where its tag points: one HEAD, of the tag, for
        a tagged image whose tag is absent or already right; a second, by digest, for a tag that moved (and for an
        image an incremental bundle left to its base, whose blobs it does not carry)."""
        digest = plan.image.artifact.digest
        if not plan.tag:
            return self.client.manifest_digest(plan.repository, digest) is not None, None
        current = self.client.manifest_digest(plan.repository, plan.tag)
        if current == digest:
            return True, current
        if current is None and plan.image.carried:
            # An absent tag: the image is pushed, its blobs offered (one request each when already there).
            return False, None
        return self.client.manifest_digest(plan.repository, digest) is not None, current

    def push_blobs(self, plans: list[ImagePlan], staged: Staged | None = None) -> None:
        needs, sizes, users = blob_needs(plans)
        self._users = users
        self._staged = staged or Staged()
        self.progress.start("upload", sum(sizes[d] * len(repos) for d, repos in needs.items()))
        digests = sorted(needs)
        # Each blob goes to one repository first (found there, or uploaded), then into all the others at once,
        # mounted from it: one after another, a base layer shared by 200 images cost 400 requests in a row.
        run_parallel(digests, lambda d: self._push_blob(d, sizes[d], needs[d][:1]), self.jobs)
        others = [(d, repository) for d in digests for repository in needs[d][1:]]
        run_parallel(others, lambda o: self._push_blob(o[0], sizes[o[0]], [o[1]], needs[o[0]][0]), self.jobs)
        self.progress.finish()

    def _push_blob(self, digest: str, size: int, repositories: list[str], holder: str | None = None) -> None:
        users = self._users.get(digest, [])
        more = f" and {len(users) - 1} more" if len(users) > 1 else ""
        with needed_for(f"blob {digest}", f"image {users[0]}{more}" if users else ""):
            self._push_blob_to(digest, size, repositories, holder)

    def _push_blob_to(self, digest: str, size: int, repositories: list[str], holder: str | None) -> None:
        for repository in repositories:
            if self.dry_run:
                holder = self._count_dry_run(digest, size, repository, holder)
                continue
            if holder is None and self._commit_staged(digest, size, repository):
                holder = repository
                continue
            linked = self.client.push_blob(
                repository, digest, size, self._opener(digest), self.progress.advance, holder=holder
            )
            if linked and holder is None:  # mounted from its own repository: it was there already
                self._found(repository, digest, size)
            elif linked:
                self.counts.add(blobs_mounted=1)
                self.progress.advance(size)
            else:
                self.counts.add(blobs_uploaded=1, bytes_uploaded=size)
            holder = holder or repository

    def _commit_staged(self, digest: str, size: int, repository: str) -> bool:
        """A blob the verification streamed into `repository`: its session finished, or found there; False for any
        other blob."""
        upload = self._staged.uploads.get(digest)
        if upload is not None and upload.repository == repository:
            self.client.finish_streamed(upload)
            self.counts.add(blobs_uploaded=1, bytes_uploaded=size)
            self.progress.advance(size)
            return True
        if digest in self._staged.present:
            self._found(repository, digest, size)
            return True
        return False

    def _found(self, repository: str, digest: str, size: int) -> None:
        self.counts.add(blobs_present=1)
        with self.counts.lock:
            self.present_blobs.append((self.client.endpoint.repository(repository), digest))
        self.progress.advance(size)

    def _count_dry_run(self, digest: str, size: int, repository: str, holder: str | None) -> str | None:
        """Asks (HEAD) and counts as the import would count; the holder for the next repository."""
        if self.client.blob_size(repository, digest) is not None:
            self._found(repository, digest, size)
            return holder or repository
        # Mounted from the repository that holds it, else uploaded (a registry that refuses the mount makes that
        # one an upload too).
        if holder is not None:
            self.counts.add(blobs_mounted=1)
        else:
            self.counts.add(blobs_uploaded=1, bytes_uploaded=size)
        self.progress.advance(size)
        return holder or repository

    def _opener(self, digest: str) -> OpenSource:
        return lambda: opened(self.reader, blob_path(digest))

    def _retag(self, plan: ImagePlan, current: str | None) -> ImageOutcome:
        """An image an incremental bundle left to its base: on the target already, perhaps under another tag."""
        digest = plan.image.artifact.digest
        self.counts.add(manifests_present=1)
        current = current if plan.tag else digest
        if current == digest:
            return ImageOutcome(plan.source, self.target_name(plan), digest, "unchanged")
        if not self.dry_run:
            fetched = self.client.get_manifest(plan.repository, digest, plan.image.artifact.size)
            self.client.put_manifest(plan.repository, plan.tag or digest, fetched.raw, plan.image.artifact.media_type)
            if current:
                self.progress.warn(f"{self.target_name(plan)} moved from {current} to {digest}")
        status = "would-push" if self.dry_run else "pushed"
        return ImageOutcome(plan.source, self.target_name(plan), digest, status, current)

    def _finish_image(self, plan: ImagePlan, top_present: bool, current: str | None) -> ImageOutcome:
        with needed_for(f"{plan.image.artifact.kind} {plan.source}", f"target {self.target_name(plan)}"):
            return self._finish(plan, top_present, current)

    def _finish(self, plan: ImagePlan, top_present: bool, current: str | None) -> ImageOutcome:
        """current: the digest the tag points to (None: no tag, or the tag is absent), asked by _on_target."""
        if not plan.image.carried:
            return self._retag(plan, current)
        top = plan.image.top
        pushed = False
        if top_present:
            # The registry refuses an index or manifest whose children are missing, so they are all there.
            self.counts.add(manifests_present=len(plan.image.manifests))
        for document in [] if top_present else plan.image.manifests:
            if document is not top and self.client.manifest_digest(plan.repository, document.digest):
                self.counts.add(manifests_present=1)
                continue
            # The top manifest of a tagged image goes up once, by its tag (the registry keeps it by digest too).
            reference = plan.tag if document is top and plan.tag else document.digest
            if not self.dry_run:
                self.client.put_manifest(plan.repository, reference, document.raw, document.media_type)
            self.counts.add(manifests_pushed=1)
            pushed = True
        previous = None
        if plan.tag and current != top.digest:
            previous = current
            if top_present and not self.dry_run:
                self.client.put_manifest(plan.repository, plan.tag, top.raw, top.media_type)
            pushed = True
        status = "unchanged" if not pushed else ("would-push" if self.dry_run else "pushed")
        if previous and not self.dry_run:
            self.progress.warn(f"{self.target_name(plan)} moved from {previous} to {top.digest}")
        return ImageOutcome(plan.source, self.target_name(plan), top.digest, status, previous)
