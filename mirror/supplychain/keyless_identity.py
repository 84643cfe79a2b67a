"""Who a Fulcio certificate names, and whether an identity rule accepts it.

Fulcio writes the OIDC issuer in its own extensions (1.3.6.1.4.1.57264.1.8 as a DER UTF8String, and the older
1.3.6.1.4.1.57264.1.1 as raw bytes) and the identity as a subject alternative name: a URI (CI workflows,
SPIFFE), an email, or an otherName 1.3.6.1.4.1.57264.1.7 (a username). See docs/supply-chain.md ("Keyless").
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

from mirror.errors import UsageError
from mirror.limits import DEFAULT_LIMITS
from mirror.supplychain.codes import SIGNATURE_IDENTITY_MISMATCH
from mirror.supplychain.keyless_types import IdentityRule, KeylessFailure, KeylessSigner

if TYPE_CHECKING:
    from cryptography.x509 import Certificate

_ISSUER_V1 = "1.3.6.1.4.1.57264.1.1"
_ISSUER_V2 = "1.3.6.1.4.1.57264.1.8"
_USERNAME = "1.3.6.1.4.1.57264.1.7"


def certificate_issuer(certificate: Certificate) -> str | None:
    """The OIDC issuer the certificate names (the newer extension first), None when it names none."""
    from cryptography import x509
    from cryptography.hazmat import asn1

    values = {ext.oid.dotted_string: ext.value for ext in certificate.extensions}
    try:
        if isinstance(v2 := values.get(_ISSUER_V2), x509.UnrecognizedExtension):
            return str(asn1.decode_der(str, v2.value))
        if isinstance(v1 := values.get(_ISSUER_V1), x509.UnrecognizedExtension):
            return bytes(v1.value).decode("utf-8")
    except ValueError:  # not a UTF8String, not UTF-8: names nothing we can compare
        return None
    return None


def certificate_identities(certificate: Certificate) -> list[str]:
    """The identities the certificate's subject alternative names hold: URIs, emails, then usernames."""
    from cryptography import x509
    from cryptography.hazmat import asn1

    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    identities: list[str] = list(names.get_values_for_type(x509.UniformResourceIdentifier))
    identities += names.get_values_for_type(x509.RFC822Name)
    for other in names.get_values_for_type(x509.OtherName):
        if other.type_id.dotted_string == _USERNAME:
            try:
                identities.append(str(asn1.decode_der(str, other.value)))
            except ValueError:
                continue
    return identities


def claimed_signer(certificate: Certificate) -> KeylessSigner | None:
    """What the certificate claims (issuer and first identity), unverified; None if it claims no signer."""
    issuer = certificate_issuer(certificate)
    identities = certificate_identities(certificate)
    if issuer is None or not identities:
        return None
    return KeylessSigner(issuer=issuer, identity=identities[0])


def check_rule(rule: IdentityRule, where: str) -> None:
    """A rule that can be checked: an issuer, exactly one of identity and identityRegexp, a valid RE2 regexp."""
    if not rule.issuer:
        raise UsageError(f"{where}: a keyless rule needs an issuer (the OIDC issuer URL the certificate names)")
    if (rule.identity is None) == (rule.identity_regexp is None):
        raise UsageError(f"{where}: a keyless rule needs exactly one of identity and identityRegexp")
    if rule.identity_regexp is not None:
        _compiled(rule.identity_regexp, where)


def _compiled(pattern: str, where: str) -> Any:
    limit = DEFAULT_LIMITS.max_identity_regexp_chars
    if len(pattern) > limit:
        raise UsageError(
            f"{where}: identityRegexp has {len(pattern)} characters, more than max_identity_regexp_chars ({limit})"
        )
    return _compile(pattern, where)


@lru_cache(maxsize=256)
def _compile(pattern: str, where: str) -> Any:
    from mirror.flux.patterns import compile_upstream

    try:
        return compile_upstream(pattern, where)
    except UsageError as exc:
        raise UsageError(
            exc.message, hint="identityRegexp is RE2 syntax (as cosign's Go regexp): no backreferences or lookaround"
        ) from exc


def signer_matching(certificate: Certificate, rule: IdentityRule) -> KeylessSigner:
    """The signer the rule accepts, or KeylessFailure(SIGNATURE_IDENTITY_MISMATCH) naming who did sign."""
    check_rule(rule, "keyless rule")
    issuer = certificate_issuer(certificate)
    identities = certificate_identities(certificate)
    signed_by = f"signed by {', '.join(identities) or 'no identity'} (issuer {issuer or 'none'})"
    if issuer != rule.issuer:
        raise KeylessFailure(SIGNATURE_IDENTITY_MISMATCH, f"{signed_by}; the rule wants issuer {rule.issuer}")
    if rule.identity is not None:
        matched = [identity for identity in identities if identity == rule.identity]
        wanted = f"identity {rule.identity}"
    else:
        pattern = _compiled(str(rule.identity_regexp), "keyless rule")
        # Matched anywhere unless anchored, as cosign's --certificate-identity-regexp and Flux's matchOIDCIdentity
        # match: a rule copied from either means here what it meant there.
        matched = [identity for identity in identities if pattern.search(identity) is not None]
        wanted = f"an identity matching {rule.identity_regexp}"
    if not matched:
        raise KeylessFailure(SIGNATURE_IDENTITY_MISMATCH, f"{signed_by}; the rule wants {wanted}")
    return KeylessSigner(issuer=rule.issuer, identity=matched[0])
