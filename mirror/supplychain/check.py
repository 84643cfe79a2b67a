"""Upstream signatures checked against rules, the same way at collect and (offline) at verify and import.

An image a rule applies to needs at least one signature that verifies under that rule and signs its exact
digest; every rule that applies must be satisfied. The signatures come from the manifests attached to the
image (mirror.supplychain.attached), read through `read_blob` from the staging layout or the bundle, never
from the network. See docs/supply-chain.md.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mirror.bundle.inventory import ArtifactRecord
from mirror.errors import MirrorError, Problem
from mirror.limits import Limits
from mirror.oci.digest import sha256_digest
from mirror.oci.document import ManifestDocument, parse_manifest
from mirror.supplychain import codes
from mirror.supplychain.attached import Attached
from mirror.supplychain.cosign import parse_simple_signing
from mirror.supplychain.evidence import (
    CosignLayer,
    Evidence,
    ReadBlob,
    SigstoreBundleLayer,
    Unreadable,
    evidence_of,
    signature_layers,
)
from mirror.supplychain.narrowing import narrowed_from
from mirror.supplychain.rules import VerifyRule

if TYPE_CHECKING:
    from mirror.supplychain.keyless_types import TrustedRootHandle

Signer = dict[str, str]  # {"key": HEX} or {"issuer": ..., "identity": ...}, as the inventory's `signers`
RulesFor = Callable[[ArtifactRecord], Sequence[VerifyRule]]
# The trusted roots a keyless rule verifies against (handles of mirror.supplychain.keyless.load_trusted_root);
# raises MirrorError when a root cannot be had.
TrustedRoots = Callable[[VerifyRule], Sequence["TrustedRootHandle"]]

# When no signature satisfies a rule, the code told is the first of these any finding has: a valid signature of
# the wrong image or by the wrong identity says more than a signature that does not verify at all.
_TELLING = (codes.SIGNATURE_DIGEST_MISMATCH, codes.SIGNATURE_IDENTITY_MISMATCH, codes.SIGNATURE_INVALID)


@dataclass(frozen=True)
class SignatureFinding:
    """One signature judged under one rule."""

    attached: str  # the attached manifest's digest
    layer: str  # the signature layer's digest
    scheme: str  # cosign-key, cosign-keyless, sigstore-bundle (mirror.supplychain.evidence)
    rule: str  # the rule's origin
    verified: bool
    reason: str
    code: str | None = None  # why it does not count, when it does not
    signer: Signer | None = None  # who signed, when it verified
    claimed: Signer | None = None  # who a keyless certificate names, verified or not (for the officers)

    def to_json(self) -> dict[str, object]:
        return {
            "attached": self.attached,
            "layer": self.layer,
            "scheme": self.scheme,
            "rule": self.rule,
            "verified": self.verified,
            "code": self.code,
            "reason": self.reason,
            "signer": self.signer,
            "claimed": self.claimed,
        }


@dataclass(frozen=True)
class RuleOutcome:
    """One rule's verdict on one image: the signers that satisfy it, or the code and reason none does."""

    rule: VerifyRule
    signers: tuple[Signer, ...] = ()
    code: str | None = None  # None: satisfied
    reason: str | None = None  # why it is not


@dataclass
class ImageSignatures:
    source: str
    digest: str
    rules: tuple[VerifyRule, ...] = ()
    signers: list[Signer] = field(default_factory=list)  # verified, under the rules, each once
    findings: list[SignatureFinding] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    outcomes: list[RuleOutcome] = field(default_factory=list)  # one per rule, in the rules' order

    def to_json(self) -> dict[str, object]:
        return {
            "source": self.source,
            "digest": self.digest,
            "rules": [r.origin for r in self.rules],
            "signers": self.signers,
            "findings": [f.to_json() for f in self.findings],
            "problems": [p.to_json() for p in self.problems],
        }


@dataclass(frozen=True)
class _Signed:
    """A signature found for an image, with the digest it is attached to (and must sign)."""

    evidence: Evidence
    subject: str
    # Why it cannot count whatever it verifies (attached to an upstream index the bundle cannot vouch for).
    refused: str | None = None


def _document(attached: Attached, read_blob: ReadBlob, limits: Limits) -> ManifestDocument:
    artifact = attached.artifact
    raw = read_blob(artifact.digest, limits.max_manifest_bytes)
    return parse_manifest(raw, declared_type=artifact.media_type, where=artifact.source, digest=artifact.digest)


