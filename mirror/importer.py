"""The high side: verify the whole bundle first, and only then write to the targets."""

from __future__ import annotations

import datetime as dt
import hashlib
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from mirror.bundle.inventory import blob_path
from mirror.bundle.reader import open_bundle, read_small
from mirror.bundle.verify import VerifiedBundle, verify_bundle
from mirror.errors import IntegrityError, UsageError, VerificationError
from mirror.git.bundles import PushResult
from mirror.git.runner import Transport
from mirror.limits import DEFAULT_LIMITS, Limits
from mirror.oci.reference import parse_reference
from mirror.progress import Progress
from mirror.registry.client import RegistryClient
from mirror.resolvers.git import target_git_credentials
from mirror.targets.expected import ExpectedOnTarget, check_expected, expected_git, mount_expected, refused_git
from mirror.targets.git import GitPlan, parse_git_target, push_git, stage_git
from mirror.targets.landing import plan_landing_names
from mirror.targets.registry import (
    ImageOutcome,
    ImportCounts,
    RegistryImporter,
    parse_target,
    target_credentials,
)
from mirror.trust.check import TrustReport, check_trust, record_import


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
            **self.counts.to_json(),
        }


def verify_checksums(bundle: str | Path, *, jobs: int, progress: Progress, limits: Limits) -> VerifiedBundle:
    return verify_bundle(open_bundle(bundle, limits), jobs=jobs, limits=limits, progress=progress)


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
) -> ImportReport:
    """Verify everything first (files, graph, signatures, policy, git bundles), and only then write."""
    progress = progress or Progress(quiet=True)
    if trust is not None and allow_unsigned:
        raise UsageError("give --trust POLICY or --allow-unsigned, not both")
    if trust is None and not allow_unsigned:
        raise UsageError(
            "import needs --trust POLICY",
            hint="for a lab without signatures, --allow-unsigned imports on checksums alone",
        )
    endpoint = parse_target(registry_url, ca_file)
    report = None
    if trust is not None:
        report = verify_with_policy(bundle, trust, jobs=jobs, progress=progress, limits=limits, clock=clock)
        verified = report.checked
    else:
        progress.warn("--allow-unsigned: importing on checksums alone; no signature or approval is checked")
        verified = verify_checksums(bundle, jobs=jobs, progress=progress, limits=limits)
    if verified.git and git_url is None:
        raise UsageError(
            f"{bundle}: the bundle carries {len(verified.git)} Git source(s)", hint="give the Git server: --git URL"
        )
    git_base = parse_git_target(git_url) if git_url else None
    plans = plan_landing_names(verified, endpoint.repo_prefix, git_base).images
    credentials = target_credentials(endpoint)
    git_creds = target_git_credentials(git_base) if git_base else None  # for the --git origin alone
    git_transport = Transport(ca_file=ca_file)
    expected = ExpectedOnTarget()
    if verified.inventory.base is not None:
        with RegistryClient(endpoint, credentials, limits, max_connections=jobs * 2, log=progress.warn) as client:
            expected = check_expected(
                verified, plans, client, git_base, jobs=jobs, git_credentials=git_creds, transport=git_transport
            )
    carried_git = [a for a in verified.git if a not in expected_git(verified)]
    with tempfile.TemporaryDirectory(prefix="mirror-git-") as scratch:
        try:
            staged = (
                stage_git(
                    verified.reader,
                    carried_git,
                    git_base,
                    Path(scratch),
                    credentials=git_creds,
                    transport=git_transport,
                )
                if git_base and carried_git
                else []
            )
        except VerificationError as exc:
            raise refused_git(verified.inventory.base, exc) from exc
        progress.log(
            f"verified {len(verified.inventory.files)} files: {len(plans)} image(s) and chart(s), "
            f"{len(staged)} git source(s)"
        )
        try:
            with RegistryClient(endpoint, credentials, limits, max_connections=jobs * 2, log=progress.warn) as client:
                importer = RegistryImporter(client, verified.reader, jobs=jobs, progress=progress, dry_run=dry_run)
                if not dry_run:
                    importer.counts.add(blobs_mounted=mount_expected(client, expected))
                outcomes = importer.run(plans)
            pushed = (
                [] if dry_run else push_git(staged, credentials=git_creds, force=force_git, transport=git_transport)
            )
        finally:
            for plan in staged:
                plan.staged.discard()
    for _, result in pushed:
        for note in result.notes:
            progress.warn(f"{result.target}: {note}")
    if flux_out is not None and not dry_run:
        written = write_flux_out(
            verified, flux_out, registry_url, git_base, ca_file=ca_file, limits=limits, warn=progress.warn
        )
        progress.log(f"wrote {written} file(s) of Flux objects and registry mirror configuration to {flux_out}")
    if report is not None and not dry_run:
        record_import(report)
    display = endpoint.netloc + (f"/{endpoint.repo_prefix}" if endpoint.repo_prefix else "")
    trusted = None
    if report is not None:
        summary = report.to_json()
        trusted = {k: summary[k] for k in ("inventorySha256", "sequence", "signatures")}
    return ImportReport(
        str(bundle),
        display,
        dry_run,
        verified.inventory.bundle_id,
        outcomes,
        importer.counts,
        trusted,
        _git_report(staged, pushed, dry_run),
        None if verified.inventory.base is None else {**verified.inventory.base.to_json(), **expected.to_json()},
        importer.present_blobs,
    )


