"""Git sources: list and resolve refs as Flux does, carry them as git bundles, check and push them inside.

runner: run_git (a clean, closed environment; credentials through GIT_ASKPASS; redacted errors).
refs: remote_refs, resolve_ref (Flux's ref precedence and semver over tags).
bundles: create_bundle, inspect_bundle, check_and_stage (quarantine, list-heads, fsck), push_staged.
"""

from mirror.git.bundles import (
    BundleHeads,
    BundleInfo,
    PushResult,
    RefConflictError,
    RefOutcome,
    StagedRepo,
    check_and_stage,
    create_bundle,
    inspect_bundle,
    push_staged,
)
from mirror.git.refs import RemoteRefs, ResolvedRef, remote_refs, resolve_ref
from mirror.git.runner import Transport, check_url, redact, run_git

__all__ = [
    "BundleHeads",
    "BundleInfo",
    "PushResult",
    "RefConflictError",
    "RefOutcome",
    "RemoteRefs",
    "ResolvedRef",
    "StagedRepo",
    "Transport",
    "check_and_stage",
    "check_url",
    "create_bundle",
    "inspect_bundle",
    "push_staged",
    "redact",
    "remote_refs",
    "resolve_ref",
    "run_git",
]
