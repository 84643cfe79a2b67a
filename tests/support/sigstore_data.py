"""Real Sigstore material in tests/data/sigstore (README.md there names where each file came from), the facts
each file states, and the tampered or re-rooted copies the keyless tests are made of."""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from mirror.supplychain.attached import (
    COSIGN_BUNDLE_ANNOTATION,
    COSIGN_CERTIFICATE_ANNOTATION,
    COSIGN_CHAIN_ANNOTATION,
    COSIGN_SIGNATURE_ANNOTATION,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
DATA = REPO_ROOT / "tests" / "data" / "sigstore"

GITHUB_ISSUER = "https://token.actions.githubusercontent.com"

# A cosign v3 image signature: a Sigstore bundle v0.3 holding a DSSE in-toto statement about an image digest.
IMAGE_BUNDLE = DATA / "kubewarden-controller-v1.34.0.sigstore.json"
IMAGE_DIGEST = "sha256:c811d58de79c92f03214e63aa339484e488d694ae8a6283b5f3f17a9faf50172"
IMAGE_IDENTITY = "https://github.com/kubewarden/kubewarden-controller/.github/workflows/release.yml@refs/tags/v1.34.0"

# A message signature over a file (a wheel on PyPI): a Sigstore bundle v0.2.
WHEEL_BUNDLE = DATA / "rfc8785-0.1.2-py3-none-any.whl.sigstore.json"
WHEEL_DIGEST = "sha256:c4e92e9ecc828bef2aa7dba1de8ac983511f7532a0df11c770d39099a25cf201"
WHEEL_IDENTITY = "https://github.com/trailofbits/rfc8785.py/.github/workflows/release.yml@refs/tags/v0.1.2"

# cosign's classic keyless layout: the signature manifest at tag sha256-<hex>.sig and its one layer (the payload).
COSIGN_MANIFEST = DATA / "server_image.sig.manifest.json"
COSIGN_PAYLOAD = DATA / "server_image.sig.payload.json"
COSIGN_IMAGE_DIGEST = "sha256:120ef883bd7612aee0a100297def41014bf3e1aa321a0eaf4d0ebd9855d39a11"
COSIGN_IDENTITY = (
    "https://github.com/salrashid123/go-bazel-github-workflow/.github/workflows/release.yaml@refs/tags/v0.0.26"
)

TRUSTED_ROOT = DATA / "trusted_root.json"

# An attestation (SLSA provenance in a DSSE in-toto statement), not a signature, on Sigstore's staging instance.
PROVENANCE_BUNDLE = DATA / "a.dsse.staging-rekor-v2.txt.sigstore.json"
PROVENANCE_DIGEST = "sha256:a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf"
PROVENANCE_IDENTITY = (
    "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/"
    "extremely-dangerous-oidc-beacon.yml@refs/heads/main"
)
STAGING_TRUSTED_ROOT = DATA / "trusted_root.staging.json"


def trusted_root_bytes() -> bytes:
    return TRUSTED_ROOT.read_bytes()


def trusted_root_document() -> dict[str, Any]:
    return dict(json.loads(trusted_root_bytes()))


def json_bytes(document: Any) -> bytes:
    return json.dumps(document).encode()


def bundle_document(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_bytes()))


def leaf_der(bundle: dict[str, Any]) -> bytes:
    material = bundle["verificationMaterial"]
    if "certificate" in material:
        return base64.b64decode(material["certificate"]["rawBytes"])
    return base64.b64decode(material["x509CertificateChain"]["certificates"][0]["rawBytes"])


def with_leaf_der(bundle: dict[str, Any], der: bytes) -> dict[str, Any]:
    copy = json.loads(json.dumps(bundle))
    material = copy["verificationMaterial"]
    encoded = base64.b64encode(der).decode()
    if "certificate" in material:
        material["certificate"]["rawBytes"] = encoded
    else:
        material["x509CertificateChain"]["certificates"][0]["rawBytes"] = encoded
    return dict(copy)


def statement(bundle: dict[str, Any]) -> dict[str, Any]:
    return dict(json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"])))


def with_statement(bundle: dict[str, Any], document: dict[str, Any]) -> dict[str, Any]:
    copy = json.loads(json.dumps(bundle))
    copy["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(document).encode()).decode()
    return dict(copy)


def altered_san(der: bytes, old: bytes, new: bytes) -> bytes:
    """The certificate with one byte string of its subject alternative name replaced, same length (the DER
    stays well-formed; the issuer's signature over it no longer holds)."""
    assert len(old) == len(new) and der.count(old) >= 1
    return der.replace(old, new)


def cosign_layer() -> dict[str, str]:
    """The annotations of the signature manifest's one layer, as cosign wrote them."""
    manifest = json.loads(COSIGN_MANIFEST.read_bytes())
    (layer,) = manifest["layers"]
    annotations = layer["annotations"]
    return {
        "signature": annotations[COSIGN_SIGNATURE_ANNOTATION],
        "certificate": annotations[COSIGN_CERTIFICATE_ANNOTATION],
        "chain": annotations[COSIGN_CHAIN_ANNOTATION],
        "bundle": annotations[COSIGN_BUNDLE_ANNOTATION],
        "digest": layer["digest"],
    }


def payload_digest(payload: bytes) -> str:
    return "sha256:" + hashlib.sha256(payload).hexdigest()


# Roots with something swapped for material made here: a CA or a log key nothing real was ever signed by.


def _generated_ca() -> bytes:
    key = ec.generate_private_key(ec.SECP384R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "made in a test"),
            x509.NameAttribute(NameOID.COMMON_NAME, "not fulcio"),
        ]
    )
    now = datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=365 * 20))
        .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .sign(key, hashes.SHA384())
    )
    return certificate.public_bytes(serialization.Encoding.DER)


def root_with_other_ca() -> bytes:
    """The production trusted root with its Fulcio CAs replaced by a CA made here."""
    document = trusted_root_document()
    document["certificateAuthorities"] = [
        {
            "subject": {"organization": "made in a test", "commonName": "not fulcio"},
            "uri": "https://ca.invalid",
            "certChain": {"certificates": [{"rawBytes": base64.b64encode(_generated_ca()).decode()}]},
            "validFor": {"start": "2020-01-01T00:00:00Z"},
        }
    ]
    return json_bytes(document)


def root_with_other_log() -> bytes:
    """The production trusted root with its Rekor keys replaced by a key made here (its own log id)."""
    document = trusted_root_document()
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    document["tlogs"] = [
        {
            "baseUrl": "https://rekor.invalid",
            "hashAlgorithm": "SHA2_256",
            "publicKey": {
                "rawBytes": base64.b64encode(der).decode(),
                "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                "validFor": {"start": "2020-01-01T00:00:00Z"},
            },
            "logId": {"keyId": base64.b64encode(hashlib.sha256(der).digest()).decode()},
        }
    ]
    return json_bytes(document)


def root_with_other_ct_log() -> bytes:
    """The production trusted root with its certificate transparency log keys replaced by a key made here."""
    document = trusted_root_document()
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    document["ctlogs"] = [
        {
            "baseUrl": "https://ctfe.invalid",
            "hashAlgorithm": "SHA2_256",
            "publicKey": {
                "rawBytes": base64.b64encode(der).decode(),
                "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                "validFor": {"start": "2020-01-01T00:00:00Z"},
            },
            "logId": {"keyId": base64.b64encode(hashlib.sha256(der).digest()).decode()},
        }
    ]
    return json_bytes(document)
