"""The high side as a transaction: plan, check all of it, and only then write.

See docs/importer.md ("The transaction").
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from mirror.bundle.inventory import ArtifactRecord
from mirror.bundle.opening import open_bundle
from mirror.bundle.verify import VerifiedBundle, add_problems, raise_integrity, verify_bundle
from mirror.credentials import Credentials, target_git_credentials
from mirror.errors import (
    MirrorError,
    Problem,
    TransferError,
    UsageError,
    VerificationError,
)
from mirror.importer.attached import AttachedCounts, AttachedPusher, FallbackKey, plan_fallback_indexes
from mirror.importer.expected import ExpectedOnTarget, check_expected, expected_git, mount_expected, refused_git
from mirror.importer.journaling import ImportAttempt, journaled
from mirror.importer.quarantine import quarantine_directory, remove_abandoned
from mirror.importer.registry import (
    Found,
    ImageOutcome,
    ImportCounts,
    RegistryImporter,
    first_repositories,
    missing_images,
    target_credentials,
)
from mirror.importer.streaming import Staged, stream_deferred
from mirror.landing import ImagePlan, parse_git_target, parse_target, plan_landing_names
from mirror.limits import DEFAULT_LIMITS, Limits
from mirror.progress import Progress
from mirror.registry.client import PushedManifest, RegistryClient
from mirror.registry.endpoint import Endpoint
from mirror.trust.check import TrustReport, check_trust, record_import
from mirror.trust.journal_write import JournalWriter, check_importer_key, open_journal
from mirror.trust.keys import Signer, load_signer
from mirror.trust.lock import state_lock
from mirror.trust.policy import TrustPolicy, load_policy
from mirror.trust.state import check_state_location

if TYPE_CHECKING:  # Git pushes and Flux relocation: imported only for a bundle that carries them
    from mirror.flux.bootstrap import EndpointAccess
    from mirror.flux.relocate import Relocation
    from mirror.git.bundles import PushPlan, PushResult
    from mirror.git.runner import Transport
    from mirror.importer.files_out import OutFile
    from mirror.importer.git import GitPlan

RESTORE_BUNDLE_CHANGED = "RESTORE_BUNDLE_CHANGED"


@dataclass(frozen=True)
class ImportReport:
    bundle: str
    registry: str
    dry_run: bool
    bundle_id: str
    images: list[ImageOutcome]
    counts: ImportCounts
    trust: dict[str, object] | None = None  # what was verified: signatures counted, sequence; None if unsigned
    git: list[dict[str, object]] = field(default_factory=list)
    base: dict[str, object] | None = None  # of an incremental bundle: its base, and what was found on the targets
    present_blobs: list[tuple[str, str]] = field(default_factory=list)  # (repository, digest) skipped, for --report
    flux_files: int = 0  # files written to --flux-out (or that would be, in a dry run)
    flux_rewrites: list[dict[str, object]] = field(default_factory=list)  # each source's endpoint, from → to
    attached: AttachedCounts = field(default_factory=AttachedCounts)  # signatures, attestations, SBOMs
    mirror_config: Path | None = None  # --mirror-config's directory
    mirror_config_files: list[str] = field(default_factory=list)  # written there (or that would be, in a dry run)
    files_out: dict[str, object] | None = None  # --files-out: the directory and the files written there

    def to_json(self) -> dict[str, object]:
        return {
            "bundle": self.bundle,
            "bundleId": self.bundle_id,
            "registry": self.registry,
            "dryRun": self.dry_run,
            "trust": self.trust,
            "git": self.git,
            "base": self.base,
            "images": [i.to_json() for i in self.images],
            "fluxFiles": self.flux_files,
            "fluxRewrites": self.flux_rewrites,
            "attached": self.attached.to_json(),
            "mirrorConfig": None
            if self.mirror_config is None
            else {"directory": str(self.mirror_config), "files": self.mirror_config_files, "written": not self.dry_run},
            "filesOut": self.files_out,
            **self.counts.to_json(),
        }


@dataclass
class WriteLog:
    """What an import has written so far, for the message and the report of a run that failed half-way."""

    state_recorded: bool = False
    registry_requests: int = 0  # write requests started: blob uploads, mounts, manifest and tag PUTs
    git_pushed: list[str] = field(default_factory=list)  # target repositories whose push completed
    git_started: str | None = None  # the repository being pushed when the run stopped
    flux_files: int = 0
    mirror_config_files: int = 0
    files_out: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def registry_write(self) -> None:
        with self.lock:
            self.registry_requests += 1

    def to_json(self) -> dict[str, object]:
        return {
            "stateRecorded": self.state_recorded,
            "registryWriteRequests": self.registry_requests,
            "gitPushed": list(self.git_pushed),
            "gitInterrupted": self.git_started,
            "fluxFiles": self.flux_files,
            "mirrorConfigFiles": self.mirror_config_files,
            "filesOut": self.files_out,
        }

    def describe(self) -> str:
        parts = ["the trust state records this bundle"] if self.state_recorded else []
        parts.append(f"{self.registry_requests} registry write request(s)")
        parts.append(f"{len(self.git_pushed)} Git repositor{'y' if len(self.git_pushed) == 1 else 'ies'} pushed")
        if self.git_started:
            parts.append(f"a push to {self.git_started} under way")
        parts.append(f"{self.flux_files} --flux-out file(s)")
        parts.append(f"{self.mirror_config_files} --mirror-config file(s)")
        if self.files_out:
            parts.append(f"{self.files_out} --files-out file(s)")
        return ", ".join(parts)


class PlanRefused(UsageError):
    """Several problems with the operator's input (flags, targets) found while planning the import (exit 2)."""

    def __init__(self, message: str, *, problems: list[Problem], hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.problems = problems

    def __str__(self) -> str:
        return self.message + "\n" + "\n".join(f"  - {p}" for p in self.problems)


class PartialImportError(TransferError):
    """The import stopped after its first write (exit 4): what was written is kept, and a re-run resumes."""

    def __init__(self, cause: BaseException, written: WriteLog) -> None:
        reason = cause.message if isinstance(cause, MirrorError) else f"{type(cause).__name__}: {cause}"
        hint = "run the same import again to resume: it skips what is on the targets"
        if written.state_recorded:  # never with --allow-unsigned, which records nothing
            hint += ", and the trust state already records this bundle, so an older one stays refused"
        super().__init__(
            f"partially imported ({written.describe()}): {reason}",
            problems=getattr(cause, "problems", None) or [],
            hint=hint,
        )
        self.cause = cause
        self.written = written.to_json()


class _RecordingClient(RegistryClient):
    """A registry client that notes every write request it starts in a WriteLog."""

    def __init__(self, *args: Any, writes: WriteLog, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._writes = writes

    def put_manifest(self, *args: Any, **kwargs: Any) -> PushedManifest:
        self._writes.registry_write()
        return super().put_manifest(*args, **kwargs)

    def upload_blob(self, *args: Any, **kwargs: Any) -> None:
        self._writes.registry_write()
        super().upload_blob(*args, **kwargs)

    def mount_blob(self, *args: Any, **kwargs: Any) -> bool:
        self._writes.registry_write()
        return super().mount_blob(*args, **kwargs)

    def push_blob(self, *args: Any, **kwargs: Any) -> bool:
        self._writes.registry_write()  # the mount POST; an upload it turns into is noted by upload_blob
        return super().push_blob(*args, **kwargs)

    def finish_streamed(self, *args: Any, **kwargs: Any) -> None:
        self._writes.registry_write()  # the upload's commit; its bytes were sent while the bundle was verified
        super().finish_streamed(*args, **kwargs)


def verify_checksums(bundle: str | Path, *, jobs: int, progress: Progress, limits: Limits) -> VerifiedBundle:
    """Every check of --allow-unsigned but the hashing of the big image blobs, left to finish_verification."""
    reader = open_bundle(bundle, limits)
    return verify_bundle(reader, jobs=jobs, limits=limits, progress=progress, defer_from=limits.stream_upload_min_bytes)


def import_bundle(
    bundle: str | Path,
    registry_url: str,
    *,
    trust: Path | None = None,
    allow_unsigned: bool = False,
    jobs: int = 4,
    dry_run: bool = False,
    ca_file: str | None = None,
    progress: Progress | None = None,
    limits: Limits = DEFAULT_LIMITS,
    clock: dt.datetime | None = None,
    git_url: str | None = None,
    force_git: bool = False,
    flux_out: Path | None = None,
    mirror_config: Path | None = None,
    node_ca_path: str | None = None,
    lock_timeout: float | None = None,
    transport: httpx.BaseTransport | None = None,
    importer_key: Path | None = None,
    files_out: Path | None = None,
) -> ImportReport:
    """Plan and check everything, record the trust state, then write (see the module doc); every attempt that
    takes the lock is appended to the journal, signed with `importer_key` (docs/journal.md).

    mirror_config: the directory of the nodes' registry mirror files; node_ca_path: the registry CA's path on the
    nodes, written into them (never `ca_file`, the importer's own).
    transport: stands in for the network of the target registry's client (tests: the registry simulator).
    """
    progress = progress or Progress(quiet=True)
    outputs = _Outputs(flux_out, mirror_config, node_ca_path, files_out)
    endpoint, git_base = _check_usage(trust, allow_unsigned, registry_url, ca_file, git_url, outputs, limits)
    if importer_key is not None and allow_unsigned:
        raise UsageError("--importer-key signs journal entries, and --allow-unsigned keeps no trust state or journal")
    with contextlib.ExitStack() as held:
        policy = load_import_policy(trust) if trust is not None else None
        signer = importer_signer(importer_key, policy)
        run = ImportRun(endpoint, registry_url, git_base, ca_file, jobs, limits, progress, transport, trust, policy)
        run.clock, run.outputs = clock, outputs
        if policy is not None and not dry_run:  # taken before the state is read for the trust check
            run.journal = hold_journal(held, policy, signer, lock_timeout=lock_timeout, progress=progress)
        return run.one(bundle, ImportAttempt(endpoint, git_base, limits), dry_run=dry_run, force=force_git)


def hold_journal(
    held: contextlib.ExitStack,
    policy: TrustPolicy,
    signer: Signer | None,
    *,
    lock_timeout: float | None,
    progress: Progress,
    limits: Limits = DEFAULT_LIMITS,
) -> JournalWriter:
    """The trust state lock, held until `held` closes, and the journal checked whole and opened for appending."""
    held.enter_context(state_lock(policy.state_file, timeout=lock_timeout, announce=progress.warn))
    return open_journal(policy.state_file, limits=limits, importers=policy.importers, signer=signer, warn=progress.warn)


@dataclass
class ImportRun:
    """What the bundles of one run share: the targets, the flags, the policy and the journal held under the lock.
    `import` takes one bundle; `restore` a chain, under one lock (importer/restore.py)."""

    endpoint: Endpoint
    registry_url: str
    git_base: str | None
    ca_file: str | None
    jobs: int
    limits: Limits
    progress: Progress
    transport: httpx.BaseTransport | None = None  # None: the real network, through mirror.netguard
    trust: Path | None = None  # None: --allow-unsigned
    policy: TrustPolicy | None = None
    journal: JournalWriter | None = None  # None: a dry run, or --allow-unsigned
    clock: dt.datetime | None = None
    outputs: _Outputs = field(default_factory=lambda: _Outputs())

    def one(
        self,
        bundle: str | Path,
        attempt: ImportAttempt,
        *,
        dry_run: bool = False,
        force: bool = False,
        replay: str | None = None,
    ) -> ImportReport:
        """One bundle verified, planned, checked and written, journaled as `attempt`.

        replay: `sha256:<hex>` of the inventory restore imports again (verdict.evaluate: not judged for age and
        order); the bundle must still have that inventory.
        """
        progress = self.progress
        with journaled(self.journal, attempt, progress.log, progress.warn):
            remove_abandoned(log=progress.log)
            state_file = self.policy.state_file if self.policy is not None else None
            verified, report = _verify(
                bundle,
                self.trust,
                state_file,
                attempt,
                jobs=self.jobs,
                progress=progress,
                limits=self.limits,
                clock=self.clock,
                replay=replay,
            )
            targets = _Targets(
                self.endpoint,
                self.registry_url,
                self.git_base,
                self.ca_file,
                self.jobs,
                self.limits,
                progress,
                self.transport,
            )
            return _plan_check_write(
                bundle, verified, report, targets, attempt, outputs=self.outputs, dry_run=dry_run, force=force
            )


def _check_usage(
    trust: Path | None,
    allow_unsigned: bool,
    registry_url: str,
    ca_file: str | None,
    git_url: str | None,
    outputs: _Outputs,
    limits: Limits,
) -> tuple[Endpoint, str | None]:
    """The flags, the target URLs and the output directories; returns the registry endpoint and the Git base."""
    if trust is not None and allow_unsigned:
        raise UsageError("give --trust POLICY or --allow-unsigned, not both")
    if trust is None and not allow_unsigned:
        raise UsageError(
            "import needs --trust POLICY",
            hint="for a lab without signatures, --allow-unsigned imports on checksums alone",
        )
    endpoint = parse_target(registry_url, ca_file)
    git_base = parse_git_target(git_url) if git_url else None
    if outputs.flux_out is not None:
        from mirror.importer.flux_out import check_output_directory

        check_output_directory(outputs.flux_out, limits=limits)
    if outputs.writes_node_files or outputs.node_ca_path is not None:
        from mirror.importer.mirror_config import MIRROR_CONFIG, check_output_flags

        check_output_flags(outputs.mirror_config, outputs.flux_out, outputs.node_ca_path, endpoint)
        if outputs.mirror_config is not None:
            MIRROR_CONFIG.check(outputs.mirror_config, limits=limits)
    if outputs.files_out is not None:
        from mirror.importer.files_out import check_output_directory as check_files_out
        from mirror.importer.files_out import check_output_flags as check_files_out_flags

        check_files_out_flags(
            outputs.files_out, {"--flux-out": outputs.flux_out, "--mirror-config": outputs.mirror_config}
        )
        check_files_out(outputs.files_out, limits=limits)
    return endpoint, git_base


@dataclass(frozen=True)
class _Outputs:
    """The directories of rendered files an import writes after the registry and Git, and the nodes' CA path."""

    flux_out: Path | None = None
    mirror_config: Path | None = None
    node_ca_path: str | None = None
    files_out: Path | None = None

    @property
    def writes_node_files(self) -> bool:
        """Whether the nodes' registry mirror files are rendered: --mirror-config, and --flux-out's _registries/."""
        return self.flux_out is not None or self.mirror_config is not None


def load_import_policy(trust: Path) -> TrustPolicy:
    """The policy, and a state file that can be written where it says (exit 2 if not)."""
    policy = load_policy(trust)
    check_state_location(policy.state_file)
    return policy


def importer_signer(importer_key: Path | None, policy: TrustPolicy | None) -> Signer | None:
    """--importer-key loaded, and held to the policy's importer keys (exit 2, before the lock)."""
    signer = load_signer(importer_key) if importer_key is not None else None
    if policy is not None:
        check_importer_key(policy.importers, signer)
    return signer


def _verify(
    bundle: str | Path,
    trust: Path | None,
    state_file: Path | None,
    attempt: ImportAttempt,
    *,
    jobs: int,
    progress: Progress,
    limits: Limits,
    clock: dt.datetime | None,
    replay: str | None = None,
) -> tuple[VerifiedBundle, TrustReport | None]:
    """Every check of `verify` under the policy, or the checksums alone with --allow-unsigned.

    state_file: the policy's, as read before the lock was taken; the policy must still name it.
    replay: see ImportRun.one.
    """
    if trust is None:
        progress.warn("--allow-unsigned: importing on checksums alone; no signature or approval is checked")
        return verify_checksums(bundle, jobs=jobs, progress=progress, limits=limits), None
    waived = None if replay is None else replay.removeprefix("sha256:")
    report = check_trust(
        bundle,
        trust,
        jobs=jobs,
        limits=limits,
        progress=progress,
        clock=clock,
        replay=waived,
        defer_from=limits.stream_upload_min_bytes,  # hashed while uploaded: see finish_verification
    )
    attempt.report = report  # journaled, refused or not
    if waived is not None and report.checked.inventory_sha256 != waived:
        raise VerificationError(
            f"{bundle}: its inventory changed since the restore checked the chain",
            problems=[Problem(RESTORE_BUNDLE_CHANGED, f"sha256:{report.checked.inventory_sha256}, not {replay}")],
            hint="nothing of this bundle was written; do not change the bundles while they are restored",
        )
    report.require()
    if report.policy.state_file != state_file:
        raise UsageError(f"{trust}: the trust policy changed during the import (its stateFile moved)")
    return report.checked, report


@dataclass
class _Targets:
    """Where an import writes, and how it reaches there."""

    endpoint: Endpoint
    registry_url: str
    git_base: str | None
    ca_file: str | None
    jobs: int
    limits: Limits
    progress: Progress
    transport: httpx.BaseTransport | None = None  # None: the real network, through mirror.netguard
    credentials: Credentials | None = None
    git_credentials: Credentials | None = None

    def __post_init__(self) -> None:
        self.credentials = target_credentials(self.endpoint)
        self.git_credentials = target_git_credentials(self.git_base) if self.git_base else None  # --git's origin

    @functools.cached_property
    def git_transport(self) -> Transport:
        """Built when first needed: a bundle without Git sources never imports the Git machinery."""
        from mirror.git.runner import Transport

        return Transport(ca_file=self.ca_file).with_limits(self.limits)  # a deadline per source

    def registry(self, writes: WriteLog | None = None) -> RegistryClient:
        options: dict[str, Any] = {
            "max_connections": self.jobs * 2,
            "log": self.progress.warn,
            "transport": self.transport,
        }
        if writes is None:
            return RegistryClient(self.endpoint, self.credentials, self.limits, **options)
        return _RecordingClient(self.endpoint, self.credentials, self.limits, **options, writes=writes)


@dataclass
class _Plan:
    """Everything the import will write, checked."""

    images: list[ImagePlan]
    flux_files: dict[str, str]  # --flux-out: relative path → text
    expected: ExpectedOnTarget
    staged: list[GitPlan] = field(default_factory=list)
    pushes: list[tuple[GitPlan, PushPlan]] = field(default_factory=list)
    flux_previous: dict[str, str] = field(default_factory=dict)
    flux_rewrites: list[dict[str, object]] = field(
        default_factory=list
    )  # --flux-out: what an earlier night wrote there
    relocation: Relocation | None = None  # the branches of the fleets' Git sources relocated, and how
    attached: list[ImagePlan] = field(default_factory=list)  # signatures, attestations, SBOMs, after the images
    fallback: dict[FallbackKey, list[dict[str, Any]]] = field(default_factory=dict)  # tag schema indexes found
    node_files: dict[str, str] = field(default_factory=dict)  # the nodes' registry mirror files (mirror/nodeconfig)
    files_out: dict[str, OutFile] = field(default_factory=dict)  # --files-out: name → the file written there
    files_out_previous: dict[str, str] = field(default_factory=dict)  # what an earlier night wrote there
    mirror_config_previous: dict[str, str] = field(default_factory=dict)  # what an earlier night wrote there


def _plan_check_write(
    bundle: str | Path,
    verified: VerifiedBundle,
    report: TrustReport | None,
    targets: _Targets,
    attempt: ImportAttempt,
    *,
    outputs: _Outputs,
    dry_run: bool,
    force: bool,
) -> ImportReport:
    progress = targets.progress
    refusals = _Refusals()
    plan = _plan(bundle, verified, targets, outputs, refusals)
    carried_git = [a for a in verified.git if a not in expected_git(verified)]
    with quarantine_directory() if targets.git_base and carried_git else contextlib.nullcontext() as scratch:
        try:
            if scratch is not None:
                with refusals.check():
                    _stage(plan, verified, carried_git, targets, scratch, force=force)
            refusals.raise_any(bundle)
            node_files = len(plan.node_files) if outputs.mirror_config is not None else 0
            attempt.plan(plan.images, plan.attached, [p for _, p in plan.pushes], len(plan.flux_files), node_files)
            file_count = sum(1 for p in plan.images if p.image.artifact.kind == "file")
            images = len(plan.images) - file_count
            passed = (
                f"verified {len(verified.inventory.files)} bundle files: {images} image(s) and chart(s), "
                f"{file_count} file(s), {len(plan.attached)} attached manifest(s), {len(plan.staged)} git source(s); "
                "every check passed"
            )
            written = _write_or_dry_run(plan, verified, report, targets, attempt, outputs, dry_run, force, passed)
            attempt.done(written.outcomes, [result for _, result in written.pushed])
        finally:
            for staged in plan.staged:
                staged.staged.discard()
    for _, result in written.pushed:
        for note in result.notes:
            progress.warn(f"{result.target}: {note}")
    imported = _import_report(bundle, verified, report, targets, plan, written, dry_run, outputs.mirror_config)
    if outputs.files_out is None:
        return imported
    files = [{"name": f.name, "sha256": f.sha256, "size": f.size} for f in plan.files_out.values()]
    return replace(imported, files_out={"directory": str(outputs.files_out), "files": files, "written": not dry_run})


@dataclass(frozen=True)
class _Written:
    """What the write step (or a dry run) did: the registry's importer, image outcomes, Git pushes, attached."""

    importer: RegistryImporter
    outcomes: list[ImageOutcome]
    pushed: list[tuple[GitPlan, PushResult]]
    attached: AttachedCounts


def _write_or_dry_run(
    plan: _Plan,
    verified: VerifiedBundle,
    report: TrustReport | None,
    targets: _Targets,
    attempt: ImportAttempt,
    outputs: _Outputs,
    dry_run: bool,
    force: bool,
    passed: str,
) -> _Written:
    """A dry run hashes what is left to hash, then asks the registry what it has; a real one streams the big blobs
    into upload sessions while it hashes them, records the trust state once all matched, then commits."""
    if dry_run:
        finish_verification(verified, report, None, {}, targets)
        targets.progress.log(passed)
        with targets.registry() as client:
            importer = RegistryImporter(
                client, verified.reader, jobs=targets.jobs, progress=targets.progress, dry_run=True
            )
            outcomes = importer.run(plan.images)
            return _Written(importer, outcomes, [], AttachedPusher(importer, plan.fallback).run(plan.attached))
    # The last check of the plan: the registry answers and lets these credentials push, so a typo'd --registry
    # or a refused login stops here, before the trust state records a bundle that was never imported.
    if plan.images:
        with targets.registry() as client:
            client.check_push_access(plan.images[0].repository)
    # The end of the verification, overlapped with the upload: no upload finished, nothing visible (not counted
    # in the WriteLog), until every byte matched.
    with targets.registry() as client:
        found = RegistryImporter(
            client, verified.reader, jobs=targets.jobs, progress=targets.progress, dry_run=False
        ).survey(plan.images)
        staged = finish_verification(
            verified, report, client, first_repositories(missing_images(plan.images, found)), targets
        )
    targets.progress.log(passed)
    # Rollback protection first: from here on, whatever happens, an older bundle is refused.
    written = WriteLog()
    if report is not None:
        if attempt.kind == "import":  # a restore imports what the state already records: it stays as it is
            record_import(report)
            written.state_recorded = True
        attempt.writes = written  # from here on, a failure is a partial import
    try:
        return _write(plan, verified, targets, written, outputs=outputs, force=force, found=found, staged=staged)
    except (MirrorError, OSError) as exc:
        raise PartialImportError(exc, written) from exc


def finish_verification(
    verified: VerifiedBundle,
    report: TrustReport | None,
    client: RegistryClient | None,
    first_repository: dict[str, str],
    targets: _Targets,
) -> Staged:
    """Hash the blobs the trust check deferred, streaming those the import uploads (digest → first repository)
    into upload sessions (client None: a dry run, nothing sent); refuse the bundle as verify would if any
    mismatched, its sessions cancelled, nothing finished."""
    staged = stream_deferred(
        verified, client, first_repository, jobs=targets.jobs, limits=targets.limits, progress=targets.progress
    )
    add_problems(verified, staged.problems, targets.limits)
    if staged.problems and client is not None:
        staged.abandon(client)
    if report is not None:
        report.require()
    else:
        raise_integrity(verified)
    return staged


def _import_report(
    bundle: str | Path,
    verified: VerifiedBundle,
    report: TrustReport | None,
    targets: _Targets,
    plan: _Plan,
    written: _Written,
    dry_run: bool,
    mirror_config: Path | None,
) -> ImportReport:
    endpoint = targets.endpoint
    display = endpoint.netloc + (f"/{endpoint.repo_prefix}" if endpoint.repo_prefix else "")
    trusted = None
    if report is not None:
        summary = report.to_json()
        trusted = {k: summary[k] for k in ("inventorySha256", "sequence", "signatures")}
    base = verified.inventory.base
    return ImportReport(
        str(bundle),
        display,
        dry_run,
        verified.inventory.bundle_id,
        written.outcomes,
        written.importer.counts,
        trusted,
        _git_report(plan.staged, written.pushed, dry_run),
        None if base is None else {**base.to_json(), **plan.expected.to_json()},
        written.importer.present_blobs,
        len(plan.flux_files),
        plan.flux_rewrites,
        written.attached,
        mirror_config,
        sorted(plan.node_files) if mirror_config is not None else [],
    )


class _Refusals:
    """The plan's independent checks all run; their refusals are reported together, before any write."""

    def __init__(self) -> None:
        self.errors: list[UsageError | VerificationError] = []

    @contextlib.contextmanager
    def check(self) -> Iterator[None]:
        try:
            yield
        except (UsageError, VerificationError) as exc:
            self.errors.append(exc)

    def raise_any(self, bundle: str | Path) -> None:
        if len(self.errors) == 1:
            raise self.errors[0]
        if not self.errors:
            return
        problems = [
            problem if isinstance(problem, Problem) else Problem("IMPORT_REFUSED", f"{error.message}: {problem}")
            for error in self.errors
            for problem in (error.problems or [Problem("IMPORT_REFUSED", error.message)])
        ]
        message = f"{bundle}: refused, {len(problems)} problem(s) found before anything was written"
        hints = dict.fromkeys(_without_nothing_written(e.hint) for e in self.errors if e.hint)  # each one once
        hint = "; ".join(["nothing was written", *(h for h in hints if h)])
        if any(isinstance(e, VerificationError) for e in self.errors):
            raise VerificationError(message, problems=problems, hint=hint)  # the bundle is at fault: exit 3
        raise PlanRefused(message, problems=problems, hint=hint)


_NOTHING_WRITTEN = re.compile(r"[;.]?\s*nothing was written(?: there)?\s*[;.]?\s*", re.IGNORECASE)


def _without_nothing_written(hint: str) -> str:
    """A refusal's hint without its own "nothing was written": the combined hint says it once."""
    return _NOTHING_WRITTEN.sub("; ", hint).strip("; ")


def _plan(
    bundle: str | Path, verified: VerifiedBundle, targets: _Targets, outputs: _Outputs, refusals: _Refusals
) -> _Plan:
    """Landing names, the nodes' registry mirror files and the --flux-out files, what an incremental bundle
    expects on the targets."""
    landings = plan_landing_names(verified, targets.endpoint.repo_prefix, targets.git_base)
    images = landings.images
    plan = _Plan(images, {}, ExpectedOnTarget(), attached=landings.attached)
    if verified.git and targets.git_base is None:
        refusals.errors.append(
            UsageError(
                f"{bundle}: the bundle carries {len(verified.git)} Git source(s)", hint="give the Git server: --git URL"
            )
        )
    if verified.flux and targets.git_base is not None:
        from mirror.flux.rewrite import InternalEndpoints
        from mirror.importer.relocation import plan_relocation

        with refusals.check():
            endpoints = InternalEndpoints(targets.registry_url, targets.git_base)
            plan.relocation = plan_relocation(verified, endpoints, _endpoint_access(targets), targets.limits)
    if outputs.writes_node_files:
        from mirror.importer.mirror_config import MIRROR_CONFIG, plan_node_files

        with refusals.check():
            plan.node_files = plan_node_files(
                [*images, *plan.attached],
                targets.endpoint,
                node_ca_path=outputs.node_ca_path,
                local_ca=targets.ca_file is not None,
                warn=targets.progress.warn,
            )
        if outputs.mirror_config is not None:
            with refusals.check():
                plan.mirror_config_previous = MIRROR_CONFIG.check(outputs.mirror_config, limits=targets.limits)
    if outputs.flux_out is not None:
        from mirror.importer.flux_out import check_output_directory, render_flux_out  # only --flux-out pays

        with refusals.check():
            plan.flux_previous = check_output_directory(outputs.flux_out, limits=targets.limits)
        with refusals.check():
            rendered = render_flux_out(
                verified,
                outputs.flux_out,
                targets.registry_url,
                targets.git_base,
                node_files=plan.node_files,
                limits=targets.limits,
                warn=targets.progress.warn,
                access=_endpoint_access(targets),
                relocation=plan.relocation,
            )
            plan.flux_files, plan.flux_rewrites = rendered.files, rendered.rewrites
    if outputs.files_out is not None:
        from mirror.importer.files_out import check_output_directory as check_files_out
        from mirror.importer.files_out import plan_files_out

        with refusals.check():
            plan.files_out_previous = check_files_out(outputs.files_out, limits=targets.limits)
            plan.files_out = plan_files_out(verified, plan.files_out_previous)
    if verified.inventory.base is not None:
        with refusals.check(), targets.registry() as client:
            plan.expected = check_expected(
                verified,
                [*images, *plan.attached],
                client,
                targets.git_base,
                jobs=targets.jobs,
                git_credentials=targets.git_credentials,
                git_transport=lambda: targets.git_transport,
            )
    if plan.attached:
        with refusals.check(), targets.registry() as client:
            plan.fallback = plan_fallback_indexes(client, plan.attached, jobs=targets.jobs, limits=targets.limits)
    return plan


def _endpoint_access(targets: _Targets) -> EndpointAccess:
    """What the internal endpoints ask for (authentication, a private CA), for Flux objects pointed at them."""
    from mirror.flux.bootstrap import EndpointAccess

    return EndpointAccess(
        git_auth=targets.git_credentials is not None,
        registry_auth=targets.credentials is not None,
        ca=targets.ca_file is not None,
    )


def _stage(
    plan: _Plan,
    verified: VerifiedBundle,
    carried: list[ArtifactRecord],
    targets: _Targets,
    scratch: Path,
    *,
    force: bool,
) -> None:
    """Every carried git bundle checked and fsck'ed in quarantine, its refs compared with the target's."""
    from mirror.importer.git import plan_git_pushes, stage_git
    from mirror.importer.relocation import relocate_staged

    assert targets.git_base is not None
    try:
        plan.staged = stage_git(
            verified.reader,
            carried,
            targets.git_base,
            scratch,
            credentials=targets.git_credentials,
            transport=targets.git_transport,
        )
    except VerificationError as exc:
        raise refused_git(verified.inventory.base, exc) from exc
    if plan.relocation is not None and plan.relocation.branches:
        relocate_staged(plan.staged, plan.relocation, targets.limits, targets.progress.warn)
    plan.pushes = plan_git_pushes(
        plan.staged, credentials=targets.git_credentials, force=force, transport=targets.git_transport
    )


def _write(
    plan: _Plan,
    verified: VerifiedBundle,
    targets: _Targets,
    written: WriteLog,
    *,
    outputs: _Outputs,
    force: bool,
    found: list[Found],
    staged: Staged,
) -> _Written:
    """Registry (blobs, manifests, tags), then Git pushes, then the --flux-out and --mirror-config files, noting
    each in `written`."""
    with targets.registry(written) as client:
        importer = RegistryImporter(
            client, verified.reader, jobs=targets.jobs, progress=targets.progress, dry_run=False
        )
        importer.counts.add(blobs_mounted=mount_expected(client, plan.expected))
        outcomes = importer.run(plan.images, found, staged)
        attached = AttachedPusher(importer, plan.fallback).run(plan.attached)  # after their subjects
    pushed: list[tuple[GitPlan, PushResult]] = []
    for git_plan, push in plan.pushes:
        from mirror.importer.git import push_git

        written.git_started = push.target
        pushed += push_git(
            [(git_plan, push)], credentials=targets.git_credentials, force=force, transport=targets.git_transport
        )
        written.git_pushed.append(push.target)
        written.git_started = None
    if outputs.flux_out is not None:
        from mirror.importer.flux_out import write_flux_out

        write_flux_out(plan.flux_files, outputs.flux_out, written, plan.flux_previous)
        targets.progress.log(
            f"wrote {len(plan.flux_files)} file(s) of Flux objects and registry mirror configuration to "
            f"{outputs.flux_out}"
        )
    if outputs.files_out is not None:
        from mirror.importer.files_out import write_files_out

        def count() -> None:
            written.files_out += 1

        write_files_out(
            plan.files_out,
            verified.reader,
            outputs.files_out,
            plan.files_out_previous,
            on_file=count,
            limits=targets.limits,
        )
        targets.progress.log(f"wrote {len(plan.files_out)} file(s) to {outputs.files_out}")
    if outputs.mirror_config is not None:
        from mirror.importer.mirror_config import write_mirror_config

        write_mirror_config(plan.node_files, outputs.mirror_config, written, plan.mirror_config_previous)
        targets.progress.log(
            f"wrote {len(plan.node_files)} registry mirror configuration file(s) to {outputs.mirror_config}"
        )
    return _Written(importer, outcomes, pushed, attached)


def _git_report(
    staged: list[GitPlan], pushed: list[tuple[GitPlan, PushResult]], dry_run: bool
) -> list[dict[str, object]]:
    if dry_run:
        return [
            {"source": plan.artifact.source, "target": plan.target, "refs": None, "relocations": plan.relocations}
            for plan in staged
        ]
    return [
        {
            "source": plan.artifact.source,
            "target": result.target,
            "refs": {ref: {"outcome": o.outcome, "old": o.old, "new": o.new} for ref, o in result.refs.items()},
            "relocations": plan.relocations,
        }
        for plan, result in pushed
    ]