def write_flux_out(
    verified: VerifiedBundle,
    directory: Path,
    registry_url: str,
    git_base: str | None,
    *,
    ca_file: str | None,
    limits: Limits,
    warn: Callable[[str], None],
) -> int:
    """The carried Flux objects rewritten for the internal endpoints, and the nodes' registry mirror files."""
    if not verified.flux:
        raise UsageError(f"--flux-out {directory}: the bundle carries no Flux objects")
    from mirror.flux.rewrite import (  # only imports that write Flux objects pay for these imports
        InternalEndpoints,
        mirror_configs,
        rewrite_objects,
        write_mirror_configs,
        write_objects,
    )
    from mirror.fluxset import parse_objects_blob

    endpoints = InternalEndpoints(registry_url, git_base)
    notes: list[str] = []
    objects = []
    for artifact in verified.flux:
        raw = read_small(verified.reader, blob_path(artifact.digest), limits.max_flux_objects_bytes)
        if "sha256:" + hashlib.sha256(raw).hexdigest() != artifact.digest:  # read again since verify: check again
            raise IntegrityError(
                f"{verified.reader.location}: {blob_path(artifact.digest)} changed since it was verified",
                hint="the bundle was altered during the import; verify it again",
            )
        objects += parse_objects_blob(raw, artifact.source, limits=limits)
    written = write_objects(rewrite_objects(objects, endpoints, warnings=notes), directory)
    sources = sorted({parse_reference(a.source).registry for a in verified.inventory.artifacts if a.kind == "image"})
    registry = registry_url.split("://", 1)[-1]
    written += write_mirror_configs(mirror_configs(registry, sources, ca_file=ca_file), directory)
    for note in notes:
        warn(note)
    return len(written)


def _git_report(
    staged: list[GitPlan], pushed: list[tuple[GitPlan, PushResult]], dry_run: bool
) -> list[dict[str, object]]:
    if dry_run:
        return [{"source": plan.artifact.source, "target": plan.target, "refs": None} for plan in staged]
    return [
        {
            "source": plan.artifact.source,
            "target": result.target,
            "refs": {ref: {"outcome": o.outcome, "old": o.old, "new": o.new} for ref, o in result.refs.items()},
        }
        for plan, result in pushed
    ]


def verify_with_policy(
    bundle: str | Path,
    policy: Path,
    *,
    jobs: int,
    progress: Progress,
    limits: Limits = DEFAULT_LIMITS,
    clock: dt.datetime | None = None,
) -> TrustReport:
    """Every check of `mirror verify`; raises VerificationError listing every problem."""
    report = check_trust(bundle, policy, jobs=jobs, limits=limits, progress=progress, clock=clock)
    report.require()
    return report