class _Checker:
    def __init__(
        self,
        attached: Mapping[str, Sequence[Attached]],
        read_blob: ReadBlob,
        trusted_roots: TrustedRoots,
        limits: Limits,
    ) -> None:
        self.attached = attached
        self.read_blob = read_blob
        self.trusted_roots = trusted_roots
        self.limits = limits

    # --- gathering ---------------------------------------------------------------------------------------------

    def _upstream_refusal(self, image: ArtifactRecord, upstream: str) -> str | None:
        """None when the bundle vouches that the carried index was narrowed from `upstream`: it carries the
        upstream index's exact bytes, and the carried index is that index less some children."""
        try:
            raw = self.read_blob(upstream, self.limits.max_manifest_bytes)
            carried = self.read_blob(image.digest, self.limits.max_manifest_bytes)
            narrowed = parse_manifest(carried, declared_type=image.media_type, where=image.source, digest=image.digest)
        except MirrorError as exc:
            return f"over the upstream index {upstream}, which the bundle does not carry whole ({exc.message})"
        if sha256_digest(raw) != upstream or sha256_digest(carried) != image.digest:
            return f"over the upstream index {upstream}, whose bytes in the bundle are not that index"
        if not narrowed_from(narrowed, raw):
            return f"over the upstream index {upstream}, which the carried index is not that index narrowed"
        return None

    def gather(self, image: ArtifactRecord) -> tuple[list[_Signed], list[Unreadable], bool]:
        """The signatures attached to the image (or to the upstream index it was narrowed from), those that
        could not be read, and whether more were attached than are examined."""
        subjects: list[tuple[str, str | None]] = [(image.digest, None)]
        upstream = image.extra.get("sourceDigest")
        if isinstance(upstream, str) and upstream != image.digest and self.attached.get(upstream):
            subjects.append((upstream, self._upstream_refusal(image, upstream)))
        signed: list[_Signed] = []
        unreadable: list[Unreadable] = []
        # No signature layer is read beyond the cap: a manifest of thousands of them costs what `cap` of them do.
        cap = self.limits.max_upstream_signatures
        capped = False
        for subject, refused in subjects:
            for attached in self.attached.get(subject, []):
                room = cap - len(signed) - len(unreadable)
                try:
                    document = _document(attached, self.read_blob, self.limits)
                except MirrorError as exc:
                    if room > 0:
                        unreadable.append(Unreadable(attached.artifact.digest, attached.artifact.digest, exc.message))
                    capped = capped or room <= 0
                    continue
                found, bad = evidence_of(document, self.read_blob, self.limits, max(room, 0))
                signed += [_Signed(e, subject, refused) for e in found]
                unreadable += bad
                capped = capped or len(found) + len(bad) < len(signature_layers(document))
        return signed, unreadable, capped

    # --- judging -----------------------------------------------------------------------------------------------

    def judge(self, signed: _Signed, rule: VerifyRule) -> SignatureFinding:
        evidence = signed.evidence
        claimed = self._claimed(evidence)

        def finding(reason: str, code: str | None = None, signer: Signer | None = None) -> SignatureFinding:
            return SignatureFinding(
                evidence.attached, evidence.layer, evidence.scheme, rule.origin, signer is not None, reason, code,
                signer, claimed,
            )  # fmt: skip

        try:
            signer = self._verify(signed, rule)
        except _Refused as refusal:
            return finding(refusal.reason, refusal.code)
        if signed.refused is not None:
            return finding(f"valid, but {signed.refused}", codes.SIGNATURE_DIGEST_MISMATCH)
        return finding("verified", signer=signer)

    def _claimed(self, evidence: Evidence) -> Signer | None:
        """Who a keyless certificate names, unverified: shown to the officers, never decided on."""
        if not isinstance(evidence, CosignLayer) or evidence.certificate is None:
            return None
        from mirror.supplychain import keyless  # keyless verification's imports, only for keyless signatures

        signer = keyless.signer_of_certificate(evidence.certificate.encode())
        return None if signer is None else {"issuer": signer.issuer, "identity": signer.identity}

    def _verify(self, signed: _Signed, rule: VerifyRule) -> Signer:
        evidence = signed.evidence
        if rule.key is not None:
            if not isinstance(evidence, CosignLayer):
                raise _Refused(
                    codes.SIGNATURE_INVALID,
                    f"a Sigstore bundle; the rule wants a cosign signature by {rule.describe()}",
                )
            return self._verify_key(evidence, signed.subject, rule)
        if isinstance(evidence, CosignLayer) and evidence.certificate is None:
            raise _Refused(
                codes.SIGNATURE_INVALID, f"signed with a key; the rule wants a keyless signature by {rule.describe()}"
            )
        return self._verify_keyless(evidence, signed.subject, rule)

    def _verify_key(self, evidence: CosignLayer, subject: str, rule: VerifyRule) -> Signer:
        assert rule.key is not None
        try:
            signature = base64.b64decode(evidence.signature, validate=True)
        except (binascii.Error, ValueError):
            raise _Refused(codes.SIGNATURE_INVALID, "its signature annotation is not base64") from None
        if not rule.key.verify(signature, evidence.payload):
            raise _Refused(
                codes.SIGNATURE_INVALID,
                f"does not verify with {rule.describe()} (forged, altered, or made with another key)",
            )
        self._check_payload(evidence, subject)
        return {"key": rule.key.key_id}

    def _check_payload(self, evidence: CosignLayer, subject: str) -> None:
        """The signed payload must be a cosign image signature over `subject`: read only once it verified."""
        try:
            signed = parse_simple_signing(evidence.payload, f"payload {evidence.layer}")
        except MirrorError as exc:
            raise _Refused(codes.SIGNATURE_INVALID, f"valid, but not a cosign image signature: {exc.message}") from exc
        if signed.digest != subject:
            raise _Refused(codes.SIGNATURE_DIGEST_MISMATCH, f"valid, but it signs {signed.digest}, not {subject}")

    def _verify_keyless(self, evidence: Evidence, subject: str, rule: VerifyRule) -> Signer:
        try:
            roots = list(self.trusted_roots(rule))
        except MirrorError as exc:
            raise _Refused(codes.SIGNATURE_INVALID, f"no usable trusted root: {exc.message}") from exc
        if not roots:
            raise _Refused(codes.SIGNATURE_INVALID, "no trusted root to verify a keyless signature against")
        from mirror.supplychain import keyless  # keyless verification's imports, only for keyless rules

        assert rule.issuer is not None  # a keyless rule has one (mirror.supplychain.rules)
        identity = keyless.IdentityRule(rule.issuer, identity=rule.identity, identity_regexp=rule.identity_regexp)
        failures: list[Any] = []
        for root in roots:
            try:
                if isinstance(evidence, SigstoreBundleLayer):
                    signer = keyless.verify_sigstore_bundle(
                        evidence.bundle, trusted_root=root, digest=subject, rule=identity
                    )
                else:
                    signer = keyless.verify_cosign_keyless(
                        evidence.payload,
                        evidence.signature,
                        _bytes(evidence.certificate) or b"",
                        _bytes(evidence.chain),
                        _bytes(evidence.rekor_bundle),
                        trusted_root=root,
                        rule=identity,
                    )
            except keyless.KeylessFailure as failure:
                failures.append(failure)
                continue
            if isinstance(evidence, CosignLayer):
                self._check_payload(evidence, subject)
            return {"issuer": signer.issuer, "identity": signer.identity}
        telling = min(failures, key=lambda f: _rank(f.code))
        raise _Refused(telling.code, telling.reason)

    # --- the verdict on one image ------------------------------------------------------------------------------

    def check(self, image: ArtifactRecord, rules: Sequence[VerifyRule]) -> ImageSignatures:
        result = ImageSignatures(image.source, image.digest, tuple(rules))
        if not rules:
            return result
        signed, unreadable, capped = self.gather(image)
        failed: list[tuple[VerifyRule, str, str]] = []
        for rule in rules:
            findings = [self.judge(s, rule) for s in signed]
            findings += [
                SignatureFinding(
                    u.attached, u.layer, "unreadable", rule.origin, False, u.reason, codes.SIGNATURE_INVALID
                )
                for u in unreadable
            ]
            result.findings += findings
            verified = [f.signer for f in findings if f.verified and f.signer is not None]
            for signer in verified:
                if signer not in result.signers:
                    result.signers.append(signer)
            if verified:
                unique = [s for i, s in enumerate(verified) if s not in verified[:i]]
                result.outcomes.append(RuleOutcome(rule, tuple(unique)))
            else:
                code, why = _why(findings, capped, self.limits)
                failed.append((rule, code, why))
                result.outcomes.append(RuleOutcome(rule, code=code, reason=why))
        if failed:
            code = min((c for _, c, _ in failed), key=_rank)
            reasons = "; ".join(f"{rule.origin} ({rule.describe()}): {why}" for rule, _, why in failed)
            result.problems.append(Problem(code, f"{image.source} ({image.digest}): no valid signature for {reasons}"))
        return result


