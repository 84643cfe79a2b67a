"""Git sources: list and resolve refs as Flux does, carry them as git bundles, check and push them inside.

See docs/collector.md ("Git sources") and docs/importer.md ("Git pushes").
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
