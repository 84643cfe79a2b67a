"""Relocation commits in the import's plan: which carried Git sources a fleet reads, and their relocation
commits built in the quarantine repositories, before anything is written (docs/flux-high-side.md).

A carried Git source is relocated when a `flux:` entry reads it (the fleet's root) or when a carried Flux
GitRepository points at it (a Kustomization builds from it), and the ref it was collected at is a branch. Each
such branch gets `refs/heads/mirror/<branch>`: one commit on top of the carried upstream commit whose diff is the
endpoint edits of mirror/flux/relocate.py. The upstream refs are pushed as they are, beside it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

from mirror.bundle.inventory import blob_path
from mirror.bundle.reader import read_small
from mirror.bundle.verify import VerifiedBundle
from mirror.errors import BundleFormatError, IntegrityError, MirrorError, UsageError
from mirror.flux.blob import parse_objects_blob
from mirror.flux.bootstrap import EndpointAccess
from mirror.flux.objects import FluxObject
from mirror.flux.relocate import (
    RELOCATED_BRANCH_PREFIX,
    SOURCE_API_GROUP,
    Relocation,
    relocate_text,
    relocated_branch,
)
from mirror.flux.rewrite import InternalEndpoints
from mirror.git.refs import HEADS
from mirror.git.relocate import relocation_commit
from mirror.git.runner import run_git
from mirror.importer.git import GitPlan
from mirror.limits import Limits
from mirror.terminal import escape


def read_flux_objects(verified: VerifiedBundle, limits: Limits) -> list[FluxObject]:
    """Every object of the bundle's Flux blobs, each blob hashed again as it is read."""
    objects = []
    for artifact in verified.flux:
        path = blob_path(artifact.digest)
        raw = read_small(verified.reader, path, limits.max_flux_objects_bytes)
        if "sha256:" + hashlib.sha256(raw).hexdigest() != artifact.digest:  # read again since verify: check again
            raise IntegrityError(
                f"{verified.reader.location}: {path} changed since it was verified",
                hint="the bundle was altered during the import; verify it again",
            )
        try:
            objects += parse_objects_blob(raw, artifact.source, limits=limits)
        except (ValueError, TypeError, AttributeError) as exc:
            raise BundleFormatError(f"{verified.reader.location}: {path}: not a mirror FluxObjects document") from exc
    return objects


def plan_relocation(
    verified: VerifiedBundle, endpoints: InternalEndpoints, access: EndpointAccess, limits: Limits
) -> Relocation:
    """The branches to relocate ({internal Git URL: branch names}) and the rules their edits follow."""
    if not verified.flux or not endpoints.git_base:
        return Relocation(endpoints, access, {})
    read = {a.extra.get("git") for a in verified.flux}
    pointed = set()
    for obj in read_flux_objects(verified, limits):
        url = obj.spec.get("url")
        if obj.kind == "GitRepository" and obj.group == SOURCE_API_GROUP and isinstance(url, str):
            try:
                pointed.add(endpoints.git_url(url))
            except MirrorError:
                continue  # not landable: the --flux-out rendering names it
    branches: dict[str, frozenset[str]] = {}
    for artifact in verified.git:
        target = endpoints.git_url(artifact.source)
        ref = artifact.extra.get("ref")
        branch = ref.get("branch") if isinstance(ref, dict) else None
        if isinstance(branch, str) and (artifact.extra.get("name") in read or target in pointed):
            branches[target] = branches.get(target, frozenset()) | {branch}
    return Relocation(endpoints, access, branches)


def _editor(relocation: Relocation, notes: list[str]) -> Callable[[str, str], str]:
    return lambda path, text: relocate_text(text, path, relocation, notes)


def relocate_staged(
    plans: Sequence[GitPlan], relocation: Relocation, limits: Limits, warn: Callable[[str], None]
) -> None:
    """Build each relocated branch's commit in its quarantine repository and add `refs/heads/mirror/<branch>`
    to what is pushed there (a ref mirror owns: it may move with a lease when upstream moved)."""
    for plan in plans:
        staged = plan.staged
        carried = [ref for ref in staged.heads if ref.startswith(HEADS + RELOCATED_BRANCH_PREFIX)]
        if carried and plan.target in relocation.branches:
            raise UsageError(
                f"{escape(plan.artifact.source)}: carries {escape(', '.join(carried))}, the name of mirror's "
                "relocation branches",
                hint="collect the source at another branch, or import it without its Flux fleet",
            )
        for branch in sorted(relocation.branches.get(plan.target, ())):
            upstream = staged.heads.get(HEADS + branch)
            if upstream is None:
                continue
            notes: list[str] = []
            commit, edited = relocation_commit(
                staged.path,
                upstream,
                _editor(relocation, notes),
                max_file_bytes=limits.max_flux_objects_bytes,
                containing=SOURCE_API_GROUP,  # relocate_text edits nothing else
            )
            ref = HEADS + relocated_branch(branch)
            run_git(["update-ref", ref, commit], git_dir=staged.path, network=False, failure=MirrorError)
            staged.heads[ref] = commit
            staged.owned.add(ref)
            plan.relocations.append({"ref": ref, "upstream": upstream, "commit": commit, "edited": edited})
            for note in notes:
                warn(escape(f"{plan.artifact.source} {branch}: {note}"))
