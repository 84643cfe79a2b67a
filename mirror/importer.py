"""The high side: verify the whole bundle first, and only then write to the targets."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from mirror.bundle.reader import open_bundle
from mirror.bundle.verify import VerifiedBundle, verify_bundle
from mirror.errors import UsageError
from mirror.limits import DEFAULT_LIMITS, Limits
from mirror.progress import Progress
from mirror.registry.client import RegistryClient
from mirror.targets.registry import (
    ImageOutcome,
    ImportCounts,
    RegistryImporter,
    parse_target,
    plan_images,
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

    def to_json(self) -> dict[str, object]:
        return {
            "bundle": self.bundle,
            "bundleId": self.bundle_id,
            "registry": self.registry,
            "dryRun": self.dry_run,
            "trust": self.trust,
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
) -> ImportReport:
    """Verify everything first (files, graph, signatures, policy), and only then write to the registry."""
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
    plans = plan_images(verified)
    progress.log(f"verified {len(verified.inventory.files)} files of {len(plans)} image(s)")
    credentials = target_credentials(endpoint)
    with RegistryClient(endpoint, credentials, limits, max_connections=jobs * 2, log=progress.warn) as client:
        importer = RegistryImporter(client, verified.reader, jobs=jobs, progress=progress, dry_run=dry_run)
        outcomes = importer.run(plans)
    if report is not None and not dry_run:
        record_import(report)
    display = endpoint.netloc + (f"/{endpoint.repo_prefix}" if endpoint.repo_prefix else "")
    trusted = None
    if report is not None:
        summary = report.to_json()
        trusted = {k: summary[k] for k in ("inventorySha256", "sequence", "signatures")}
    return ImportReport(str(bundle), display, dry_run, verified.inventory.bundle_id, outcomes, importer.counts, trusted)


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
