"""Upstream signatures verified again on the high side, offline, when the trust policy requires them.

Everything comes from the bundle: the attached manifests and their signature layers, the certificates in them,
the upstream index a platform filter narrowed, and (unless the policy names its own `trustedRoot`) the trusted
roots the collector carried. Nothing here, nor below it, opens a network connection. The rules are the policy's
own (`requireSignatures:`); the `signers` the collector recorded are shown to the officers, never trusted here.
Every blob is hashed as it is read, so `inspect --trust` runs the same check on a bundle whose files nobody
checked. See docs/supply-chain.md ("Verifying again at import").
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

from mirror.bundle.inventory import Inventory, blob_path
from mirror.bundle.reader import BundleReader, read_small
from mirror.errors import MirrorError
from mirror.limits import Limits
from mirror.supplychain.attached import attached_by_subject
from mirror.supplychain.check import ImageSignatures, check_signatures, judged
from mirror.supplychain.roots import TRUSTED_ROOT_KIND, load_trusted_root, read_trusted_root_file
from mirror.supplychain.rules import VerifyRule, rules_for
from mirror.trust.policy import TrustPolicy

if TYPE_CHECKING:
    from mirror.supplychain.keyless_types import TrustedRootHandle


class _BundleBlobs:
    """Blobs read from the bundle, each hashed again as it is read: it may have changed since it was checked."""

    def __init__(self, reader: BundleReader) -> None:
        self.reader = reader

    def __call__(self, digest: str, max_bytes: int) -> bytes:
        data = read_small(self.reader, blob_path(digest), max_bytes)
        if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
            raise MirrorError(f"{blob_path(digest)}: its bytes do not hash to {digest}")
        return data


def policy_trusted_roots(policy: TrustPolicy, limits: Limits) -> dict[Path, TrustedRootHandle]:
    """The trusted roots the policy names for its keyless rules, loaded; one that does not load is the policy's
    fault (exit 2), told before anything about the bundle."""
    paths = dict.fromkeys(r.trusted_root for r in policy.require_signatures if r.keyless and r.trusted_root)
    return {path: load_trusted_root(read_trusted_root_file(path, limits), str(path)) for path in paths if path}


class _Roots:
    """The trusted roots of keyless rules: the policy's own, else those the bundle carries, loaded when first
    needed (a carried one that does not load verifies nothing)."""

    def __init__(
        self, inventory: Inventory, own: dict[Path, TrustedRootHandle], read_blob: _BundleBlobs, limits: Limits
    ) -> None:
        self.inventory = inventory
        self.read_blob = read_blob
        self.limits = limits
        self.own = own
        self.carried: list[TrustedRootHandle] | None = None

    def __call__(self, rule: VerifyRule) -> list[TrustedRootHandle]:
        if rule.trusted_root is not None:
            return [self.own[rule.trusted_root]]
        if self.carried is None:
            self.carried = self._load_carried()
        return self.carried

    def _load_carried(self) -> list[TrustedRootHandle]:
        roots = []
        for artifact in self.inventory.artifacts:
            if artifact.kind != TRUSTED_ROOT_KIND:
                continue
            where = f"carried trusted root {artifact.source} ({artifact.digest})"
            raw = self.read_blob(artifact.digest, self.limits.max_trusted_root_bytes)
            roots.append(load_trusted_root(raw, where))
        return roots


def check_upstream(
    reader: BundleReader,
    inventory: Inventory,
    policy: TrustPolicy,
    limits: Limits,
    own_roots: dict[Path, TrustedRootHandle] | None = None,
) -> list[ImageSignatures]:
    """Every image of the bundle (`reader`, its `inventory`) judged under the policy's `requireSignatures` rules
    (none: nothing is read).

    own_roots: the policy's trusted roots as policy_trusted_roots loaded them (loaded here when not given)."""
    if not policy.require_signatures:
        return []
    read_blob = _BundleBlobs(reader)
    own = own_roots if own_roots is not None else policy_trusted_roots(policy, limits)
    roots = _Roots(inventory, own, read_blob, limits)
    artifacts = inventory.artifacts
    return check_signatures(
        [a for a in artifacts if judged(a)],
        attached_by_subject(artifacts),
        read_blob,
        lambda image: rules_for(image.source, policy.require_signatures, None),
        roots,
        limits,
    )
