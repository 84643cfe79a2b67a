"""The signatures an attached manifest carries, read from its layers: nothing here judges them.

A cosign signature is a simple-signing layer (the payload is the blob, the base64 signature and, for keyless
ones, the certificate, chain and Rekor bundle are annotations of its descriptor); a Sigstore bundle is a layer
of the bundle's media type. Other layers (SBOMs, attestations) are not read. See docs/supply-chain.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from mirror.errors import MirrorError
from mirror.limits import Limits
from mirror.oci.digest import sha256_digest
from mirror.oci.document import Descriptor, ManifestDocument
from mirror.supplychain.attached import (
    COSIGN_BUNDLE_ANNOTATION,
    COSIGN_CERTIFICATE_ANNOTATION,
    COSIGN_CHAIN_ANNOTATION,
    COSIGN_SIGNATURE,
    COSIGN_SIGNATURE_ANNOTATION,
    SIGSTORE_BUNDLE,
)

# read_blob(digest, max_bytes): the blob's bytes, at most max_bytes of them; raises MirrorError otherwise.
ReadBlob = Callable[[str, int], bytes]

SIGNATURE_LAYERS = (COSIGN_SIGNATURE, SIGSTORE_BUNDLE)  # media types of the layers that hold signatures
COSIGN_KEY = "cosign-key"
COSIGN_KEYLESS = "cosign-keyless"
SIGSTORE = "sigstore-bundle"


@dataclass(frozen=True)
class CosignLayer:
    attached: str  # the digest of the attached manifest it is a layer of
    layer: str  # the payload's digest
    payload: bytes = field(repr=False)
    signature: str  # base64, as the annotation holds it
    certificate: str | None = field(default=None, repr=False)
    chain: str | None = field(default=None, repr=False)
    rekor_bundle: str | None = field(default=None, repr=False)

    @property
    def scheme(self) -> str:
        return COSIGN_KEYLESS if self.certificate is not None else COSIGN_KEY


@dataclass(frozen=True)
class SigstoreBundleLayer:
    attached: str
    layer: str
    bundle: bytes = field(repr=False)

    @property
    def scheme(self) -> str:
        return SIGSTORE


Evidence = CosignLayer | SigstoreBundleLayer


@dataclass(frozen=True)
class Unreadable:
    """A signature layer that could not be read: it verifies nothing, and the finding says why."""

    attached: str
    layer: str
    reason: str


def _read(descriptor: Descriptor, read_blob: ReadBlob, limits: Limits) -> bytes:
    if descriptor.size > limits.max_sigstore_bundle_bytes:
        raise MirrorError(
            f"{descriptor.size} bytes, more than max_sigstore_bundle_bytes ({limits.max_sigstore_bundle_bytes})"
        )
    data = read_blob(descriptor.digest, descriptor.size)
    if len(data) != descriptor.size or sha256_digest(data) != descriptor.digest:
        raise MirrorError(f"its bytes do not match the descriptor's size {descriptor.size} and sha256 digest")
    return data


_COSIGN_ANNOTATIONS = (
    COSIGN_SIGNATURE_ANNOTATION,
    COSIGN_CERTIFICATE_ANNOTATION,
    COSIGN_CHAIN_ANNOTATION,
    COSIGN_BUNDLE_ANNOTATION,
)


def _cosign_layer(document: ManifestDocument, descriptor: Descriptor, payload: bytes) -> CosignLayer:
    annotations = descriptor.annotations
    signature = annotations.get(COSIGN_SIGNATURE_ANNOTATION)
    if signature is None:
        raise MirrorError(f"no {COSIGN_SIGNATURE_ANNOTATION} annotation")
    for name in _COSIGN_ANNOTATIONS:  # base64, PEM and JSON of base64 and hex: ASCII (JSON can carry lone surrogates)
        value = annotations.get(name)
        if value is not None and not value.isascii():
            raise MirrorError(f"its {name} annotation is not ASCII text")
    return CosignLayer(
        document.digest,
        descriptor.digest,
        payload,
        signature,
        annotations.get(COSIGN_CERTIFICATE_ANNOTATION),
        annotations.get(COSIGN_CHAIN_ANNOTATION),
        annotations.get(COSIGN_BUNDLE_ANNOTATION),
    )


def signature_layers(document: ManifestDocument) -> list[Descriptor]:
    """The layers of `document` that hold signatures (the blobs a signature check reads)."""
    return [d for d in document.layers if d.media_type in SIGNATURE_LAYERS]


def evidence_of(
    document: ManifestDocument, read_blob: ReadBlob, limits: Limits, room: int | None = None
) -> tuple[list[Evidence], list[Unreadable]]:
    """Every signature in `document`'s layers, and every signature layer that could not be read; at most `room`
    of them in all (the layers beyond are not read)."""
    found: list[Evidence] = []
    unreadable: list[Unreadable] = []
    for descriptor in document.layers:
        if descriptor.media_type not in SIGNATURE_LAYERS:
            continue
        if room is not None and len(found) + len(unreadable) >= room:
            break
        try:
            data = _read(descriptor, read_blob, limits)
            if descriptor.media_type == SIGSTORE_BUNDLE:
                found.append(SigstoreBundleLayer(document.digest, descriptor.digest, data))
            else:
                found.append(_cosign_layer(document, descriptor, data))
        except MirrorError as exc:
            unreadable.append(Unreadable(document.digest, descriptor.digest, f"layer {descriptor.digest}: {exc}"))
    return found, unreadable
