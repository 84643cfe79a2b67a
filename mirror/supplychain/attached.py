"""Manifests attached to a carried manifest (its subject): how they are recorded in the inventory.

An attached manifest is an artifact of kind `attached`. Its `source` is the subject's repository with the
attached manifest's own digest (`HOST/PATH@sha256:…`), so it lands in the subject's repository. Its fields:
`subject` (the digest it is attached to), `artifactType`, `found` (how the collector found it: one of FOUND),
`image` (the `source` of the image or chart artifact it belongs to) and, for cosign's tags, `tag` (the tag it
was found under, and is pushed under). See docs/bundle-format.md ("Attached manifests").
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from mirror.bundle.inventory import ArtifactRecord

ATTACHED = "attached"

# How an attached manifest was found upstream.
FOUND_REFERRERS = "referrers"  # the OCI 1.1 referrers API
FOUND_TAG_SCHEMA = "tag-schema"  # the referrers tag schema: an index at tag sha256-<hex>
FOUND_COSIGN_TAG = "cosign-tag"  # cosign's tags: sha256-<hex>.sig, .att, .sbom
FOUND = (FOUND_REFERRERS, FOUND_TAG_SCHEMA, FOUND_COSIGN_TAG)

# Artifact types (or, for cosign's tags, the type its suffix stands for).
COSIGN_SIGNATURE = "application/vnd.dev.cosign.simplesigning.v1+json"
COSIGN_SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
COSIGN_CERTIFICATE_ANNOTATION = "dev.sigstore.cosign/certificate"
COSIGN_CHAIN_ANNOTATION = "dev.sigstore.cosign/chain"
COSIGN_BUNDLE_ANNOTATION = "dev.sigstore.cosign/bundle"
DSSE_ENVELOPE = "application/vnd.dsse.envelope.v1+json"
SIGSTORE_BUNDLE = "application/vnd.dev.sigstore.bundle.v0.3+json"
SPDX_JSON = "application/spdx+json"
CYCLONEDX_JSON = "application/vnd.cyclonedx+json"
IN_TOTO = "application/vnd.in-toto+json"
TRUSTED_ROOT = "application/vnd.dev.sigstore.trustedroot+json;version=0.1"
# The predicate type of the in-toto statement cosign 3 signs an image with.
COSIGN_SIGN_PREDICATE = "https://sigstore.dev/cosign/sign/v1"

COSIGN_SUFFIXES = {".sig": COSIGN_SIGNATURE, ".att": DSSE_ENVELOPE, ".sbom": SPDX_JSON}


def cosign_tag(subject: str, suffix: str) -> str:
    """cosign's tag for what is attached to `subject`: sha256:ab… → sha256-ab….sig"""
    return subject.replace(":", "-", 1) + suffix


def tag_schema_tag(subject: str) -> str:
    """The referrers tag schema's tag for `subject`: sha256:ab… → sha256-ab…"""
    return subject.replace(":", "-", 1)


@dataclass(frozen=True)
class Attached:
    """One attached manifest as the inventory records it. A field the record lacks reads as "": inspect reads
    unchecked bundles (bundle verification refuses such a record, mirror.bundle.attached)."""

    artifact: ArtifactRecord

    def _text(self, name: str) -> str:
        return str(self.artifact.extra.get(name) or "")

    @property
    def subject(self) -> str:
        return self._text("subject")

    @property
    def artifact_type(self) -> str:
        return self._text("artifactType")

    @property
    def found(self) -> str:
        return self._text("found")

    @property
    def image(self) -> str:
        return self._text("image")

    @property
    def tag(self) -> str | None:
        tag = self.artifact.extra.get("tag")
        return tag if isinstance(tag, str) else None

    @property
    def cosign_tag(self) -> str | None:
        """The cosign tag (`sha256-<hex>.sig`, `.att`, `.sbom`) the import puts this manifest under, if any."""
        return self.tag if self.found == FOUND_COSIGN_TAG else None


def attached_record(
    repository_name: str,
    digest: str,
    media_type: str,
    size: int,
    *,
    subject: str,
    artifact_type: str,
    found: str,
    image: str,
    tag: str | None = None,
) -> ArtifactRecord:
    """The inventory record of a manifest attached to `subject` in `repository_name` (HOST/PATH)."""
    extra: dict[str, object] = {"subject": subject, "artifactType": artifact_type, "found": found, "image": image}
    if tag is not None:
        extra["tag"] = tag
    return ArtifactRecord(ATTACHED, f"{repository_name}@{digest}", digest, media_type, size, extra)


def attached_by_subject(artifacts: Iterable[ArtifactRecord]) -> dict[str, list[Attached]]:
    """Every attached manifest of an inventory, grouped by the digest it is attached to."""
    grouped: dict[str, list[Attached]] = defaultdict(list)
    for artifact in artifacts:
        if artifact.kind == ATTACHED:
            attached = Attached(artifact)
            grouped[attached.subject].append(attached)
    return dict(grouped)
