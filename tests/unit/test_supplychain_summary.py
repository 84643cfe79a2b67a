"""What the officer is told about one attached manifest (mirror/supplychain/summary.py): signatures with the
signer they claim, attestations by predicate type (SLSA builder), SBOMs with their package count; every read
bounded, every document parsed strictly, and what cannot be read shown as such, never a traceback."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from mirror.errors import BundleFormatError
from mirror.limits import DEFAULT_LIMITS
from mirror.oci.digest import sha256_digest
from mirror.oci.document import parse_manifest
from mirror.supplychain.attached import CYCLONEDX_JSON, DSSE_ENVELOPE, SPDX_JSON, Attached, attached_record
from mirror.supplychain.summary import (
    AttachedSummary,
    Signer,
    from_record,
    recorded_signers,
    summarize,
    verified_by,
)
from tests.support import attachedcraft as craft

SUBJECT = sha256_digest(b"the image manifest")
SLSA_V02 = "https://slsa.dev/provenance/v0.2"
SLSA_V1 = "https://slsa.dev/provenance/v1"


class Blobs:
    """read_blob over a dict, counting what it was asked for."""

    def __init__(self, blobs: dict[str, bytes]) -> None:
        self.blobs = dict(blobs)
        self.asked: list[str] = []

    def __call__(self, digest: str, limit: int) -> bytes:
        self.asked.append(digest)
        if digest not in self.blobs:
            raise BundleFormatError(f"blobs/sha256/{digest[7:]} is missing")
        data = self.blobs[digest]
        if len(data) > limit:
            raise BundleFormatError(f"{digest} is {len(data)} bytes, more than the limit of {limit}")
        return data


def _summary(crafted: craft.Crafted, *, limits=DEFAULT_LIMITS, blobs: Blobs | None = None) -> AttachedSummary:
    document = parse_manifest(crafted.manifest, declared_type=None, where="attached")
    return summarize(document, blobs or Blobs(crafted.blobs), subject=SUBJECT, limits=limits)


# --- SBOMs ------------------------------------------------------------------------------------------------


def test_an_spdx_sbom_is_listed_with_its_format_version_and_package_count():
    [sbom] = _summary(craft.sbom_referrer(SUBJECT, craft.spdx(7))).sboms
    assert (sbom.format, sbom.version, sbom.packages, sbom.notes) == ("SPDX", "2.3", 7, ())


def test_a_cyclonedx_sbom_is_listed_with_its_format_version_and_component_count():
    [sbom] = _summary(craft.sbom_referrer(SUBJECT, craft.cyclonedx(4), CYCLONEDX_JSON)).sboms
    assert (sbom.format, sbom.version, sbom.packages) == ("CycloneDX", "1.5", 4)


def test_an_sbom_attestation_is_listed_as_an_sbom_with_its_predicate_type():
    predicate = json.loads(craft.spdx(3))
    summary = _summary(craft.cosign_attestation(SUBJECT, "https://spdx.dev/Document", predicate))
    [sbom] = summary.sboms
    assert (sbom.format, sbom.version, sbom.packages) == ("SPDX", "2.3", 3)
    assert sbom.predicate_type == "https://spdx.dev/Document" and summary.attestations == []


def test_an_sbom_larger_than_the_cap_is_listed_without_reading_it():
    crafted = craft.sbom_referrer(SUBJECT, craft.spdx(50))
    blobs = Blobs(crafted.blobs)
    limits = replace(DEFAULT_LIMITS, review_max_attached_blob_bytes=1000)
    [sbom] = _summary(crafted, limits=limits, blobs=blobs).sboms
    assert sbom.format == "SPDX" and sbom.packages is None
    assert sbom.notes == ("package count not read (larger than 1,000 bytes)",)
    assert sha256_digest(craft.spdx(50)) not in blobs.asked


def test_an_sbom_that_is_not_valid_json_is_shown_as_unreadable():
    [sbom] = _summary(craft.sbom_referrer(SUBJECT, b'{"spdxVersion": "SPDX-2.3", "packages": [')).sboms
    assert sbom.packages is None and sbom.notes[0].startswith("unreadable: not valid JSON")


def test_an_sbom_with_duplicate_keys_is_shown_as_unreadable():
    document = b'{"spdxVersion": "SPDX-2.3", "packages": [], "packages": [{}, {}]}'
    [sbom] = _summary(craft.sbom_referrer(SUBJECT, document)).sboms
    assert sbom.packages is None and "duplicate key" in sbom.notes[0]


# --- attestations -----------------------------------------------------------------------------------------


def test_slsa_v02_provenance_names_its_builder():
    predicate = {"builder": {"id": "https://github.com/slsa-framework/slsa-github-generator@v1"}, "buildType": "x"}
    [attestation] = _summary(craft.cosign_attestation(SUBJECT, SLSA_V02, predicate)).attestations
    assert attestation.predicate_type == SLSA_V02
    assert attestation.builder == "https://github.com/slsa-framework/slsa-github-generator@v1"


def test_slsa_v1_provenance_names_its_builder_from_its_run_details():
    predicate = {"buildDefinition": {}, "runDetails": {"builder": {"id": "https://cloudbuild.example/builder"}}}
    [attestation] = _summary(craft.cosign_attestation(SUBJECT, SLSA_V1, predicate)).attestations
    assert (attestation.predicate_type, attestation.builder) == (SLSA_V1, "https://cloudbuild.example/builder")


def test_an_attestation_of_another_predicate_type_is_listed_by_it_without_a_builder():
    [attestation] = _summary(
        craft.cosign_attestation(SUBJECT, "https://cosign.sigstore.dev/attestation/vuln/v1", {})
    ).attestations
    assert (
        attestation.predicate_type == "https://cosign.sigstore.dev/attestation/vuln/v1" and attestation.builder is None
    )


def test_an_attestation_that_is_not_valid_json_is_shown_as_unreadable_with_its_annotated_predicate_type():
    crafted = craft.cosign_attestation(SUBJECT, SLSA_V1, {}, envelope=b"{not json")
    [attestation] = _summary(crafted).attestations
    assert attestation.predicate_type == SLSA_V1 and attestation.builder is None
    assert attestation.notes[0].startswith("unreadable: not valid JSON")


def test_an_attestation_whose_payload_is_not_base64_is_shown_as_unreadable():
    envelope = json.dumps({"payloadType": "application/vnd.in-toto+json", "payload": "%%%", "signatures": []})
    crafted = craft.cosign_attestation(SUBJECT, SLSA_V1, {}, envelope=envelope.encode())
    [attestation] = _summary(crafted).attestations
    assert attestation.notes[0].startswith("unreadable:") and "base64" in attestation.notes[0]


def test_an_attestation_whose_statement_is_a_list_is_shown_as_unreadable():
    crafted = craft.cosign_attestation(SUBJECT, SLSA_V1, {}, envelope=craft.dsse_envelope(b"[1, 2]"))
    [attestation] = _summary(crafted).attestations
    assert attestation.notes == ("unreadable: the statement is not a JSON object",)


def test_a_builder_id_that_is_not_a_string_is_not_shown():
    [attestation] = _summary(craft.cosign_attestation(SUBJECT, SLSA_V02, {"builder": {"id": ["x"]}})).attestations
    assert attestation.builder is None


def test_a_long_builder_id_is_cut_to_the_review_text_cap():
    predicate = {"builder": {"id": "b" * 10_000}}
    [attestation] = _summary(craft.cosign_attestation(SUBJECT, SLSA_V02, predicate)).attestations
    assert attestation.builder == "b" * DEFAULT_LIMITS.review_max_text_chars


# --- signatures -------------------------------------------------------------------------------------------


def test_a_cosign_key_based_signature_claims_no_signer_and_names_the_digest_it_signs():
    [signature] = _summary(craft.cosign_signature(SUBJECT)).signatures
    assert signature.form == "cosign" and signature.claimed is None and not signature.keyless
    assert signature.signs == SUBJECT and signature.notes == ()


def test_a_cosign_keyless_signature_claims_its_certificates_issuer_and_identity():
    [signature] = _summary(craft.cosign_signature(SUBJECT, certificate=craft.fulcio_certificate())).signatures
    assert signature.keyless
    assert signature.claimed == Signer(issuer=craft.GITHUB_ISSUER, identity=craft.WORKFLOW)


def test_the_issuer_of_a_first_version_fulcio_certificate_is_read_too():
    certificate = craft.fulcio_certificate("https://accounts.google.com", "dev@example.com", v1=True)
    [signature] = _summary(craft.cosign_signature(SUBJECT, certificate=certificate)).signatures
    assert signature.claimed == Signer(issuer="https://accounts.google.com", identity="dev@example.com")


def test_a_certificate_that_cannot_be_parsed_claims_no_signer_and_says_so():
    [signature] = _summary(craft.cosign_signature(SUBJECT, certificate=b"-----BEGIN CERTIFICATE-----\nxx")).signatures
    assert signature.keyless and signature.claimed is None
    assert signature.notes == ("its certificate could not be read",)


def test_a_signature_over_another_digest_says_so():
    other = sha256_digest(b"another image")
    [signature] = _summary(craft.cosign_signature(SUBJECT, payload=craft.simple_signing_payload(other))).signatures
    assert signature.signs == other and signature.notes == (f"signs {other}, not the digest it is attached to",)


def test_a_signature_payload_that_is_not_valid_json_is_shown_as_unreadable():
    [signature] = _summary(craft.cosign_signature(SUBJECT, payload=b"\xff\xfe")).signatures
    assert signature.signs is None and signature.notes[0].startswith("unreadable: not valid JSON")


def test_each_simple_signing_layer_is_one_signature():
    crafted = craft.cosign_signature(SUBJECT)
    body = json.loads(crafted.manifest)
    body["layers"] = body["layers"] * 3
    crafted.manifest = json.dumps(body).encode()
    assert len(_summary(crafted).signatures) == 3


def test_only_the_first_layers_of_an_attached_manifest_are_read_and_the_rest_counted():
    crafted = craft.cosign_signature(SUBJECT)
    body = json.loads(crafted.manifest)
    body["layers"] = body["layers"] * 5
    crafted.manifest = json.dumps(body).encode()
    summary = _summary(crafted, limits=replace(DEFAULT_LIMITS, review_max_attached_layers=2))
    assert len(summary.signatures) == 2 and summary.notes == ["5 layers; the first 2 are read"]


def test_a_sigstore_bundle_message_signature_is_a_signature_with_its_certificates_signer():
    certificate = craft.fulcio_certificate()
    [signature] = _summary(craft.sigstore_bundle(SUBJECT, certificate=certificate)).signatures
    assert signature.form == "sigstore bundle" and signature.keyless
    assert signature.claimed == Signer(issuer=craft.GITHUB_ISSUER, identity=craft.WORKFLOW)


def test_a_sigstore_bundle_of_cosign_v3_sign_is_a_signature_over_its_statements_subject():
    crafted = craft.sigstore_bundle(SUBJECT, predicate_type="https://sigstore.dev/cosign/sign/v1", predicate={})
    summary = _summary(crafted)
    [signature] = summary.signatures
    assert summary.attestations == [] and signature.signs == SUBJECT


def test_a_key_based_sigstore_bundle_claims_its_key_hint():
    [signature] = _summary(craft.sigstore_bundle(SUBJECT, key_hint="abc123")).signatures
    assert not signature.keyless and signature.claimed == Signer(key="abc123")


def test_a_sigstore_bundle_with_a_provenance_statement_is_an_attestation_with_its_attester():
    predicate = {"runDetails": {"builder": {"id": "https://github.com/actions/runner"}}}
    crafted = craft.sigstore_bundle(
        SUBJECT, predicate_type=SLSA_V1, predicate=predicate, certificate=craft.fulcio_certificate()
    )
    summary = _summary(crafted)
    [attestation] = summary.attestations
    assert summary.signatures == [] and attestation.builder == "https://github.com/actions/runner"
    assert attestation.claimed == Signer(issuer=craft.GITHUB_ISSUER, identity=craft.WORKFLOW)


# --- what cannot be read ----------------------------------------------------------------------------------


def test_an_unknown_artifact_type_is_listed_as_other_as_is():
    summary = _summary(craft.other_referrer(SUBJECT, "application/vnd.example.scan+json"))
    assert [(o.artifact_type, o.notes) for o in summary.other] == [("application/vnd.example.scan+json", ())]


def test_a_missing_blob_is_a_note_not_a_traceback():
    crafted = craft.cosign_attestation(SUBJECT, SLSA_V1, {})
    [attestation] = _summary(crafted, blobs=Blobs({})).attestations
    assert attestation.predicate_type == SLSA_V1 and "is missing" in attestation.notes[0]


def test_a_blob_that_does_not_match_its_digest_is_not_read():
    crafted = craft.sbom_referrer(SUBJECT, craft.spdx(2))
    forged = {d: (craft.spdx(9) if b"spdxVersion" in b else b) for d, b in crafted.blobs.items()}
    [sbom] = _summary(crafted, blobs=Blobs(forged)).sboms
    assert sbom.packages is None and sbom.notes == ("does not match its digest; not read",)


def test_an_attached_manifest_recorded_but_not_readable_is_classified_by_its_artifact_type():
    record = attached_record(
        "registry.example/team/app",
        sha256_digest(b"m"),
        "application/vnd.oci.image.manifest.v1+json",
        1,
        subject=SUBJECT,
        artifact_type=DSSE_ENVELOPE,
        found="cosign-tag",
        image="registry.example/team/app:1.0",
    )
    summary = from_record(Attached(record), "not in this bundle")
    [attestation] = summary.attestations
    assert attestation.predicate_type is None and attestation.notes == ("not in this bundle",)
    record = replace(record, extra={**record.extra, "artifactType": SPDX_JSON})
    assert [s.format for s in from_record(Attached(record), "x").sboms] == ["SPDX"]


# --- what the collector verified --------------------------------------------------------------------------


def test_the_signers_an_image_records_are_read_from_its_inventory_record():
    record = attached_record(
        "r/app", SUBJECT, "m", 1, subject=SUBJECT, artifact_type="t", found="referrers", image="r/app:1"
    )
    record = replace(record, kind="image", extra={"signers": [{"key": "ab12"}, {"issuer": "i", "identity": "d"}]})
    assert recorded_signers(record) == (Signer(key="ab12"), Signer(issuer="i", identity="d"))


def test_a_keyless_signature_is_verified_by_a_recorded_signer_of_the_same_issuer_and_identity():
    [signature] = _summary(craft.cosign_signature(SUBJECT, certificate=craft.fulcio_certificate())).signatures
    same = Signer(issuer=craft.GITHUB_ISSUER, identity=craft.WORKFLOW)
    assert verified_by(signature, (Signer(key="ab12"), same)) == (same,)
    assert verified_by(signature, (Signer(issuer=craft.GITHUB_ISSUER, identity="someone else"),)) == ()


def test_a_key_based_signature_is_verified_by_the_keys_the_image_records():
    [signature] = _summary(craft.cosign_signature(SUBJECT)).signatures
    key = Signer(key="ab12")
    assert verified_by(signature, (key, Signer(issuer="i", identity="d"))) == (key,)
    assert verified_by(signature, ()) == ()


@pytest.mark.parametrize(
    ("signer", "described"),
    [(Signer(key="ab12"), "key ab12"), (Signer(issuer="https://i", identity="me"), "issuer https://i, identity me")],
)
def test_a_signer_is_described_by_its_key_id_or_its_issuer_and_identity(signer, described):
    assert signer.describe() == described


def test_an_sbom_attestation_larger_than_the_cap_is_listed_by_its_annotated_predicate_type_unread():
    predicate = json.loads(craft.spdx(50))
    crafted = craft.cosign_attestation(SUBJECT, "https://spdx.dev/Document", predicate)
    limits = replace(DEFAULT_LIMITS, review_max_attached_blob_bytes=1000)
    [sbom] = _summary(crafted, limits=limits).sboms
    assert (sbom.format, sbom.packages, sbom.predicate_type) == ("SPDX", None, "https://spdx.dev/Document")
    assert sbom.notes == ("package count not read (larger than 1,000 bytes)",)
