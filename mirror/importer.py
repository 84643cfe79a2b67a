"""The high side: verify the whole bundle first, and only then write to the targets."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mirror.bundle.inventory import INVENTORY_PATH
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


@dataclass(frozen=True)
class ImportReport:
    bundle: str
    registry: str
    dry_run: bool
    bundle_id: str
    images: list[ImageOutcome]
    counts: ImportCounts

    def to_json(self) -> dict[str, object]:
        return {
            "bundle": self.bundle,
            "bundleId": self.bundle_id,
            "registry": self.registry,
            "dryRun": self.dry_run,
            "images": [i.to_json() for i in self.images],
            **self.counts.to_json(),
        }


def verify_checksums(bundle: str | Path, *, jobs: int, progress: Progress, limits: Limits) -> VerifiedBundle:
    reader = open_bundle(bundle, limits)
    sizes = reader.files()
    sizes.pop(INVENTORY_PATH, None)  # read whole and parsed, not streamed through the hash check
    progress.start("verify", sum(sizes.values()))
    verified = verify_bundle(reader, jobs=jobs, limits=limits, on_bytes=progress.advance)
    progress.finish()
    return verified


def import_bundle(
    bundle: str | Path,
    registry_url: str,
    *,
    allow_unsigned: bool,
    jobs: int = 4,
    dry_run: bool = False,
    ca_file: str | None = None,
    progress: Progress | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> ImportReport:
    progress = progress or Progress(quiet=True)
    if not allow_unsigned:
        raise UsageError(
            "import needs a trust policy, and this version cannot check signatures yet",
            hint="for a lab, pass --allow-unsigned to import on checksums alone",
        )
    progress.warn("--allow-unsigned: importing on checksums alone; no signature or approval is checked")
    endpoint = parse_target(registry_url, ca_file)
    verified = verify_checksums(bundle, jobs=jobs, progress=progress, limits=limits)
    plans = plan_images(verified)
    progress.log(f"verified {len(verified.inventory.files)} files of {len(plans)} image(s)")
    credentials = target_credentials(endpoint)
    with RegistryClient(endpoint, credentials, limits, max_connections=jobs * 2, log=progress.warn) as client:
        importer = RegistryImporter(client, verified.reader, jobs=jobs, progress=progress, dry_run=dry_run)
        outcomes = importer.run(plans)
    display = endpoint.netloc + (f"/{endpoint.repo_prefix}" if endpoint.repo_prefix else "")
    return ImportReport(str(bundle), display, dry_run, verified.inventory.bundle_id, outcomes, importer.counts)
