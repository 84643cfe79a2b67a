"""`mirror inspect --trust POLICY` re-verifies each image's upstream signatures under the policy's
`requireSignatures` rules, offline, exactly as `verify` does, and shows under each image whether they verify
(and who signed) or which problem refuses them; text, JSON and HTML, on crafted bundles."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mirror.bundle.inventory import ArtifactRecord, blob_path
from mirror.oci import mediatypes as mt
from mirror.review.html import review_html
from mirror.review.jsonout import review_json
from mirror.review.model import Review, build_review
from mirror.review.text import review_text
from mirror.supplychain import codes
from mirror.supplychain.attached import (
    COSIGN_SIGNATURE,
    FOUND_COSIGN_TAG,
    FOUND_REFERRERS,
    SIGSTORE_BUNDLE,
    attached_record,
)
from mirror.supplychain.cosign import cosign_key_from_pem
from mirror.supplychain.roots import trusted_root_record
from tests.support import attachedcraft as craft
from tests.support import cosign, sigstore_data
from tests.support.signedbundles import SmallBundle, make_trust

REPOSITORY = "registry.example/team/app"
APP = f"{REPOSITORY}:1.0"
OTHER = "registry.example/team/db:2.0"
HOSTILE = "<script>x</script>\x1b[2J"
NO_RULES = "the policy requires no upstream signatures"


@pytest.fixture
def key() -> cosign.PrivateKey:
    return cosign.generate_key()


def key_id(key: cosign.PrivateKey) -> str:
    return cosign_key_from_pem(cosign.public_pem(key), "k").key_id


def policy(tmp_path: Path, rules: list[dict[str, str]] | None = None, key: cosign.PrivateKey | None = None) -> Path:
    """A trust policy; with `key`, requiring every registry.example image to be signed by it."""
    trust = make_trust(tmp_path / "trust")
    body = json.loads(trust.policy.read_text())
    if key is not None:
        cosign.write_public_key(key, tmp_path / "trust" / "upstream.pub")
        rules = [{"match": "registry.example/*", "key": "upstream.pub"}]
    if rules is not None:
        body["requireSignatures"] = rules
    trust.policy.write_text(json.dumps(body))
    return trust.policy


def signature(signer: cosign.PrivateKey, subject: str) -> craft.Crafted:
    manifest = cosign.signature_manifest([cosign.signed_layer(signer, REPOSITORY, subject)])
    return craft.Crafted(manifest.raw, COSIGN_SIGNATURE, manifest.blobs)


def bundle_of(tmp_path: Path, *signers: cosign.PrivateKey, sources: tuple[str, ...] = (APP,)) -> SmallBundle:
    """Images `sources`; the first signed by each of `signers` (cosign, key-based). Not finished."""
    bundle = SmallBundle(tmp_path / "b")
    for source in sources:
        bundle.image(source)
    for signer in signers:
        craft.attach(
            bundle, sources[0], signature(signer, craft.image_digest(bundle, sources[0])), found=FOUND_COSIGN_TAG
        )
    return bundle


def reviewed(bundle: SmallBundle, trust: Path) -> Review:
    bundle.finish()
    return build_review(bundle.root, trust=trust)


def image_json(review: Review, source: str = APP) -> dict:
    return next(a for a in review_json(review)["artifacts"] if a["source"] == source)["attached"]


# --- verified: the signer shown ---------------------------------------------------------------------------------


def test_text_shows_the_key_a_signature_verifies_with_under_the_policy(tmp_path, key):
    text = review_text(reviewed(bundle_of(tmp_path, key), policy(tmp_path, key=key)))
    wanted = key_id(key)
    assert f"      trust policy  requireSignatures[0] (key {wanted}): verified, signed by key {wanted}\n" in text


def test_json_policy_check_lists_each_rule_with_the_verified_signer(tmp_path, key):
    attached = image_json(reviewed(bundle_of(tmp_path, key), policy(tmp_path, key=key)))
    wanted = key_id(key)
    assert attached["policyCheck"] == [
        {
            "rule": "requireSignatures[0]",
            "requires": f"key {wanted}",
            "verified": True,
            "signers": [{"key": wanted}],
            "code": None,
            "reason": None,
        }
    ]


def test_html_shows_the_verified_signer_in_the_ok_style(tmp_path, key):
    page = review_html(reviewed(bundle_of(tmp_path, key), policy(tmp_path, key=key)))
    assert f'trust policy <span class="status ok">verified: key {key_id(key)}</span>' in page


def test_a_keyless_signature_shows_the_issuer_and_identity_it_verifies_as(tmp_path):
    bundle = SmallBundle(tmp_path / "b")
    source = "ghcr.io/kubewarden/kubewarden-controller:v1.34.0"
    image = ArtifactRecord("image", source, sigstore_data.IMAGE_DIGEST, mt.OCI_MANIFEST, 1234)
    layer = cosign.SignatureLayer(sigstore_data.IMAGE_BUNDLE.read_bytes(), "", media_type=SIGSTORE_BUNDLE)
    manifest = cosign.signature_manifest([layer])
    for data in [*manifest.blobs.values(), manifest.raw, sigstore_data.trusted_root_bytes()]:
        bundle.blob(data)
    bundle.artifacts += [
        image,
        attached_record(
            "ghcr.io/kubewarden/kubewarden-controller",
            manifest.digest,
            mt.OCI_MANIFEST,
            len(manifest.raw),
            subject=image.digest,
            artifact_type=SIGSTORE_BUNDLE,
            found=FOUND_REFERRERS,
            image=source,
        ),
        trusted_root_record("trusted_root.json", sigstore_data.trusted_root_bytes()),
    ]
    rule = {"match": "ghcr.io/*", "issuer": sigstore_data.GITHUB_ISSUER, "identity": sigstore_data.IMAGE_IDENTITY}
    review = reviewed(bundle, policy(tmp_path, [rule]))
    signer = f"issuer {sigstore_data.GITHUB_ISSUER}, identity {sigstore_data.IMAGE_IDENTITY}"
    assert f"verified, signed by {signer}\n" in review_text(review)
    [check] = image_json(review, source)["policyCheck"]
    assert check["signers"] == [{"issuer": sigstore_data.GITHUB_ISSUER, "identity": sigstore_data.IMAGE_IDENTITY}]


# --- refused: the problem shown ----------------------------------------------------------------------------------


def test_an_unsigned_image_under_a_rule_is_shown_refused_with_signature_missing(tmp_path, key):
    review = reviewed(bundle_of(tmp_path), policy(tmp_path, key=key))
    assert (
        f"      trust policy  requireSignatures[0] (key {key_id(key)}): REFUSED, SIGNATURE_MISSING: "
        "no signature is attached\n"
    ) in review_text(review)
    [check] = image_json(review)["policyCheck"]
    assert (check["verified"], check["signers"], check["code"]) == (False, [], codes.SIGNATURE_MISSING)
    assert check["reason"] == "no signature is attached"


def test_html_shows_a_refusal_in_the_bad_style(tmp_path, key):
    page = review_html(reviewed(bundle_of(tmp_path), policy(tmp_path, key=key)))
    assert f'trust policy <span class="status bad">REFUSED, {codes.SIGNATURE_MISSING}</span>' in page
    assert "no signature is attached" in page


def test_a_signature_by_another_key_is_shown_refused_as_invalid(tmp_path, key):
    review = reviewed(bundle_of(tmp_path, cosign.generate_key()), policy(tmp_path, key=key))
    [check] = image_json(review)["policyCheck"]
    assert (check["verified"], check["code"]) == (False, codes.SIGNATURE_INVALID)
    assert "does not verify with" in check["reason"]
    assert f"REFUSED, {codes.SIGNATURE_INVALID}: 1 signature(s), none valid" in review_text(review)


def test_a_signature_blob_that_does_not_hash_to_its_digest_is_refused_not_trusted(tmp_path, key):
    """Inspect checks no file: the bytes under an attached manifest's name are a valid signature by the required
    key, but not the manifest the inventory records; read through the digest check, they count for nothing."""
    bundle = bundle_of(tmp_path, cosign.generate_key())
    recorded = bundle.artifacts[-1].digest
    genuine = signature(key, craft.image_digest(bundle, APP))
    for data in genuine.blobs.values():
        bundle.blob(data)
    bundle.finish()
    (bundle.root / blob_path(recorded)).write_bytes(genuine.manifest)
    [check] = image_json(build_review(bundle.root, trust=policy(tmp_path, key=key)))["policyCheck"]
    assert (check["verified"], check["code"]) == (False, codes.SIGNATURE_INVALID)
    assert "do not hash to" in check["reason"]


def test_every_rule_that_applies_is_shown_on_its_own(tmp_path, key):
    trust = policy(tmp_path, [{"match": "registry.example/*", "key": "first.pub"}, {"match": "*", "key": "second.pub"}])
    cosign.write_public_key(key, trust.parent / "first.pub")
    cosign.write_public_key(cosign.generate_key(), trust.parent / "second.pub")
    checks = image_json(reviewed(bundle_of(tmp_path, key), trust))["policyCheck"]
    assert [(c["rule"], c["verified"], c["code"]) for c in checks] == [
        ("requireSignatures[0]", True, None),
        ("requireSignatures[1]", False, codes.SIGNATURE_INVALID),
    ]


# --- what the policy does not require -------------------------------------------------------------------------


def test_a_policy_without_require_signatures_says_so_once_not_per_image(tmp_path, key):
    review = reviewed(bundle_of(tmp_path, key, sources=(APP, OTHER)), policy(tmp_path))
    text, page = review_text(review), review_html(review)
    assert text.count(NO_RULES) == 1 and f"  trust policy: {NO_RULES}\n" in text
    assert page.count(NO_RULES) == 1
    data = review_json(review)
    assert [a["attached"]["policyCheck"] for a in data["artifacts"]] == [None, None]
    assert data["supplyChain"]["policyCheck"]["note"] == NO_RULES


def test_an_image_no_rule_matches_says_the_policy_requires_nothing_of_it(tmp_path, key):
    review = reviewed(bundle_of(tmp_path, key, sources=(APP, "elsewhere.example/x:1")), policy(tmp_path, key=key))
    assert "trust policy  no requireSignatures rule applies to it" in review_text(review)
    assert image_json(review, "elsewhere.example/x:1")["policyCheck"] == []


def test_the_supply_chain_section_counts_the_policy_s_verdicts(tmp_path, key):
    review = reviewed(
        bundle_of(tmp_path, key, sources=(APP, OTHER, "elsewhere.example/x:1")), policy(tmp_path, key=key)
    )
    assert (
        "  trust policy: 1 requireSignatures rule(s): 1 image(s) verified, 1 REFUSED, 1 not required\n"
        in review_text(review)
    )
    summary = review_json(review)["supplyChain"]["policyCheck"]
    assert (summary["verified"], summary["refused"], summary["notRequired"], summary["note"]) == (1, 1, 1, None)
    assert summary["rules"] == [{"rule": "requireSignatures[0]", "requires": f"key {key_id(key)}"}]


def test_without_trust_no_policy_check_is_shown(tmp_path, key):
    bundle = bundle_of(tmp_path, key)
    bundle.finish()
    review = build_review(bundle.root)
    text = review_text(review)
    assert "trust policy:" not in text and "trust policy  " not in text
    assert review_json(review)["supplyChain"]["policyCheck"] is None and image_json(review)["policyCheck"] is None


def test_an_inventory_file_is_not_checked_and_says_why(tmp_path, key):
    bundle = bundle_of(tmp_path, key)
    beside = tmp_path / "b.inventory.json"
    beside.write_bytes(bundle.finish())
    review = build_review(beside, trust=policy(tmp_path, key=key))
    assert "  trust policy: not checked: an inventory file carries no blobs\n" in review_text(review)
    assert image_json(review)["policyCheck"] is None


# --- hostile text -----------------------------------------------------------------------------------------------


def test_hostile_text_in_a_refusal_is_escaped(tmp_path, key):
    bundle = bundle_of(tmp_path)
    raw = b'{"schemaVersion": 1}'
    digest = bundle.blob(raw)
    subject = craft.image_digest(bundle, APP)
    bundle.artifacts.append(
        attached_record(
            HOSTILE,
            digest,
            mt.OCI_MANIFEST,
            len(raw),
            subject=subject,
            artifact_type=COSIGN_SIGNATURE,
            found=FOUND_REFERRERS,
            image=APP,
        )
    )
    review = reviewed(bundle, policy(tmp_path, key=key))
    text, page = review_text(review), review_html(review)
    assert "\x1b" not in text and "<script>x</script>\\x1b[2J" in text
    assert "<script>" not in page and "&lt;script&gt;x&lt;/script&gt;\\x1b[2J" in page
    [check] = image_json(review)["policyCheck"]
    assert HOSTILE in check["reason"]  # JSON keeps the value; JSON escapes it itself
