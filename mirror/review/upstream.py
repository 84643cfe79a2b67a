"""The upstream supply chain of each reviewed artifact: the manifests attached to it upstream (signatures,
attestations, SBOMs), summarized from the bundle's small blobs, and the signers the collector verified.
See docs/supply-chain.md ("What the officer sees").

Attached manifests and a carried Sigstore trusted root are inventory artifacts of their own, but an officer
reads them as facts of the image they belong to: the review files them under it, never lists them apart.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from mirror.bundle.inventory import ArtifactRecord, blob_path
from mirror.bundle.reader import BundleReader, read_small
from mirror.errors import MirrorError
from mirror.limits import DEFAULT_LIMITS
from mirror.oci.digest import sha256_digest
from mirror.oci.document import parse_manifest
from mirror.review.policycheck import RuleCheck
from mirror.supplychain.attached import ATTACHED, Attached
from mirror.supplychain.summary import (
    AttachedSummary,
    SignatureSummary,
    Signer,
    from_record,
    recorded_signers,
    summarize,
    verified_by,
)

_LIMITS = DEFAULT_LIMITS
UNVOUCHED = "as claimed by an inventory whose collector signature is not verified"
TRUSTED_ROOT_KIND = "trusted-root"  # a carried Sigstore trusted_root.json, for keyless verification offline
SUPPLY_CHAIN_KINDS = (ATTACHED, TRUSTED_ROOT_KIND)  # shown with what they belong to, not as artifacts


@dataclass
class Upstream:
    """What is attached to one artifact, and who the collector verified signed it."""

    count: int = 0  # attached manifests
    signers: tuple[Signer, ...] = ()  # the artifact's `signers`: verified by the collector against spec.verify
    summary: AttachedSummary = field(default_factory=AttachedSummary)
    # The trust policy's own re-verification of these signatures (inspect --trust, review/policycheck.py): one
    # verdict per requireSignatures rule that applies, [] when none does; None when nothing was checked.
    policy: list[RuleCheck] | None = None
    # Whether `signers` is the collector's word: a collector's signature over this very inventory verified under
    # inspect --trust. Otherwise they are what an unchecked inventory claims, which anyone can write.
    vouched: bool = False

    def verified_by(self, signature: SignatureSummary) -> tuple[Signer, ...]:
        return verified_by(signature, self.signers)

    def verification(self, signature: SignatureSummary) -> str:
        by = self.verified_by(signature)
        return self.collector_verified(by) if by else "not verified by the collector"

    def collector_verified(self, signers: tuple[Signer, ...]) -> str:
        said = f"verified by the collector ({'; '.join(s.describe() for s in signers)})"
        return said if self.vouched else f"{said}, {UNVOUCHED}"

    @property
    def empty(self) -> bool:
        return not self.count and not self.signers


@dataclass
class Placed:
    """The inventory's attached manifests, by the artifact they belong to, and those that belong to none."""

    owned: dict[str, list[Attached]]  # by the owner's source
    unplaced: list[Attached]
    trusted_roots: list[ArtifactRecord]


def place(artifacts: Iterable[ArtifactRecord]) -> Placed:
    """File attached manifests under the artifact their `image` names, else the one whose digest they are
    attached to."""
    artifacts = list(artifacts)
    sources = {a.source for a in artifacts if a.kind not in SUPPLY_CHAIN_KINDS}
    by_digest = {a.digest: a.source for a in artifacts if a.kind not in SUPPLY_CHAIN_KINDS}
    placed = Placed({}, [], [a for a in artifacts if a.kind == TRUSTED_ROOT_KIND])
    for artifact in artifacts:
        if artifact.kind != ATTACHED:
            continue
        attached = Attached(artifact)
        owner = attached.image if attached.image in sources else by_digest.get(attached.subject)
        if owner is None:
            placed.unplaced.append(attached)
        else:
            placed.owned.setdefault(owner, []).append(attached)
    return placed


def _summary(reader: BundleReader | None, attached: Attached) -> AttachedSummary:
    """One attached manifest summarized from the bundle, or, when it cannot be read, from its record."""
    digest = attached.artifact.digest
    if reader is None:
        return from_record(attached, "not read: an inventory file carries no blobs")
    if blob_path(digest) not in reader.files():
        return from_record(attached, "carried by the base chain, not by this bundle (give --base to read it)")
    try:
        raw = read_small(reader, blob_path(digest), _LIMITS.review_max_document_bytes)
        if sha256_digest(raw) != digest:
            return from_record(attached, "the manifest does not match its digest; not read")
        document = parse_manifest(
            raw, declared_type=attached.artifact.media_type, where=f"{reader.location}: {digest}", digest=digest
        )
    except MirrorError as exc:
        return from_record(attached, f"the manifest is not readable: {exc.message}")

    def read_blob(blob: str, limit: int) -> bytes:
        return read_small(reader, blob_path(blob), limit)

    return summarize(document, read_blob, subject=attached.subject, limits=_LIMITS)


def upstream_of(
    reader: BundleReader | None, artifact: ArtifactRecord, attached: list[Attached], *, vouched: bool
) -> Upstream:
    """vouched: a collector's signature over the inventory verified (see Upstream.vouched)."""
    found = Upstream(len(attached), recorded_signers(artifact), vouched=vouched)
    for item in attached:
        found.summary.extend(_summary(reader, item))
    return found
