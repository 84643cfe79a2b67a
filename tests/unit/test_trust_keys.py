"""Signing keys: generation, file formats and modes, passwords, the key id, and which signatures verify.

The verification algorithm comes from the public key alone; ECDSA signatures are accepted in canonical DER only.
"""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from mirror.errors import UsageError
from mirror.trust.keys import (
    ECDSA_P256,
    ED25519,
    PASSWORD_VARIABLE,
    PublicKey,
    generate,
    load_public_key,
    load_signer,
    public_key_from_pem,
)

MESSAGE = b"DSSEv1 28 application/vnd.in-toto+json 2 {}"
NO_PASSWORD: dict[str, str] = {}
PASSWORD = {PASSWORD_VARIABLE: "correct horse battery staple"}


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def spki_der(pem: bytes) -> bytes:
    key = serialization.load_pem_public_key(pem)
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def p256_public(private: ec.EllipticCurvePrivateKey) -> PublicKey:
    der = private.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return PublicKey(der, ECDSA_P256, "test")


def ed25519_public(private: ed25519.Ed25519PrivateKey) -> PublicKey:
    der = private.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return PublicKey(der, ED25519, "test")


def der_integer(value: bytes) -> bytes:
    return b"\x02" + bytes([len(value)]) + value


def der_signature(r: bytes, s: bytes) -> bytes:
    body = der_integer(r) + der_integer(s)
    return b"\x30" + bytes([len(body)]) + body


def minimal(value: int) -> bytes:
    """The DER content of a positive INTEGER: big-endian, with a 0x00 only when the high bit is set."""
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return b"\x00" + raw if raw[0] & 0x80 else raw


# --- generation -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", [ECDSA_P256, ED25519])
def test_generate_writes_key_and_pub_named_after_the_name(algorithm: str, in_tmp: Path) -> None:
    key_path, pub_path, _ = generate("officer", algorithm, env=NO_PASSWORD)
    assert (key_path, pub_path) == (Path("officer.key"), Path("officer.pub"))
    assert (in_tmp / "officer.key").is_file()
    assert (in_tmp / "officer.pub").is_file()


@pytest.mark.parametrize("algorithm", [ECDSA_P256, ED25519])
def test_generated_private_key_file_is_readable_by_owner_only(algorithm: str) -> None:
    key_path, _, _ = generate("officer", algorithm, env=NO_PASSWORD)
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600


@pytest.mark.parametrize("algorithm", [ECDSA_P256, ED25519])
def test_key_id_is_sha256_of_der_subject_public_key_info(algorithm: str) -> None:
    _, pub_path, key_id = generate("officer", algorithm, env=NO_PASSWORD)
    assert key_id == hashlib.sha256(spki_der(pub_path.read_bytes())).hexdigest()


@pytest.mark.parametrize("algorithm", [ECDSA_P256, ED25519])
def test_loaded_public_key_has_the_same_key_id_as_generate_returned(algorithm: str) -> None:
    _, pub_path, key_id = generate("officer", algorithm, env=NO_PASSWORD)
    assert load_public_key(pub_path).key_id == key_id


@pytest.mark.parametrize(
    ("algorithm", "key_type"),
    [(ECDSA_P256, ec.EllipticCurvePublicKey), (ED25519, ed25519.Ed25519PublicKey)],
)
def test_public_key_file_is_pem_subject_public_key_info(algorithm: str, key_type: type) -> None:
    _, pub_path, _ = generate("officer", algorithm, env=NO_PASSWORD)
    pem = pub_path.read_bytes()
    assert pem.startswith(b"-----BEGIN PUBLIC KEY-----\n")
    assert isinstance(serialization.load_pem_public_key(pem), key_type)


def test_generated_ecdsa_key_is_on_p256() -> None:
    _, pub_path, _ = generate("officer", ECDSA_P256, env=NO_PASSWORD)
    key = serialization.load_pem_public_key(pub_path.read_bytes())
    assert isinstance(key, ec.EllipticCurvePublicKey)
    assert isinstance(key.curve, ec.SECP256R1)


@pytest.mark.parametrize("algorithm", [ECDSA_P256, ED25519])
def test_private_key_without_password_is_unencrypted_pkcs8(algorithm: str) -> None:
    key_path, _, _ = generate("officer", algorithm, env=NO_PASSWORD)
    pem = key_path.read_bytes()
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----\n")
    serialization.load_pem_private_key(pem, password=None)


@pytest.mark.parametrize("algorithm", [ECDSA_P256, ED25519])
def test_private_key_is_encrypted_pkcs8_when_password_variable_is_set(algorithm: str) -> None:
    key_path, _, _ = generate("officer", algorithm, env=PASSWORD)
    pem = key_path.read_bytes()
    assert pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----\n")
    serialization.load_pem_private_key(pem, password=PASSWORD[PASSWORD_VARIABLE].encode())


def test_generate_refuses_an_unknown_algorithm() -> None:
    with pytest.raises(UsageError) as caught:
        generate("officer", "rsa", env=NO_PASSWORD)
    assert caught.value.exit_code == 2
    assert not Path("officer.key").exists()


