"""Loading verified git bundles into the internal Git server, after checking them in quarantine.

See docs/importer.md ("Git pushes").
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from mirror.bundle.inventory import ArtifactRecord, blob_path
from mirror.bundle.reader import BundleReader, opened
from mirror.credentials import Credentials
from mirror.errors import IntegrityError, Problem, VerificationError
from mirror.git.bundles import (
    PushPlan,
    PushResult,
    RefConflictError,
    StagedRepo,
    check_and_stage,
    plan_push,
    push_planned,
)
from mirror.git.runner import Transport
from mirror.landing import check_git_targets


@dataclass
class GitPlan:
    artifact: ArtifactRecord
    target: str
    staged: StagedRepo
    # Relocation commits built on the staged refs (mirror/importer/relocation.py), for the import report.
    relocations: list[dict[str, object]] = field(default_factory=list)


def _copy_out(reader: BundleReader, artifact: ArtifactRecord, dest: Path) -> None:
    """The bundle blob as a file for git, hashed again while copied: what git reads is what was verified."""
    digest = hashlib.sha256()
    with opened(reader, blob_path(artifact.digest)) as source, open(dest, "xb") as out:
        while chunk := source.read(1024 * 1024):
            digest.update(chunk)
            out.write(chunk)
    if f"sha256:{digest.hexdigest()}" != artifact.digest:
        raise IntegrityError(f"{blob_path(artifact.digest)}: changed since it was verified")


def stage_git(
    reader: BundleReader,
    artifacts: list[ArtifactRecord],
    base: str,
    scratch: Path,
    *,
    credentials: Credentials | None,
    transport: Transport,
) -> list[GitPlan]:
    """Check and quarantine every git bundle; raises VerificationError listing every bundle that fails."""
    targets = check_git_targets(base, artifacts, str(reader.location))
    plans, problems = [], []
    for number, artifact in enumerate(artifacts):
        target = targets[artifact.source]
        bundle_file = scratch / f"{number}.bundle"
        try:
            _copy_out(reader, artifact, bundle_file)
            staged = check_and_stage(
                bundle_file,
                artifact.extra["heads"],
                quarantine_dir=scratch / f"{number}.git",
                existing_repo_url=target if artifact.extra.get("prerequisites") else None,
                credentials=credentials,
                transport=transport.for_source(artifact.size),
            )
        except VerificationError as exc:
            problems += [Problem("GIT_INVALID", f"{artifact.source}: {p}") for p in exc.problems] or [
                Problem("GIT_INVALID", f"{artifact.source}: {exc.message}")
            ]
            continue
        finally:
            bundle_file.unlink(missing_ok=True)
        plans.append(GitPlan(artifact, target, staged))
    if problems:
        for plan in plans:
            plan.staged.discard()
        raise VerificationError(
            f"{reader.location}: {len(problems)} git problem(s)", problems=problems, hint="nothing was written"
        )
    return plans


def plan_git_pushes(
    plans: list[GitPlan], *, credentials: Credentials | None, force: bool, transport: Transport
) -> list[tuple[GitPlan, PushPlan]]:
    """Compare every staged repository with its target (ls-remote), before anything is written.

    A branch that is not a fast-forward or a tag that would move, in any repository, is a RefConflictError
    (exit 2) listing all of them, unless force.
    """
    pushes = [
        (plan, plan_push(plan.staged, plan.target, credentials=credentials, transport=transport.for_source()))
        for plan in plans
    ]
    conflicts = [(push.target, problem) for _, push in pushes for problem in push.conflicts]
    if conflicts and not force:
        raise RefConflictError(
            f"{len(conflicts)} Git ref(s) on the target would lose what the target has; nothing was written",
            refs=[problem.message.split(":", 1)[0] for _, problem in conflicts],
            problems=[Problem(problem.code, f"{target}: {problem.message}") for target, problem in conflicts],
            hint="use --force-git to overwrite them with the bundle's",
        )
    return pushes


def push_git(
    pushes: list[tuple[GitPlan, PushPlan]], *, credentials: Credentials | None, force: bool, transport: Transport
) -> list[tuple[GitPlan, PushResult]]:
    """Push what plan_git_pushes found, repository by repository."""
    return [
        (
            plan,
            push_planned(
                push, credentials=credentials, force=force, transport=transport.for_source(plan.artifact.size)
            ),
        )
        for plan, push in pushes  # each source within its own deadline
    ]
