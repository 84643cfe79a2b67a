"""What the targets hold, read without writing: a registry's repositories, tags, manifests and blobs, and a Git
server's refs. `audit` compares them with the journal; `prune` reads them too.

See docs/audit.md ("Reading the targets"). Every read is a HEAD or a GET; nothing here writes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import httpx

from mirror.credentials import Credentials, target_git_credentials, target_registry_credentials
from mirror.errors import DigestMismatchError, InvalidDocumentError, RegistryHTTPError, SourceNotFoundError
from mirror.git.refs import RemoteRefs, remote_refs
from mirror.git.runner import Transport
from mirror.landing import parse_target
from mirror.limits import DEFAULT_LIMITS, Limits
from mirror.oci.digest import is_digest
from mirror.oci.document import ManifestDocument, parse_manifest
from mirror.parallel import run_parallel
from mirror.registry.client import RegistryClient
from mirror.registry.endpoint import Endpoint

RepoDigest = tuple[str, str]


@dataclass(frozen=True)
class Manifest:
    """A manifest as the registry holds it under its digest: parsed, or why it could not be had."""

    repository: str
    digest: str
    document: ManifestDocument | None  # None: missing, or `corrupt`
    corrupt: str | None = None  # the registry answered other bytes than the digest names, or no manifest

    @property
    def children(self) -> tuple[str, ...]:
        return tuple(d.digest for d in self.document.manifests) if self.document else ()

    @property
    def blobs(self) -> dict[str, int]:
        """Config and layers: digest → size the descriptor gives."""
        return {d.digest: d.size for d in self.document.blobs} if self.document else {}


@dataclass
class Graphs:
    """Manifests read from their roots down (an index's children too), and the size of every blob they name, each
    (repository, blob) asked once: None where the registry does not hold it."""

    manifests: dict[RepoDigest, Manifest] = field(default_factory=dict)
    blobs: dict[RepoDigest, int | None] = field(default_factory=dict)

    def reachable(self, repository: str, root: str) -> Iterator[Manifest]:
        """The manifests of root's graph, root first, each once."""
        pending, seen = [root], set()
        while pending:
            digest = pending.pop()
            if digest in seen or (repository, digest) not in self.manifests:
                continue
            seen.add(digest)
            manifest = self.manifests[(repository, digest)]
            yield manifest
            pending.extend(reversed(manifest.children))


class RegistryTarget:
    """One registry, read through the repository paths as the journal records them (prefix included)."""

    def __init__(self, client: RegistryClient, *, jobs: int, limits: Limits = DEFAULT_LIMITS) -> None:
        self.client = client
        self.jobs = jobs
        self.limits = limits

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> RegistryTarget:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def repositories(self, prefix: str = "") -> list[str] | None:
        """The repositories under `prefix` (every one when empty), sorted; None when the registry does not list
        its catalog to these credentials."""
        under = prefix.rstrip("/") + "/" if prefix else ""
        listed = self.client.iter_repositories(after=prefix.rstrip("/"))
        if listed is None:
            return None
        return sorted({r for r in listed if r.startswith(under)})

    def tags(self, repository: str) -> list[str] | None:
        """The repository's tags, sorted; None when the registry has no such repository."""
        try:
            return sorted(set(self.client.iter_tags(repository)))
        except RegistryHTTPError as exc:
            if exc.status == 404:
                return None
            raise

    def tag_lists(self, repositories: Iterable[str]) -> dict[str, list[str] | None]:
        names = sorted(set(repositories))
        return dict(zip(names, run_parallel(names, self.tags, self.jobs), strict=True))

    def tag_digests(self, tags: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str | None]:
        """Where each (repository, tag) points now (one HEAD each); None: no such tag."""
        keys = sorted(set(tags))
        found = run_parallel(keys, lambda key: self.client.manifest_digest(*key), self.jobs)
        return dict(zip(keys, found, strict=True))

    def tagged(self, tags: Iterable[tuple[str, str]]) -> dict[tuple[str, str], Manifest | None]:
        """The manifest each (repository, tag) names now, read whole (one GET each: where it points and what it
        holds at once); None: no such tag. Its `digest` is the one its bytes hash to."""
        keys = sorted(set(tags))
        found = run_parallel(keys, lambda key: self._read(*key), self.jobs)
        return dict(zip(keys, found, strict=True))

    def manifest(self, repository: str, digest: str) -> Manifest:
        """The manifest under `digest` (missing, or corrupt when the registry answers other bytes)."""
        return self._read(repository, digest) or Manifest(repository, digest, None)

    def _read(self, repository: str, reference: str) -> Manifest | None:
        try:
            fetched = self.client.get_manifest(repository, reference)
        except RegistryHTTPError as exc:
            if exc.status == 404:
                return None
            raise
        except DigestMismatchError as exc:  # under a tag, no digest can be trusted: none is given
            return Manifest(repository, reference if is_digest(reference) else "", None, corrupt=exc.message)
        where = f"{self.client.endpoint.netloc}/{repository}@{fetched.digest}"
        try:
            document = parse_manifest(fetched.raw, declared_type=fetched.media_type, where=where, digest=fetched.digest)
        except InvalidDocumentError as exc:
            return Manifest(repository, fetched.digest, None, corrupt=exc.message)
        return Manifest(repository, fetched.digest, document)

    def graphs(self, roots: Iterable[RepoDigest], known: Iterable[Manifest] = ()) -> Graphs:
        """Every root's manifest graph, level by level (an index, then its children), and the blobs they name:
        a GET per manifest and a HEAD per blob, each (repository, digest) once however many images share it.
        `known`: manifests already read (through their tags), not read again."""
        graphs = Graphs()
        graphs.manifests.update(((m.repository, m.digest), m) for m in known if m.document is not None)
        level = sorted(set(roots) - graphs.manifests.keys())
        children = {(m.repository, child) for m in graphs.manifests.values() for child in m.children}
        while level:
            read = run_parallel(level, lambda key: self.manifest(*key), self.jobs)
            graphs.manifests.update(zip(level, read, strict=True))
            children |= {(m.repository, child) for m in read for child in m.children}
            level = sorted(children - graphs.manifests.keys())
        blobs = sorted({(m.repository, blob) for m in graphs.manifests.values() for blob in m.blobs})
        sizes = run_parallel(blobs, lambda key: self.client.blob_size(*key), self.jobs)
        graphs.blobs = dict(zip(blobs, sizes, strict=True))
        return graphs


def open_registry(
    url: str,
    *,
    ca_file: str | None,
    jobs: int,
    limits: Limits = DEFAULT_LIMITS,
    transport: httpx.BaseTransport | None = None,
) -> RegistryTarget:
    """The --registry target, with the import's credentials (MIRROR_REGISTRY_*, else the auth file); its paths
    are the full repository paths (the prefix is not added again)."""
    endpoint = parse_target(url, ca_file)
    credentials: Credentials | None = target_registry_credentials(endpoint.netloc)
    bare = Endpoint(endpoint.host, endpoint.scheme, endpoint.netloc, "", endpoint.ca_file)
    client = RegistryClient(bare, credentials, limits, max_connections=jobs * 2, transport=transport)
    return RegistryTarget(client, jobs=jobs, limits=limits)


@dataclass
class GitTarget:
    """A Git server under one --git base, with the import's credentials bound to its origin."""

    base: str
    transport: Transport
    credentials: Credentials | None = None

    @classmethod
    def open(cls, base: str, *, ca_file: str | None, limits: Limits = DEFAULT_LIMITS) -> GitTarget:
        transport = Transport(ca_file=ca_file).with_limits(limits)
        return cls(base, transport, target_git_credentials(base))

    def refs(self, url: str) -> RemoteRefs | None:
        """Every ref the repository at `url` advertises (`git ls-remote`); None when there is no repository."""
        try:
            return remote_refs(url, self.credentials, transport=self.transport.for_source())
        except SourceNotFoundError:
            return None

    def refs_of(self, urls: Iterable[str], jobs: int) -> dict[str, RemoteRefs | None]:
        names = sorted(set(urls))
        return dict(zip(names, run_parallel(names, self.refs, jobs), strict=True))