@pytest.mark.parametrize("existing", ["officer.key", "officer.pub"])
def test_generate_never_overwrites_an_existing_key_or_pub(existing: str) -> None:
    Path(existing).write_bytes(b"precious")
    with pytest.raises(UsageError) as caught:
        generate("officer", ECDSA_P256, env=NO_PASSWORD)
    assert caught.value.exit_code == 2
    assert Path(existing).read_bytes() == b"precious"


def test_generate_into_a_missing_directory_is_a_usage_error_naming_it() -> None:
    with pytest.raises(UsageError) as caught:
        generate("keys/officer", ECDSA_P256, env=NO_PASSWORD)
    assert caught.value.exit_code == 2
    assert "keys" in caught.value.message and "not a directory" in caught.value.message


def test_generate_twice_keeps_the_first_key() -> None:
    key_path, _, _ = generate("officer", ECDSA_P256, env=NO_PASSWORD)
    first = key_path.read_bytes()
    with pytest.raises(UsageError):
        generate("officer", ECDSA_P256, env=NO_PASSWORD)
    assert key_path.read_bytes() == first


# --- loading ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", [ECDSA_P256, ED25519])
def test_loaded_signer_matches_the_public_key_file(algorithm: str) -> None:
    key_path, pub_path, key_id = generate("officer", algorithm, env=NO_PASSWORD)
    signer = load_signer(key_path, env=NO_PASSWORD)
    assert signer.public == load_public_key(pub_path)
    assert signer.public.key_id == key_id
    assert signer.public.algorithm == algorithm


@pytest.mark.parametrize("algorithm", [ECDSA_P256, ED25519])
def test_loaded_signer_signatures_verify_with_the_public_key_file(algorithm: str) -> None:
    key_path, pub_path, _ = generate("officer", algorithm, env=NO_PASSWORD)
    signature = load_signer(key_path, env=NO_PASSWORD).sign(MESSAGE)
    assert load_public_key(pub_path).verify(signature, MESSAGE)


def test_encrypted_key_loads_with_its_password() -> None:
    key_path, _, key_id = generate("officer", ECDSA_P256, env=PASSWORD)
    assert load_signer(key_path, env=PASSWORD).public.key_id == key_id


def test_encrypted_key_without_password_is_a_usage_error_with_a_hint() -> None:
    key_path, _, _ = generate("officer", ECDSA_P256, env=PASSWORD)
    with pytest.raises(UsageError) as caught:
        load_signer(key_path, env=NO_PASSWORD)
    assert caught.value.exit_code == 2
    assert caught.value.hint is not None
    assert PASSWORD_VARIABLE in caught.value.hint


def test_encrypted_key_with_wrong_password_is_a_usage_error() -> None:
    key_path, _, _ = generate("officer", ECDSA_P256, env=PASSWORD)
    with pytest.raises(UsageError) as caught:
        load_signer(key_path, env={PASSWORD_VARIABLE: "wrong"})
    assert caught.value.exit_code == 2


def test_unencrypted_key_with_password_set_is_a_usage_error() -> None:
    key_path, _, _ = generate("officer", ECDSA_P256, env=NO_PASSWORD)
    with pytest.raises(UsageError) as caught:
        load_signer(key_path, env=PASSWORD)
    assert caught.value.exit_code == 2


def test_missing_private_key_file_is_a_usage_error() -> None:
    with pytest.raises(UsageError) as caught:
        load_signer(Path("absent.key"), env=NO_PASSWORD)
    assert caught.value.exit_code == 2


def test_missing_public_key_file_is_a_usage_error() -> None:
    with pytest.raises(UsageError) as caught:
        load_public_key(Path("absent.pub"))
    assert caught.value.exit_code == 2


def test_p384_private_key_is_refused() -> None:
    private = ec.generate_private_key(ec.SECP384R1())
    path = Path("p384.key")
    path.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    with pytest.raises(UsageError):
        load_signer(path, env=NO_PASSWORD)


def test_rsa_public_key_is_refused() -> None:
    pem = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(UsageError) as caught:
        public_key_from_pem(pem, "rsa.pub")
    assert caught.value.exit_code == 2


