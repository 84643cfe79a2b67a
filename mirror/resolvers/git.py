"""Git sources: a ref resolved on the remote, and the history behind it written as a git bundle blob."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from mirror.bundle.inventory import ArtifactRecord
from mirror.bundle.layout import LayoutWriter
from mirror.errors import UsageError
from mirror.git.bundles import BundleInfo, create_bundle
from mirror.git.refs import ResolvedRef, remote_refs, resolve_ref
from mirror.git.runner import Transport
from mirror.manifest.model import GitSource
from mirror.registry.credentials import BoundCredentials, Credentials, credentials_from_env, url_origin

GIT_BUNDLE_MEDIA_TYPE = "application/vnd.mirror.git.bundle"


def git_credentials(env: Mapping[str, str] | None = None, *, named: Iterable[str] = ()) -> BoundCredentials | None:
    """MIRROR_GIT_USERNAME/MIRROR_GIT_PASSWORD, bound to the one Git origin (scheme, host, port) they are for.

    That origin is MIRROR_GIT_HOST when set (`https://host[:port]`, `http://host[:port]`, or `host[:port]`
    meaning https), else the origin of the MirrorSet's own `spec.git` sources (`named`). Git is given them
    for that origin only: never for a host a named one redirects to, nor for a repository a Flux fleet names
    on another host. Several named origins without MIRROR_GIT_HOST are ambiguous (exit 2); none: unused.
    """
    env = os.environ if env is None else env
    credentials = credentials_from_env("MIRROR_GIT_USERNAME", "MIRROR_GIT_PASSWORD", dict(env))
    if credentials is None:
        return None
    chosen = env.get("MIRROR_GIT_HOST", "").strip()
    if chosen:
        origin = url_origin(chosen if "://" in chosen else f"https://{chosen}")
        if origin is None or urlsplit(chosen if "://" in chosen else f"https://{chosen}").path.strip("/"):
            raise UsageError(
                f"MIRROR_GIT_HOST: {chosen!r} is not a Git origin",
                hint="write https://host[:port] (or http://host[:port]), the host the credentials are for",
            )
        return BoundCredentials(credentials.username, credentials.password, origins=(origin,))
    origins = sorted({o for o in (url_origin(u) for u in named) if o is not None})
    if not origins:
        return None
    if len(origins) > 1:
        raise UsageError(
            f"MIRROR_GIT_USERNAME/MIRROR_GIT_PASSWORD are set and the MirrorSet names {len(origins)} Git hosts "
            f"({', '.join(origins)}); credentials go to one host only",
            hint="set MIRROR_GIT_HOST to the origin they are for, e.g. MIRROR_GIT_HOST=" + origins[0],
        )
    return BoundCredentials(credentials.username, credentials.password, origins=(origins[0],))


def target_git_credentials(target: str, env: Mapping[str, str] | None = None) -> BoundCredentials | None:
    """The import's Git credentials, bound to the internal Git server's origin (`--git`) alone."""
    env = os.environ if env is None else env
    credentials = credentials_from_env("MIRROR_GIT_USERNAME", "MIRROR_GIT_PASSWORD", dict(env))
    origin = url_origin(target)
    if credentials is None or origin is None:
        return None
    return BoundCredentials(credentials.username, credentials.password, origins=(origin,))


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
