"""Collect's check of upstream signatures: the MirrorSets' `verify` rules over the downloaded images.

It runs between the download and the inventory, reading only the staging layout: the attached manifests and
their signature layers (carried there by the collect), and the upstream index a platform filter narrowed. Any
image without a valid signature refuses the collect (exit 3, nothing written). See docs/supply-chain.md.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from mirror.bundle.inventory import ArtifactRecord
from mirror.bundle.layout import LayoutWriter
from mirror.errors import MirrorError, VerificationError
from mirror.limits import DEFAULT_LIMITS, Limits
from mirror.manifest.model import MirrorSet
from mirror.supplychain.attached import attached_by_subject
from mirror.supplychain.rules import VerifyRule, rules_for

if TYPE_CHECKING:
    from mirror.supplychain.check import ImageSignatures
    from mirror.supplychain.keyless_types import TrustedRootHandle


@dataclass
class UpstreamChecked:
    artifacts: list[ArtifactRecord]  # with each image's verified `signers`, and the trusted roots carried
    images: list[ImageSignatures] = field(default_factory=list)
    read: set[str] = field(default_factory=set)  # blobs the check read: an incremental bundle keeps them


def _rules(sets: Sequence[MirrorSet]) -> tuple[tuple[VerifyRule, ...], dict[str, tuple[VerifyRule, ...]]]:
    spec = tuple(rule for mirrorset in sets for rule in mirrorset.verify)
    own = {str(i.reference): i.verify for s in sets for i in s.images if i.verify is not None}
    return spec, own


def has_rules(sets: Sequence[MirrorSet]) -> bool:
    """Whether any verify rule applies to the collect (an image's `verify: []` is none)."""
    spec, own = _rules(sets)
    return bool(spec) or any(own.values())


class _StagingBlobs:
    """Blobs read back from the staging layout (each was checked against its digest on its way in)."""

    def __init__(self, writer: LayoutWriter) -> None:
        self.writer = writer
        self.read: set[str] = set()

    def __call__(self, digest: str, max_bytes: int) -> bytes:
        if not self.writer.has(digest):
            raise MirrorError(f"{digest}: not collected")
        path = self.writer.blob_location(digest)
        if path.stat().st_size > max_bytes:
            raise MirrorError(f"{digest}: more than {max_bytes} bytes")
        self.read.add(digest)
        return path.read_bytes()


def verify_upstream(
    sets: Sequence[MirrorSet], artifacts: list[ArtifactRecord], writer: LayoutWriter, limits: Limits = DEFAULT_LIMITS
) -> UpstreamChecked:
    """Check every image under the rules that apply to it; raise VerificationError listing every image without
    a valid signature, else return the artifacts with the signers recorded and the trusted roots added."""
    spec, own = _rules(sets)
    every_rule = [*spec, *(rule for rules in own.values() for rule in rules)]
    if not every_rule:
        return UpstreamChecked(list(artifacts))
    # Signature checking (cosign, cryptography): imported only when a rule applies, not on every collect.
    from mirror.supplychain.check import check_signatures, judged
    from mirror.supplychain.roots import load_trusted_root, read_trusted_root_file, trusted_root_record

    read_blob = _StagingBlobs(writer)
    roots: dict[Path, TrustedRootHandle] = {}
    carried: list[ArtifactRecord] = []
    for path in dict.fromkeys(r.trusted_root for r in every_rule if r.keyless and r.trusted_root is not None):
        raw = read_trusted_root_file(path, limits)
        roots[path] = load_trusted_root(raw, str(path))  # a root that does not load: exit 2, naming the file
        record = trusted_root_record(path.name, raw)
        writer.put_bytes(record.digest, raw)
        read_blob.read.add(record.digest)
        if all(c.digest != record.digest for c in carried):
            carried.append(record)
    images = [a for a in artifacts if judged(a)]
    checked = check_signatures(
        images,
        attached_by_subject(artifacts),
        read_blob,
        lambda image: rules_for(image.source, spec, own.get(image.source)),
        lambda rule: [roots[rule.trusted_root]] if rule.trusted_root in roots else [],
        limits,
    )
    problems = [p for image in checked for p in image.problems]
    if problems:
        raise VerificationError(
            f"{len(problems)} image(s) without a valid upstream signature; nothing was written",
            problems=problems,
            hint="the MirrorSet's verify rules require them: ask the publisher, or fix the rule (key, identity)",
        )
    signers = {(image.source, image.digest): image.signers for image in checked if image.signers}
    result = [
        dataclasses.replace(a, extra={**a.extra, "signers": signers[(a.source, a.digest)]})
        if judged(a) and (a.source, a.digest) in signers
        else a
        for a in artifacts
    ]
    return UpstreamChecked([*result, *carried], checked, read_blob.read)
