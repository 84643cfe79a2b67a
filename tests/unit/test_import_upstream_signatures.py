"""The high side checks upstream signatures again, offline, when its trust policy requires them
(`requireSignatures:`): from the signatures, certificates and trusted roots the bundle carries, before anything
is written; `verify` reports the same problems, with their codes."""

from __future__ import annotations

import dataclasses
import json
import sys
import types
from pathlib import Path

import pytest

import mirror.supplychain
from mirror.bundle.inventory import blob_path
from mirror.bundle.opening import open_bundle
from mirror.bundle.verify import read_signed_part
from mirror.errors import UsageError, VerificationError
from mirror.limits import DEFAULT_LIMITS
from mirror.supplychain import codes
from mirror.supplychain.attached import COSIGN_SIGNATURE, FOUND_COSIGN_TAG, attached_record
from mirror.supplychain.cosign import cosign_key_from_pem
from mirror.supplychain.roots import trusted_root_record
from mirror.trust.check import check_trust
from mirror.trust.policy import load_policy
from mirror.trust.upstream import check_upstream
from tests.support import cosign
from tests.support.images import OCI_MANIFEST
from tests.support.signedbundles import SmallBundle, Trust, make_trust, sign

REPOSITORY = "registry.example/team/app"
SOURCE = f"{REPOSITORY}:1.0"


@pytest.fixture
def key() -> cosign.PrivateKey:
    return cosign.generate_key()


def trust_requiring(tmp_path: Path, key: cosign.PrivateKey, **extra: object) -> Trust:
    trust = make_trust(tmp_path / "trust")
    cosign.write_public_key(key, tmp_path / "trust" / "upstream.pub")
    body = json.loads(trust.policy.read_text())
    body["requireSignatures"] = [{"match": "registry.example/*", "key": "upstream.pub"}]
    body.update(extra)
    trust.policy.write_text(json.dumps(body))
    return trust


def signed_bundle(root: Path, key: cosign.PrivateKey | None, *, signs: str | None = None) -> SmallBundle:
    """A bundle of one image and, when `key` is given, its cosign signature as an attached manifest."""
    bundle = SmallBundle(root)
    bundle.image(SOURCE)
    image = bundle.artifacts[0]
    if key is not None:
        manifest = cosign.signature_manifest([cosign.signed_layer(key, REPOSITORY, signs or image.digest)])
        for data in manifest.blobs.values():
            bundle.blob(data)
        bundle.blob(manifest.raw)
        bundle.artifacts.append(
            attached_record(
                REPOSITORY,
                manifest.digest,
                OCI_MANIFEST,
                len(manifest.raw),
                subject=image.digest,
                artifact_type=COSIGN_SIGNATURE,
                found=FOUND_COSIGN_TAG,
                image=SOURCE,
                tag=cosign.cosign_tag(image.digest),
            )
        )
    bundle.finish()
    return bundle


def upstream_of(bundle: SmallBundle, policy: Path):
    checked = read_signed_part(open_bundle(bundle.root))
    return check_upstream(checked.reader, checked.inventory, load_policy(policy), DEFAULT_LIMITS)


def test_a_policy_without_required_signatures_reads_none(tmp_path):
    trust = make_trust(tmp_path / "trust")
    bundle = signed_bundle(tmp_path / "b", None)
    assert upstream_of(bundle, trust.policy) == []


def test_an_image_signed_by_the_required_key_passes(tmp_path, key):
    trust = trust_requiring(tmp_path, key)
    bundle = signed_bundle(tmp_path / "b", key)
    [image] = upstream_of(bundle, trust.policy)
    assert image.problems == []
    assert image.signers == [{"key": cosign_key_from_pem(cosign.public_pem(key), "k").key_id}]


def test_a_signature_by_another_key_is_refused(tmp_path, key):
    trust = trust_requiring(tmp_path, key)
    bundle = signed_bundle(tmp_path / "b", cosign.generate_key())
    [image] = upstream_of(bundle, trust.policy)
    assert [p.code for p in image.problems] == [codes.SIGNATURE_INVALID]


def test_a_signature_over_another_digest_is_refused(tmp_path, key):
    trust = trust_requiring(tmp_path, key)
    bundle = signed_bundle(tmp_path / "b", key, signs="sha256:" + "ee" * 32)
    [image] = upstream_of(bundle, trust.policy)
    assert [p.code for p in image.problems] == [codes.SIGNATURE_DIGEST_MISMATCH]


def test_a_carried_signature_blob_altered_after_the_collect_is_refused(tmp_path, key):
    trust = trust_requiring(tmp_path, key)
    bundle = signed_bundle(tmp_path / "b", key)
    payload = next(p for p in (bundle.root / "blobs" / "sha256").iterdir() if b"critical" in p.read_bytes())
    payload.write_bytes(payload.read_bytes().replace(b"team/app", b"team/apq"))
    [image] = upstream_of(bundle, trust.policy)
    assert [p.code for p in image.problems] == [codes.SIGNATURE_INVALID]


