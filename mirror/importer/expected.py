"""The high side of an incremental bundle: what it leaves to its base must already be on the targets.

See docs/importer.md ("Expected on the target").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mirror.bundle.inventory import ArtifactRecord, BaseRecord
from mirror.bundle.verify import VerifiedBundle
from mirror.credentials import Credentials
from mirror.errors import Problem, SourceNotFoundError, TransferError, VerificationError
from mirror.landing import ImagePlan, git_target_url
from mirror.parallel import run_parallel
from mirror.registry.client import RegistryClient

if TYPE_CHECKING:
    from mirror.git.runner import Transport


@dataclass
class ExpectedOnTarget:
    """What the check found: blobs to mount into a repository from another that holds them."""

    mounts: dict[tuple[str, str], str] = field(default_factory=dict)  # (repository, digest) → holder repository
    checked_blobs: int = 0
    checked_manifests: int = 0
    git_sources: list[str] = field(default_factory=list)  # sources that did not move: nothing to push

    def to_json(self) -> dict[str, object]:
        return {
            "blobs": self.checked_blobs,
            "manifests": self.checked_manifests,
            "mounts": len(self.mounts),
            "gitUnchanged": self.git_sources,
        }


def expected_git(verified: VerifiedBundle) -> list[ArtifactRecord]:
    """Git sources this bundle carries nothing for: their bundle is the base chain's."""
    expected = verified.inventory.expected_sizes
    return [a for a in verified.git if a.digest in expected and verified.inventory.file(_path(a)) is None]


def _path(artifact: ArtifactRecord) -> str:
    return "blobs/sha256/" + artifact.digest.removeprefix("sha256:")


def missing_base(base: BaseRecord, count: int) -> str:
    return f"{count} item(s) this incremental bundle leaves to its base are not on the target"


def base_hint(base: BaseRecord) -> str:
    return (
        f"import its base first: {base.describe()}, and the bundles before it; "
        "or collect a full bundle (without --since). Nothing was written"
    )


def check_expected(
    verified: VerifiedBundle,
    plans: list[ImagePlan],
    client: RegistryClient,
    git_base: str | None,
    *,
    jobs: int,
    git_credentials: Credentials | None,
    git_transport: Callable[[], Transport],
) -> ExpectedOnTarget:
    """HEAD everything the bundle expects on the targets; raise VerificationError (exit 3) naming the base.

    git_transport: called only when a Git source is expected (a bundle of images never imports mirror.git)."""
    found = ExpectedOnTarget()
    base = verified.inventory.base
    if base is None:
        return found
    problems: list[Problem] = []
    manifests = sorted({(p.repository, d, p.source) for p in plans for d in p.image.expected_manifests})
    present = run_parallel(manifests, lambda m: client.manifest_digest(m[0], m[1]) == m[1], jobs)
    found.checked_manifests = len(manifests)
    for (repository, digest, source), here in zip(manifests, present, strict=True):
        if not here:
            problems.append(
                Problem("EXPECTED_MANIFEST_MISSING", f"{source}: manifest {digest} is not in repository {repository}")
            )
    blobs = sorted({(p.repository, d, p.source) for p in plans for d in p.image.expected_blobs})
    holders = sorted({p.repository for p in plans})
    present = run_parallel(blobs, lambda b: client.blob_size(b[0], b[1]) is not None, jobs)
    found.checked_blobs = len(blobs)
    for (repository, digest, source), here in zip(blobs, present, strict=True):
        if here:
            continue
        holder = next((h for h in holders if h != repository and client.blob_size(h, digest) is not None), None)
        if holder is None:
            problems.append(
                Problem("EXPECTED_BLOB_MISSING", f"{source}: blob {digest} is not in repository {repository}")
            )
        else:
            found.mounts[(repository, digest)] = holder
    for artifact in expected_git(verified):
        if git_base is None:
            continue  # import refuses a bundle with git sources and no --git before this
        target = git_target_url(git_base, artifact.source)
        problems += _check_git_heads(artifact, target, git_credentials, git_transport())
        found.git_sources.append(artifact.source)
    if problems:
        raise VerificationError(
            f"{verified.reader.location}: {missing_base(base, len(problems))}; its base is {base.describe()}",
            problems=problems,
            hint=base_hint(base),
        )
    return found


def _check_git_heads(
    artifact: ArtifactRecord, target: str, credentials: Credentials | None, transport: Transport
) -> list[Problem]:
    """A source that did not move: the target repository must hold every ref's commit already."""
    from mirror.git.refs import RemoteRefs, remote_refs  # only for a bundle that leaves Git sources to its base

    heads = artifact.extra.get("heads")
    assert isinstance(heads, dict)  # verify checked it is a non-empty mapping of strings
    try:
        refs = remote_refs(target, credentials, transport=transport)
    except SourceNotFoundError:
        refs = RemoteRefs()
    # Ref by ref: the commit being somewhere in the repository is not enough, the ref itself must be there.
    return [
        Problem(
            "EXPECTED_GIT_MISSING",
            f"{artifact.source}: {ref} at {oid} is not in {target}"
            + (f" (it is at {refs[ref]})" if ref in refs else ""),
        )
        for ref, oid in sorted(heads.items())
        if refs.get(ref) != oid
    ]


def mount_expected(client: RegistryClient, found: ExpectedOnTarget) -> int:
    """Link the expected blobs a repository lacks from the repository that holds them; returns how many."""
    for (repository, digest), holder in sorted(found.mounts.items()):
        if not client.mount_blob(repository, digest, holder):
            # Earlier mounts were written: not a refusal before writing (3) but a transfer that failed (4).
            raise TransferError(
                f"{client.endpoint.netloc}: the registry declined to mount {digest} from {holder} into {repository}",
                hint="import a full bundle (collect without --since) into this registry",
            )
    return len(found.mounts)


def refused_git(base: BaseRecord | None, error: VerificationError) -> VerificationError:
    """A git prerequisite the target lacks, said in terms of the base the operator must import first."""
    if base is None or not any("prerequisite" in p.message or "prerequisite" in p.code for p in error.problems):
        return error
    return VerificationError(
        f"{error.message}; this incremental bundle's base is {base.describe()}",
        problems=error.problems,
        hint=base_hint(base),
    )