def test_p384_public_key_is_refused() -> None:
    pem = (
        ec.generate_private_key(ec.SECP384R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(UsageError) as caught:
        public_key_from_pem(pem, "p384.pub")
    assert caught.value.exit_code == 2


def test_text_that_is_not_a_pem_public_key_is_refused() -> None:
    with pytest.raises(UsageError):
        public_key_from_pem(b"-----BEGIN PUBLIC KEY-----\nnot base64\n-----END PUBLIC KEY-----\n", "x.pub")


# --- ECDSA verification: DER only -------------------------------------------------------------------------


@pytest.fixture
def p256() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def test_ecdsa_der_signature_verifies(p256: ec.EllipticCurvePrivateKey) -> None:
    signature = p256.sign(MESSAGE, ec.ECDSA(hashes.SHA256()))
    assert p256_public(p256).verify(signature, MESSAGE)


def test_ecdsa_signature_over_other_data_is_refused(p256: ec.EllipticCurvePrivateKey) -> None:
    signature = p256.sign(MESSAGE, ec.ECDSA(hashes.SHA256()))
    assert not p256_public(p256).verify(signature, MESSAGE + b" ")


def test_ecdsa_signature_by_another_key_is_refused(p256: ec.EllipticCurvePrivateKey) -> None:
    other = ec.generate_private_key(ec.SECP256R1())
    signature = other.sign(MESSAGE, ec.ECDSA(hashes.SHA256()))
    assert not p256_public(p256).verify(signature, MESSAGE)


def test_ecdsa_raw_r_s_of_a_valid_signature_is_refused(p256: ec.EllipticCurvePrivateKey) -> None:
    r, s = decode_dss_signature(p256.sign(MESSAGE, ec.ECDSA(hashes.SHA256())))
    raw = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    assert not p256_public(p256).verify(raw, MESSAGE)


def test_ecdsa_der_with_a_redundant_leading_zero_in_r_is_refused(p256: ec.EllipticCurvePrivateKey) -> None:
    signature = p256.sign(MESSAGE, ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(signature)
    assert der_signature(minimal(r), minimal(s)) == signature  # the rebuild is exact before it is bent
    bent = der_signature(b"\x00" + minimal(r), minimal(s))
    assert not p256_public(p256).verify(bent, MESSAGE)


def test_ecdsa_der_with_long_form_length_is_refused(p256: ec.EllipticCurvePrivateKey) -> None:
    signature = p256.sign(MESSAGE, ec.ECDSA(hashes.SHA256()))
    body = signature[2:]
    bent = b"\x30\x81" + bytes([len(body)]) + body
    assert not p256_public(p256).verify(bent, MESSAGE)


def test_ecdsa_der_with_trailing_bytes_is_refused(p256: ec.EllipticCurvePrivateKey) -> None:
    signature = p256.sign(MESSAGE, ec.ECDSA(hashes.SHA256()))
    assert not p256_public(p256).verify(signature + b"\x00", MESSAGE)


@pytest.mark.parametrize("garbage", [b"", b"\x30", b"\x30\x00", b"not a signature", bytes(64), bytes(72)])
def test_ecdsa_garbage_signature_is_refused(p256: ec.EllipticCurvePrivateKey, garbage: bytes) -> None:
    assert not p256_public(p256).verify(garbage, MESSAGE)


# --- Ed25519 and algorithm choice -------------------------------------------------------------------------


def test_ed25519_signature_verifies() -> None:
    private = ed25519.Ed25519PrivateKey.generate()
    assert ed25519_public(private).verify(private.sign(MESSAGE), MESSAGE)


def test_ed25519_signature_over_other_data_is_refused() -> None:
    private = ed25519.Ed25519PrivateKey.generate()
    assert not ed25519_public(private).verify(private.sign(MESSAGE), MESSAGE + b" ")


@pytest.mark.parametrize("garbage", [b"", bytes(64), b"x" * 63])
def test_ed25519_garbage_signature_is_refused(garbage: bytes) -> None:
    assert not ed25519_public(ed25519.Ed25519PrivateKey.generate()).verify(garbage, MESSAGE)


def test_p256_signature_checked_against_an_ed25519_key_is_false(p256: ec.EllipticCurvePrivateKey) -> None:
    signature = p256.sign(MESSAGE, ec.ECDSA(hashes.SHA256()))
    assert not ed25519_public(ed25519.Ed25519PrivateKey.generate()).verify(signature, MESSAGE)


def test_ed25519_signature_checked_against_a_p256_key_is_false(p256: ec.EllipticCurvePrivateKey) -> None:
    signature = ed25519.Ed25519PrivateKey.generate().sign(MESSAGE)
    assert not p256_public(p256).verify(signature, MESSAGE)


def test_a_p256_key_labelled_ed25519_verifies_nothing(p256: ec.EllipticCurvePrivateKey) -> None:
    signature = p256.sign(MESSAGE, ec.ECDSA(hashes.SHA256()))
    assert PublicKey(p256_public(p256).der, ED25519, "mislabelled.pub").verify(signature, MESSAGE) is False


def test_an_ed25519_key_labelled_p256_verifies_nothing() -> None:
    private = ed25519.Ed25519PrivateKey.generate()
    mislabelled = PublicKey(ed25519_public(private).der, ECDSA_P256, "mislabelled.pub")
    assert mislabelled.verify(private.sign(MESSAGE), MESSAGE) is False


def test_public_keys_are_equal_exactly_when_their_der_matches(p256: ec.EllipticCurvePrivateKey) -> None:
    der = p256_public(p256).der
    assert PublicKey(der, ECDSA_P256, "a.pub") == PublicKey(der, ECDSA_P256, "b.pub")
    assert p256_public(p256) != p256_public(ec.generate_private_key(ec.SECP256R1()))
