"""`mirror inspect` shows, under each image and OCI chart, what upstream attached to it: signatures with their
signer and whether the collector verified it, attestations by predicate type (SLSA builder), SBOMs with their
package count; never as artifacts of their own. Text, JSON and HTML, on crafted bundles."""

from __future__ import annotations

import json
from pathlib import Path

from mirror.bundle.inventory import ArtifactRecord
from mirror.review.html import review_html
from mirror.review.jsonout import review_json
from mirror.review.model import build_review
from mirror.review.text import review_text
from mirror.supplychain.attached import CYCLONEDX_JSON, FOUND_COSIGN_TAG, TRUSTED_ROOT
from tests.support import attachedcraft as craft
from tests.support.signedbundles import SmallBundle, make_trust, sign

APP = "registry.example/team/app:1.0"
CHART = "oci://registry.example/charts/web:2.0.0"
KEY = "5f1c" * 16
SLSA_V1 = "https://slsa.dev/provenance/v1"
BUILDER = "https://github.com/actions/runner/github-hosted"
SCAN = "application/vnd.example.scan+json"


def _bundle(tmp_path: Path, *, signers: list[dict[str, str]] | None = None, name: str = "b") -> SmallBundle:
    """One image with a key-based cosign signature, a keyless one, a SLSA provenance, two SBOMs and a scan."""
    bundle = SmallBundle(tmp_path / name)
    bundle.image(APP, via="listed", signers=signers if signers is not None else [{"key": KEY}])
    subject = craft.image_digest(bundle, APP)
    craft.attach(bundle, APP, craft.cosign_signature(subject), found=FOUND_COSIGN_TAG)
    craft.attach(bundle, APP, craft.cosign_signature(subject, certificate=craft.fulcio_certificate()))
    predicate = {"runDetails": {"builder": {"id": BUILDER}}}
    craft.attach(bundle, APP, craft.cosign_attestation(subject, SLSA_V1, predicate), found=FOUND_COSIGN_TAG)
    craft.attach(bundle, APP, craft.sbom_referrer(subject, craft.spdx(12)))
    craft.attach(bundle, APP, craft.sbom_referrer(subject, craft.cyclonedx(5), CYCLONEDX_JSON))
    craft.attach(bundle, APP, craft.other_referrer(subject, SCAN))
    return bundle


def _reviewed(tmp_path: Path, **options: object):
    bundle = _bundle(tmp_path, **options)  # type: ignore[arg-type]
    bundle.finish()
    return build_review(bundle.root)


def _image_json(review) -> dict:
    [image] = [a for a in review_json(review)["artifacts"] if a["kind"] == "image"]
    return image


# --- text -------------------------------------------------------------------------------------------------


def test_attached_manifests_are_not_listed_as_artifacts_of_their_own(tmp_path):
    review = _reviewed(tmp_path)
    text = review_text(review)
    assert [e.artifact.kind for e in review.entries] == ["image"]
    assert "attached (" not in text and "1 artifact(s)" in text


def _signed_and_reviewed(tmp_path: Path, **options: object):
    """The bundle signed by its collector (and approved), reviewed with the trust policy that pins the key."""
    bundle = _bundle(tmp_path, **options)  # type: ignore[arg-type]
    bundle.finish()
    trust = make_trust(tmp_path / "trust")
    sign(bundle.root, trust)
    return build_review(bundle.root, trust=trust.policy)


def test_a_key_based_signature_the_collector_verified_names_the_key(tmp_path):
    text = review_text(_signed_and_reviewed(tmp_path))
    assert f"signature  cosign, key-based (the signature names no key)  verified by the collector (key {KEY})\n" in text


def test_signers_are_only_the_inventory_s_claim_while_its_collector_signature_is_not_verified(tmp_path):
    text = review_text(_reviewed(tmp_path))  # no collector signature at all, no policy
    assert (
        f"verified by the collector (key {KEY}), as claimed by an inventory whose collector signature is not verified"
        in text
    )