def test_images_the_policy_rules_do_not_match_need_no_signature(tmp_path, key):
    trust = trust_requiring(tmp_path, key)
    body = json.loads(trust.policy.read_text())
    body["requireSignatures"][0]["match"] = "elsewhere.example/*"
    trust.policy.write_text(json.dumps(body))
    bundle = signed_bundle(tmp_path / "b", None)
    [image] = upstream_of(bundle, trust.policy)
    assert (image.rules, image.problems) == ((), [])


def test_verify_reports_an_unsigned_image_with_its_code_before_anything_is_imported(tmp_path, key):
    trust = trust_requiring(tmp_path, key)
    bundle = signed_bundle(tmp_path / "b", None)
    sign(bundle.root, trust)
    report = check_trust(bundle.root, trust.policy)
    assert [p.code for p in report.problems] == [codes.SIGNATURE_MISSING]
    assert report.to_json()["upstreamSignatures"][0]["source"] == SOURCE
    with pytest.raises(VerificationError) as caught:
        report.require()
    assert caught.value.exit_code == 3
    assert SOURCE in str(caught.value)


def test_upstream_signatures_are_not_read_while_the_bundle_s_own_signatures_refuse_it(tmp_path, key):
    trust = trust_requiring(tmp_path, key)
    bundle = signed_bundle(tmp_path / "b", None)
    sign(bundle.root, trust, approve=False)
    report = check_trust(bundle.root, trust.policy)
    assert codes.SIGNATURE_MISSING not in [p.code for p in report.problems]


# --- keyless: the policy's trusted root wins, else the one the bundle carries -------------------------------------


@pytest.fixture
def keyless(monkeypatch):
    """A stand-in for mirror.supplychain.keyless: a trusted root is its own bytes; a Sigstore bundle verifies
    when its JSON names that root."""
    module = types.ModuleType("mirror.supplychain.keyless")

    class KeylessFailure(Exception):
        def __init__(self, code: str, reason: str) -> None:
            super().__init__(reason)
            self.code, self.reason = code, reason

    class IdentityRule:
        def __init__(self, issuer, identity=None, identity_regexp=None):
            self.issuer, self.identity = issuer, identity

    class KeylessSigner:
        def __init__(self, issuer, identity):
            self.issuer, self.identity = issuer, identity

    def load_trusted_root(raw: bytes, where: str) -> bytes:
        if raw == b"junk":
            raise UsageError(f"{where}: junk")
        return raw

    def verify_sigstore_bundle(bundle_json, *, trusted_root, digest, rule):
        if json.loads(bundle_json)["root"].encode() != trusted_root:
            raise KeylessFailure(codes.SIGNATURE_INVALID, "not under this trusted root")
        return KeylessSigner(rule.issuer, rule.identity)

    module.__dict__.update(
        KeylessFailure=KeylessFailure,
        IdentityRule=IdentityRule,
        KeylessSigner=KeylessSigner,
        load_trusted_root=load_trusted_root,
        verify_sigstore_bundle=verify_sigstore_bundle,
        signer_of_certificate=lambda pem: None,
    )
    monkeypatch.setitem(sys.modules, "mirror.supplychain.keyless", module)
    monkeypatch.setattr(mirror.supplychain, "keyless", module, raising=False)


def keyless_bundle(root: Path, *, signed_under: str, carried_root: bytes | None) -> SmallBundle:
    from mirror.supplychain.attached import FOUND_REFERRERS, SIGSTORE_BUNDLE

    bundle = SmallBundle(root)
    bundle.image(SOURCE)
    image = bundle.artifacts[0]
    body = json.dumps({"root": signed_under}).encode()
    manifest = cosign.signature_manifest([cosign.SignatureLayer(body, "", media_type=SIGSTORE_BUNDLE)])
    for data in manifest.blobs.values():
        bundle.blob(data)
    bundle.blob(manifest.raw)
    bundle.artifacts.append(
        attached_record(
            REPOSITORY,
            manifest.digest,
            OCI_MANIFEST,
            len(manifest.raw),
            subject=image.digest,
            artifact_type=SIGSTORE_BUNDLE,
            found=FOUND_REFERRERS,
            image=SOURCE,
        )
    )
    if carried_root is not None:
        bundle.blob(carried_root)
        bundle.artifacts.append(trusted_root_record("trusted_root.json", carried_root))
    bundle.finish()
    return bundle


def keyless_policy(tmp_path: Path, root: bytes | None = None) -> Path:
    trust = make_trust(tmp_path / "trust")
    body = json.loads(trust.policy.read_text())
    body["requireSignatures"] = [{"match": "*", "issuer": "https://issuer", "identity": "ci@example.com"}]
    if root is not None:
        (tmp_path / "trust" / "root.json").write_bytes(root)
        body["trustedRoot"] = "root.json"
    trust.policy.write_text(json.dumps(body))
    return trust.policy


