"""The values keyless verification takes and gives: a rule, a signer, a refusal, a loaded trusted root."""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
    from cryptography.x509 import Certificate


@dataclass(frozen=True)
class IdentityRule:
    """Who may sign: the OIDC issuer exactly, and either one identity exactly (a subject alternative name of
    the certificate: a URI or an email) or an RE2 regexp matched anywhere in an identity
    unless anchored (as cosign's)."""

    issuer: str
    identity: str | None = None
    identity_regexp: str | None = None


@dataclass(frozen=True)
class KeylessSigner:
    """Who signed, as the certificate says: its OIDC issuer and the identity the rule matched (or its first)."""

    issuer: str
    identity: str


class KeylessFailure(Exception):
    """A signature refused: `code` is one of mirror.supplychain.codes, `reason` one line for the officer."""

    def __init__(self, code: str, reason: str) -> None:
        self.code = code
        self.reason = " ".join(reason.split())  # one line, whatever a library's message held
        super().__init__(f"{code}: {self.reason}")


@dataclass(frozen=True)
class ValidFor:
    """When a CA or log key of a trusted root may vouch for a signature (end None: still in use)."""

    start: datetime.datetime
    end: datetime.datetime | None

    def covers(self, moment: datetime.datetime) -> bool:
        return self.start <= moment and (self.end is None or moment <= self.end)


@dataclass(frozen=True)
class CertificateAuthority:
    certificates: tuple[Certificate, ...]  # the chain as the trusted root lists it: issuing CA first, root last
    valid_for: ValidFor


@dataclass(frozen=True)
class LogKey:
    public_key: PublicKeyTypes
    valid_for: ValidFor


@dataclass(frozen=True, eq=False)
class TrustedRootHandle:
    """A trusted root parsed once: its Fulcio CAs and Rekor keys (for cosign's classic layout, checked here),
    and sigstore's own objects built from the same bytes (for Sigstore bundles)."""

    where: str
    sha256: str
    authorities: tuple[CertificateAuthority, ...]
    log_keys: Mapping[bytes, LogKey]  # by log id: the SHA-256 of the key's DER
    sigstore_root: Any  # sigstore.models.TrustedRoot
    verifier: Any  # sigstore.verify.Verifier
