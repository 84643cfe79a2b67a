"""Git sources: a ref resolved on the remote, and the history behind it written as a git bundle blob."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from mirror.bundle.inventory import ArtifactRecord
from mirror.bundle.layout import LayoutWriter
from mirror.credentials import Credentials, GitCredentials
from mirror.egress import is_plain_http, url_host
from mirror.errors import needed_for
from mirror.git.bundles import BundleInfo, create_bundle
from mirror.git.refs import ResolvedRef, remote_refs, resolve_ref
from mirror.git.runner import Transport
from mirror.manifest.model import GitSource, UrlRewrite
from mirror.urlrewrite import fetch_url
from mirror.warncodes import GIT_REFS_SKIPPED

if TYPE_CHECKING:
    from mirror.collector.incremental import BaseChain
    from mirror.egress import EgressPolicy
    from mirror.progress import Progress

GIT_BUNDLE_MEDIA_TYPE = "application/vnd.mirror.git.bundle"


@dataclass(frozen=True)
class CollectedGit:
    source: GitSource
    resolved: ResolvedRef
    bundle: BundleInfo
    # When nothing moved since an incremental collect's base: the base's record, whose bundle the chain carried.
    base: ArtifactRecord | None = None
    skipped_refs: tuple[str, ...] = ()  # advertised names git refuses: not carried

    @property
    def carried(self) -> bool:
        return self.bundle.written

    @property
    def digest(self) -> str:
        if not self.carried and self.base is not None:
            return self.base.digest
        return f"sha256:{self.bundle.sha256}"

    @property
    def size(self) -> int:
        if not self.carried and self.base is not None:
            return self.base.size
        return self.bundle.size

    def artifact_extra(self) -> dict[str, object]:
        extra: dict[str, object] = {
            "name": self.source.name,
            "ref": dict(self.source.ref),
            "refName": self.resolved.name,
            "commit": self.resolved.commit,
            # Nothing carried: the refs as they are, which the target must already hold.
            "heads": dict(self.bundle.heads if self.carried else self.bundle.unchanged),
            "prerequisites": list(self.bundle.prerequisites),
        }
        if self.carried and self.bundle.unchanged:
            # Refs left out of an incremental git bundle because the base has them; the next night's base too.
            extra["unchanged"] = dict(self.bundle.unchanged)
        return extra


def collect_git(
    source: GitSource,
    writer: LayoutWriter,
    *,
    credentials: Credentials | None,
    transport: Transport,
    base_commits: Iterable[str] = (),
    base: ArtifactRecord | None = None,
    fetch_url: str | None = None,
) -> CollectedGit:
    """Resolve the source's ref and store its history as a git bundle blob in the layout.

    base_commits: what the target already has (an incremental collect's base); that history is left out, and
    when nothing is new no blob is written and the artifact stands on `base`, the base's record.
    fetch_url: where the repository is fetched from, when a spec.rewrite rule covers its URL.
    """
    fetch = fetch_url or source.url  # a spec.rewrite rule's target; the source keeps its URL as its identity
    refs = remote_refs(fetch, credentials, transport=transport)
    resolved = resolve_ref(refs, source.ref, where=source.origin, url=fetch)
    pinned = False
    if source.locked_commit not in (None, resolved.commit) and resolved.kind == "branch":
        # collect --lock: the branch moved since the lock; it is carried at the locked commit (if still on it).
        resolved, pinned = replace(resolved, commit=str(source.locked_commit)), True
    with writer.scratch_path() as path:
        info = create_bundle(
            fetch,
            resolved,
            path,
            credentials=credentials,
            refs=refs,
            transport=transport,
            base_commits=base_commits,
            base_refs=_base_refs(base),
            pinned=pinned,
        )
        if info.written:
            writer.adopt(path, f"sha256:{info.sha256}", info.size)
    if not info.written and base is None:
        raise ValueError(f"{source.url}: nothing new, but no base record to stand on")  # a caller bug
    return CollectedGit(source, resolved, info, None if info.written else base, refs.invalid)


def _base_refs(base: ArtifactRecord | None) -> dict[str, str] | None:
    """The refs the base recorded for this source: those it carried, and those it knew unchanged."""
    if base is None:
        return None
    refs: dict[str, str] = {}
    for key in ("unchanged", "heads"):
        value = base.extra.get(key)
        if isinstance(value, dict):
            refs.update({k: v for k, v in value.items() if isinstance(k, str) and isinstance(v, str)})
    return refs


@dataclass(frozen=True)
class GitCollector:
    """Git sources collected into one layout: the MirrorSet's, and the GitRepositories its fleets name."""

    writer: LayoutWriter
    credentials: GitCredentials  # chosen per source by the URL it is fetched from
    transport: Transport  # with the run's limits; each source gets its own deadline from it
    progress: Progress
    egress: EgressPolicy
    chain: BaseChain | None = None  # --since: what the base carries is left out
    rewrites: Sequence[UrlRewrite] = ()  # spec.rewrite: where a source's URL is fetched from

    def collect(self, source: GitSource, *, whole: bool = False) -> CollectedGit:
        """whole: the entire history behind the ref, even with --since (Flux reads a checkout of it)."""
        with needed_for(f"Git source {source.url}", source.origin):
            return self._collect(source, whole)

    def _collect(self, source: GitSource, whole: bool) -> CollectedGit:
        chain = self.chain
        base = chain.git_record(source.url, source.name) if chain and not whole else None
        commits = chain.git_commits(source.url) if chain and base else []
        fetch = fetch_url(source.url, self.rewrites)
        self.egress.record(url_host(fetch), plain_http=is_plain_http(fetch))
        proxy = self.transport.proxy.for_url(fetch) if self.transport.proxy is not None else None
        if proxy is not None:
            self.egress.record(proxy.netloc, "proxy")
        # The whole source within one deadline, from now; the base's bundle hints at its size.
        timed = self.transport.for_source(base.size if base else None)
        collected = collect_git(
            source,
            self.writer,
            credentials=self.credentials.for_url(fetch),
            transport=timed,
            base_commits=commits,
            base=base,
            fetch_url=fetch,
        )
        self._tell(source, collected)
        return collected

    def _tell(self, source: GitSource, collected: CollectedGit) -> None:
        if collected.skipped_refs:
            skipped = collected.skipped_refs
            names = ", ".join(repr(name) for name in skipped[:5])
            more = f" and {len(skipped) - 5} more" if len(skipped) > 5 else ""
            self.progress.warn(
                f"{source.url}: left out {len(skipped)} ref(s) whose names git refuses: {names}{more}", GIT_REFS_SKIPPED
            )
        news = "" if collected.carried else " (nothing new since the base)"
        self.progress.log(f"git {source.url} {collected.resolved.name or ''} at {collected.resolved.commit}{news}")