def test_signers_written_into_a_signed_inventory_afterwards_are_not_shown_as_verified(tmp_path):
    bundle = _bundle(tmp_path, signers=[])
    bundle.finish()
    trust = make_trust(tmp_path / "trust")
    sign(bundle.root, trust)
    inventory = json.loads((bundle.root / "inventory.json").read_bytes())
    inventory["artifacts"][0]["signers"] = [{"key": KEY}]
    (bundle.root / "inventory.json").write_text(json.dumps(inventory))

    review = build_review(bundle.root, trust=trust.policy)

    assert "as claimed by an inventory whose collector signature is not verified" in review_text(review)
    assert f'<span class="status warn">verified by the collector (key {KEY}), as claimed' in review_html(review)


def test_a_keyless_signature_shows_the_claimed_issuer_and_identity_and_that_it_is_not_verified(tmp_path):
    text = review_text(_reviewed(tmp_path))
    claim = f"keyless, issuer {craft.GITHUB_ISSUER}, identity {craft.WORKFLOW} (claimed by its certificate)"
    assert f"signature  cosign, {claim}  not verified by the collector" in text


def test_a_keyless_signature_the_collector_verified_says_so(tmp_path):
    signers = [{"issuer": craft.GITHUB_ISSUER, "identity": craft.WORKFLOW}]
    text = review_text(_signed_and_reviewed(tmp_path, signers=signers))
    assert "not verified by the collector\n" in text  # the key-based one: no key was recorded
    assert f"verified by the collector (issuer {craft.GITHUB_ISSUER}, identity {craft.WORKFLOW})" in text


def test_attestations_are_listed_by_predicate_type_with_the_slsa_builder(tmp_path):
    assert f"attestation  {SLSA_V1}  builder {BUILDER}" in review_text(_reviewed(tmp_path))


def test_sboms_are_listed_with_format_version_and_package_count(tmp_path):
    text = review_text(_reviewed(tmp_path))
    assert "SBOM  SPDX 2.3, 12 packages" in text and "SBOM  CycloneDX 1.5, 5 components" in text


def test_other_attached_manifests_are_listed_by_their_artifact_type(tmp_path):
    assert f"attached  {SCAN}" in review_text(_reviewed(tmp_path))


def test_the_supply_chain_section_counts_what_is_attached(tmp_path):
    text = review_text(_reviewed(tmp_path))
    assert "upstream supply chain" in text
    assert "6 attached manifest(s) on 1 artifact(s): 2 signature(s), 1 attestation(s), 2 SBOM(s), 1 other" in text


def test_a_bundle_with_nothing_attached_says_so(tmp_path):
    bundle = SmallBundle(tmp_path / "plain")
    bundle.image(APP)
    bundle.finish()
    assert "  nothing attached upstream (no signatures, attestations or SBOMs)" in review_text(
        build_review(bundle.root)
    )


def test_a_carried_trusted_root_is_one_line(tmp_path):
    bundle = _bundle(tmp_path)
    data = b'{"mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1"}'
    digest = bundle.blob(data)
    bundle.artifacts.append(ArtifactRecord("trusted-root", "trusted_root.json", digest, TRUSTED_ROOT, len(data)))
    bundle.finish()
    review = build_review(bundle.root)
    text = review_text(review)
    assert f"  Sigstore trusted root carried ({digest})" in text and "trusted-root (" not in text
    assert review_json(review)["supplyChain"]["trustedRoots"] == [{"source": "trusted_root.json", "digest": digest}]
    assert f"Sigstore trusted root carried (<code>{digest}</code>)" in review_html(review)