def _bytes(text: str | None) -> bytes | None:
    return None if text is None else text.encode()


class _Refused(Exception):
    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def _rank(code: str) -> int:
    return _TELLING.index(code) if code in _TELLING else len(_TELLING)


def _why(findings: list[SignatureFinding], capped: bool, limits: Limits) -> tuple[str, str]:
    if not findings:
        return codes.SIGNATURE_MISSING, "no signature is attached"
    best = min(findings, key=lambda f: _rank(f.code or codes.SIGNATURE_INVALID))
    code = best.code or codes.SIGNATURE_INVALID
    why = f"{len(findings)} signature(s), none valid; {best.reason}"
    if capped:
        why += f" (only the first max_upstream_signatures ({limits.max_upstream_signatures}) were examined)"
    return code, why


def judged(artifact: ArtifactRecord) -> bool:
    """Whether the rules judge `artifact`: an image, or a chart pulled from a registry. Both land under their
    source reference, which is what the rules match: a kind the record names is no way around them. A chart from
    an HTTP repository lands under charts/ and has nothing attached to it."""
    return artifact.kind == "image" or (
        artifact.kind == "chart" and not artifact.source.startswith(("http://", "https://"))
    )


def check_signatures(
    images: Sequence[ArtifactRecord],
    attached: Mapping[str, Sequence[Attached]],
    read_blob: ReadBlob,
    rules_for: RulesFor,
    trusted_roots: TrustedRoots,
    limits: Limits,
) -> list[ImageSignatures]:
    """Each image's signatures judged under the rules that apply to it; an image no rule applies to is not read."""
    checker = _Checker(attached, read_blob, trusted_roots, limits)
    return [checker.check(image, rules_for(image)) for image in images]
