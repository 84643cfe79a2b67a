"""Who a Fulcio certificate says it was issued to: the OIDC issuer and the identity (a claim, not a check).

Fulcio writes the issuer in its own extension: 1.3.6.1.4.1.57264.1.8 (a DER UTF8String), or in certificates
from before 2023 1.3.6.1.4.1.57264.1.1 (the raw string); the identity is the Subject Alternative Name (a URI
for workflows, an email address for people). The review shows it as claimed; verification is keyless.py's.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography import x509

ISSUER_V1 = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.1")
ISSUER_V2 = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.8")
_UTF8_STRING = 0x0C


@dataclass(frozen=True)
class KeylessSigner:
    issuer: str
    identity: str


def _der_utf8_string(value: bytes) -> str | None:
    """A DER UTF8String's text; None when `value` is not exactly one."""
    if len(value) < 2 or value[0] != _UTF8_STRING:
        return None
    length, offset = value[1], 2
    if length & 0x80:  # long form: the next (length & 0x7f) bytes hold the length
        count = length & 0x7F
        length, offset = int.from_bytes(value[2 : 2 + count], "big"), 2 + count
    if offset + length != len(value):
        return None
    try:
        return value[offset:].decode("utf-8")
    except UnicodeDecodeError:
        return None


def _issuer(certificate: x509.Certificate) -> str | None:
    for oid, read in ((ISSUER_V2, _der_utf8_string), (ISSUER_V1, _plain)):
        try:
            extension = certificate.extensions.get_extension_for_oid(oid).value
        except x509.ExtensionNotFound:
            continue
        if isinstance(extension, x509.UnrecognizedExtension):
            return read(extension.value)
    return None


def _plain(value: bytes) -> str | None:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _identity(certificate: x509.Certificate) -> str | None:
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    for kind in (x509.UniformResourceIdentifier, x509.RFC822Name):
        values = names.get_values_for_type(kind)
        if values:
            return str(values[0])
    return None


def signer_of_certificate(data: bytes) -> KeylessSigner | None:
    """The issuer and identity a Fulcio certificate (PEM, or DER) names; None when it names none or is not one."""
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            certificate = x509.load_pem_x509_certificate(data)
        else:
            certificate = x509.load_der_x509_certificate(data)
        issuer, identity = _issuer(certificate), _identity(certificate)
    except (ValueError, TypeError, x509.DuplicateExtension, x509.UnsupportedGeneralNameType):
        return None
    if issuer is None or identity is None:
        return None
    return KeylessSigner(issuer, identity)
