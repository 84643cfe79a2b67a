"""Git sources: a ref resolved on the remote, and the history behind it written as a git bundle blob."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from mirror.bundle.inventory import ArtifactRecord
from mirror.bundle.layout import LayoutWriter
from mirror.credentials import Credentials
from mirror.git.bundles import BundleInfo, create_bundle
from mirror.git.refs import ResolvedRef, remote_refs, resolve_ref
from mirror.git.runner import Transport
from mirror.manifest.model import GitSource

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
