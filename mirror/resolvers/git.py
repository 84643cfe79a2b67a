"""Git sources: a ref resolved on the remote, and the history behind it written as a git bundle blob."""

from __future__ import annotations

from dataclasses import dataclass

from mirror.bundle.layout import LayoutWriter
from mirror.git.bundles import BundleInfo, create_bundle
from mirror.git.refs import ResolvedRef, remote_refs, resolve_ref
from mirror.git.runner import Transport
from mirror.manifest.model import GitSource
from mirror.registry.credentials import Credentials, credentials_from_env

GIT_BUNDLE_MEDIA_TYPE = "application/vnd.mirror.git.bundle"


def git_credentials(env: dict[str, str] | None = None) -> Credentials | None:
    return credentials_from_env("MIRROR_GIT_USERNAME", "MIRROR_GIT_PASSWORD", env)


@dataclass(frozen=True)
class CollectedGit:
    source: GitSource
    resolved: ResolvedRef
    bundle: BundleInfo

    @property
    def digest(self) -> str:
        return f"sha256:{self.bundle.sha256}"

    def artifact_extra(self) -> dict[str, object]:
        return {
            "name": self.source.name,
            "ref": dict(self.source.ref),
            "refName": self.resolved.name,
            "commit": self.resolved.commit,
            "heads": dict(self.bundle.heads),
            "prerequisites": list(self.bundle.prerequisites),
        }


def collect_git(
    source: GitSource, writer: LayoutWriter, *, credentials: Credentials | None, transport: Transport
) -> CollectedGit:
    """Resolve the source's ref and store its history as a git bundle blob in the layout."""
    refs = remote_refs(source.url, credentials, transport=transport)
    resolved = resolve_ref(refs, source.ref, where=source.origin, url=source.url)
    with writer.scratch_path() as path:
        info = create_bundle(source.url, resolved, path, credentials=credentials, refs=refs, transport=transport)
        writer.adopt(path, f"sha256:{info.sha256}", info.size)
    return CollectedGit(source, resolved, info)