def test_an_oci_charts_attached_manifests_are_listed_under_it(tmp_path):
    bundle = SmallBundle(tmp_path / "c")
    bundle.image(CHART)  # an OCI chart's manifest, recorded here under its chart source
    record = bundle.artifacts.pop()
    bundle.artifacts.append(ArtifactRecord("chart", CHART, record.digest, record.media_type, record.size, {}))
    craft.attach(bundle, CHART, craft.cosign_signature(record.digest))
    bundle.finish()
    text = review_text(build_review(bundle.root))
    assert (
        "Charts (1)" in text
        and "signature  cosign, key-based (the signature names no key)  not verified by the collector" in text
    )


def test_an_attached_manifest_whose_image_is_not_in_the_bundle_is_listed_apart(tmp_path):
    bundle = _bundle(tmp_path)
    bundle.artifacts = [a for a in bundle.artifacts if a.kind != "image"]
    bundle.finish()
    review = build_review(bundle.root)
    assert "6 attached manifest(s) attached to nothing in this bundle" in review_text(review)
    assert len(review_json(review)["supplyChain"]["unplaced"]) == 6


def test_an_inventory_file_lists_attached_manifests_by_their_recorded_type_unread(tmp_path):
    bundle = _bundle(tmp_path)
    beside = tmp_path / "b.inventory.json"
    beside.write_bytes(bundle.finish())
    text = review_text(build_review(beside))
    assert f"verified by the collector (key {KEY})" in text
    assert "note: not read: an inventory file carries no blobs" in text


def test_an_oversized_sbom_in_a_bundle_is_listed_without_its_package_count(tmp_path, monkeypatch):
    from dataclasses import replace

    from mirror.review import upstream

    monkeypatch.setattr(upstream, "_LIMITS", replace(upstream._LIMITS, review_max_attached_blob_bytes=200))
    text = review_text(_reviewed(tmp_path))
    assert "SBOM  SPDX, package count not read (larger than 200 bytes)" in text


def test_an_attached_manifest_that_does_not_match_its_digest_is_listed_unread(tmp_path):
    bundle = _bundle(tmp_path)
    bundle.finish()
    [scan] = [a for a in bundle.artifacts if a.extra.get("artifactType") == SCAN]
    path = bundle.root / "blobs" / "sha256" / scan.digest.removeprefix("sha256:")
    path.write_bytes(path.read_bytes().replace(b"scan", b"SCAN"))
    text = review_text(build_review(bundle.root))
    assert f"attached  {SCAN}" in text and "does not match its digest" in text


def test_hostile_text_in_attached_manifests_is_escaped(tmp_path):
    bundle = SmallBundle(tmp_path / "h")
    bundle.image(APP)
    subject = craft.image_digest(bundle, APP)
    predicate = {"runDetails": {"builder": {"id": "<script>x</script>\x1b[2J"}}}
    craft.attach(bundle, APP, craft.cosign_attestation(subject, SLSA_V1, predicate))
    bundle.finish()
    review = build_review(bundle.root)
    text, page = review_text(review), review_html(review)
    assert "\x1b" not in text and "builder <script>x</script>\\x1b[2J" in text
    assert "<script>" not in page and "&lt;script&gt;x&lt;/script&gt;\\x1b[2J" in page
    assert "\\u001b[2J" in json.dumps(review_json(review))  # JSON keeps the value, escaped by JSON itself


# --- JSON -------------------------------------------------------------------------------------------------


def test_json_puts_attached_manifests_under_their_image_with_stable_field_names(tmp_path):
    attached = _image_json(_reviewed(tmp_path))["attached"]
    assert set(attached) == {"count", "signers", "signatures", "attestations", "sboms", "other", "notes", "policyCheck"}
    assert attached["count"] == 6 and attached["signers"] == [{"key": KEY}] and attached["policyCheck"] is None
    key_based, keyless = attached["signatures"]
    assert set(key_based) == {
        "manifest",
        "form",
        "keyless",
        "claimedSigner",
        "signs",
        "verified",
        "verifiedBy",
        "notes",
    }
    assert (key_based["verified"], key_based["verifiedBy"], key_based["claimedSigner"]) == (True, [{"key": KEY}], None)
    assert keyless["claimedSigner"] == {"issuer": craft.GITHUB_ISSUER, "identity": craft.WORKFLOW}
    assert (keyless["keyless"], keyless["verified"], keyless["verifiedBy"]) == (True, False, [])