def test_a_keyless_signature_verifies_against_the_trusted_root_the_bundle_carries(tmp_path, keyless):
    bundle = keyless_bundle(tmp_path / "b", signed_under="CARRIED", carried_root=b"CARRIED")
    [image] = upstream_of(bundle, keyless_policy(tmp_path))
    assert image.problems == []
    assert image.signers == [{"issuer": "https://issuer", "identity": "ci@example.com"}]


def test_the_policy_s_trusted_root_wins_over_the_carried_one(tmp_path, keyless):
    bundle = keyless_bundle(tmp_path / "b", signed_under="CARRIED", carried_root=b"CARRIED")
    [image] = upstream_of(bundle, keyless_policy(tmp_path, root=b"POLICY"))
    assert [p.code for p in image.problems] == [codes.SIGNATURE_INVALID]


def test_without_any_trusted_root_a_keyless_rule_verifies_nothing(tmp_path, keyless):
    bundle = keyless_bundle(tmp_path / "b", signed_under="CARRIED", carried_root=None)
    [image] = upstream_of(bundle, keyless_policy(tmp_path))
    [problem] = image.problems
    assert "trusted root" in problem.message


def test_a_carried_trusted_root_that_does_not_load_verifies_nothing(tmp_path, keyless):
    bundle = keyless_bundle(tmp_path / "b", signed_under="junk", carried_root=b"junk")
    [image] = upstream_of(bundle, keyless_policy(tmp_path))
    assert [p.code for p in image.problems] == [codes.SIGNATURE_INVALID]


def test_a_policy_trusted_root_that_does_not_load_is_a_usage_error(tmp_path, keyless):
    bundle = keyless_bundle(tmp_path / "b", signed_under="CARRIED", carried_root=b"CARRIED")
    with pytest.raises(UsageError, match="root"):
        upstream_of(bundle, keyless_policy(tmp_path, root=b"junk"))


def test_the_carried_trusted_root_is_read_from_its_blob(tmp_path, keyless):
    bundle = keyless_bundle(tmp_path / "b", signed_under="CARRIED", carried_root=b"CARRIED")
    (bundle.root / blob_path(trusted_root_record("x", b"CARRIED").digest)).write_bytes(b"ALTERED")
    [image] = upstream_of(bundle, keyless_policy(tmp_path))
    assert [p.code for p in image.problems] == [codes.SIGNATURE_INVALID]


def test_a_real_sigstore_bundle_verifies_against_the_carried_production_root(tmp_path):
    from mirror.bundle.inventory import ArtifactRecord
    from mirror.supplychain.attached import FOUND_REFERRERS, SIGSTORE_BUNDLE
    from tests.support import sigstore_data

    bundle = SmallBundle(tmp_path / "b")
    image = ArtifactRecord(
        "image", "ghcr.io/kubewarden/kubewarden-controller:v1.34.0", sigstore_data.IMAGE_DIGEST, OCI_MANIFEST, 1234
    )
    layer = cosign.SignatureLayer(sigstore_data.IMAGE_BUNDLE.read_bytes(), "", media_type=SIGSTORE_BUNDLE)
    manifest = cosign.signature_manifest([layer])
    for data in [*manifest.blobs.values(), manifest.raw, sigstore_data.trusted_root_bytes()]:
        bundle.blob(data)
    bundle.artifacts += [
        image,
        attached_record(
            "ghcr.io/kubewarden/kubewarden-controller",
            manifest.digest,
            OCI_MANIFEST,
            len(manifest.raw),
            subject=image.digest,
            artifact_type=SIGSTORE_BUNDLE,
            found=FOUND_REFERRERS,
            image=image.source,
        ),
        trusted_root_record("trusted_root.json", sigstore_data.trusted_root_bytes()),
    ]
    bundle.finish()
    trust = make_trust(tmp_path / "trust")
    body = json.loads(trust.policy.read_text())
    body["requireSignatures"] = [
        {
            "match": "ghcr.io/kubewarden/*",
            "issuer": sigstore_data.GITHUB_ISSUER,
            "identity": sigstore_data.IMAGE_IDENTITY,
        }
    ]
    trust.policy.write_text(json.dumps(body))
    [checked] = upstream_of(bundle, trust.policy)
    assert checked.problems == []
    assert checked.signers == [{"issuer": sigstore_data.GITHUB_ISSUER, "identity": sigstore_data.IMAGE_IDENTITY}]


def test_an_image_recorded_as_an_oci_chart_is_held_to_the_required_signatures(tmp_path, key):
    trust = trust_requiring(tmp_path, key)
    bundle = SmallBundle(tmp_path / "b")
    bundle.image(SOURCE)
    bundle.artifacts[0] = dataclasses.replace(bundle.artifacts[0], kind="chart")
    bundle.finish()
    sign(bundle.root, trust)
    report = check_trust(bundle.root, trust.policy)
    assert [p.code for p in report.problems] == [codes.SIGNATURE_MISSING]