def test_json_lists_attestations_sboms_and_other_with_their_fields(tmp_path):
    attached = _image_json(_reviewed(tmp_path))["attached"]
    [attestation] = attached["attestations"]
    assert (attestation["predicateType"], attestation["builder"]) == (SLSA_V1, BUILDER)
    assert [(s["format"], s["version"], s["packages"]) for s in attached["sboms"]] == [
        ("SPDX", "2.3", 12),
        ("CycloneDX", "1.5", 5),
    ]
    assert [o["artifactType"] for o in attached["other"]] == [SCAN]


def test_json_totals_count_artifacts_without_their_attached_manifests(tmp_path):
    data = review_json(_reviewed(tmp_path))
    assert data["totals"]["artifacts"] == 1 and data["totals"]["byKind"]["image"] == 1
    assert data["supplyChain"]["attached"] == 6 and [a["kind"] for a in data["artifacts"]] == ["image"]


def test_json_gives_an_artifact_with_nothing_attached_an_empty_record(tmp_path):
    bundle = SmallBundle(tmp_path / "plain")
    bundle.image(APP)
    bundle.finish()
    [image] = review_json(build_review(bundle.root))["artifacts"]
    assert image["attached"]["count"] == 0 and image["attached"]["signatures"] == []


# --- HTML -------------------------------------------------------------------------------------------------


def test_html_shows_each_signature_under_its_image_with_its_verification_marked(tmp_path):
    page = review_html(_signed_and_reviewed(tmp_path))
    assert f'<span class="status ok">verified by the collector (key {KEY})</span>' in page
    assert '<span class="status warn">not verified by the collector</span>' in page


def test_html_shows_attestations_and_sboms_under_their_image(tmp_path):
    page = review_html(_reviewed(tmp_path))
    assert f"<code>{SLSA_V1}</code> builder <code>{BUILDER}</code>" in page
    assert "SPDX 2.3, 12 packages" in page and "CycloneDX 1.5, 5 components" in page
    assert page.index("SPDX 2.3") > page.index("<h2>Contents</h2>")


def test_html_summary_has_a_supply_chain_row(tmp_path):
    page = review_html(_reviewed(tmp_path))
    assert "<td>Upstream supply chain</td>" in page
    assert "6 attached manifest(s) on 1 artifact(s)" in page


def test_html_keeps_its_sections_in_order(tmp_path):
    page = review_html(_reviewed(tmp_path))
    sections = ["Summary", "Changes since base", "Signatures", "Hosts contacted", "Contents"]
    assert [page.index(f"<h2>{s}</h2>") for s in sections] == sorted(page.index(f"<h2>{s}</h2>") for s in sections)
    assert "<script" not in page.replace("&lt;script", "")


def test_a_certificate_annotation_that_is_not_text_is_listed_as_unreadable(tmp_path):
    bundle = SmallBundle(tmp_path / "b")
    bundle.image(APP)
    made = craft.cosign_signature(craft.image_digest(bundle, APP), certificate=b"SURROGATE")
    hostile = craft.Crafted(made.manifest.replace(b"SURROGATE", b"\\ud800"), made.artifact_type, made.blobs)
    craft.attach(bundle, APP, hostile, found=FOUND_COSIGN_TAG)
    bundle.finish()

    review = build_review(bundle.root)

    assert "its certificate could not be read" in review_text(review)
    assert "its certificate could not be read" in review_html(review)
    assert review_json(review)["artifacts"][0]["attached"]["signatures"][0]["keyless"] is True
