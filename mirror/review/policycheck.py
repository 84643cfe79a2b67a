"""The trust policy's own verdict on each image's upstream signatures, for `inspect --trust`.

It is the check `verify` and `import` run (mirror.trust.upstream.check_upstream: offline, every blob hashed as
it is read, so an unchecked bundle is safe to judge), filed by image for the review. See docs/supply-chain.md
("What the officer sees").
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mirror.bundle.inventory import ArtifactRecord
from mirror.limits import Limits
from mirror.review.source import Source
from mirror.supplychain.check import RuleOutcome
from mirror.supplychain.summary import Signer
from mirror.trust.policy import TrustPolicy
from mirror.trust.upstream import check_upstream

if TYPE_CHECKING:
    from mirror.supplychain.keyless_types import TrustedRootHandle

NO_RULES = "the policy requires no upstream signatures"
NOT_READ = "not checked: an inventory file carries no blobs"


@dataclass(frozen=True)
class RuleCheck:
    """One requireSignatures rule's verdict on one image: who signed, or the problem that refuses it."""

    rule: str  # the rule's field in the policy: requireSignatures[0]
    requires: str  # who it wants: `key ID`, or `issuer I, identity J`
    signers: tuple[Signer, ...]  # the signers that satisfy it (verified under it)
    code: str | None = None  # None: satisfied; else SIGNATURE_MISSING, SIGNATURE_INVALID, ...
    reason: str | None = None  # why it is not satisfied

    @property
    def verified(self) -> bool:
        return self.code is None

    def to_json(self) -> dict[str, object]:
        return {
            "rule": self.rule,
            "requires": self.requires,
            "verified": self.verified,
            "signers": [s.to_json() for s in self.signers],
            "code": self.code,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class PolicyCheck:
    """The policy's requireSignatures over the bundle: its rules, and each image's verdict under them."""

    rules: tuple[tuple[str, str], ...]  # (rule, requires) for each rule of the policy
    images: dict[tuple[str, str], tuple[RuleCheck, ...]]  # by (source, digest); () when no rule applies
    note: str | None = None  # why no image was checked (no rules; an inventory file), when none was

    def of(self, artifact: ArtifactRecord) -> list[RuleCheck] | None:
        """The artifact's verdicts; None when it was not checked (not an image, or nothing was)."""
        found = self.images.get((artifact.source, artifact.digest))
        return None if found is None else list(found)

    def count(self) -> tuple[int, int, int]:
        """Images whose every rule is satisfied, images refused, and images no rule applies to."""
        verdicts = list(self.images.values())
        verified = sum(1 for v in verdicts if v and all(c.verified for c in v))
        not_required = sum(1 for v in verdicts if not v)
        return verified, len(verdicts) - verified - not_required, not_required


def _field(origin: str, policy: TrustPolicy) -> str:
    """`requireSignatures[0]` of `/etc/mirror/policy.yaml: requireSignatures[0]`: the policy is named once."""
    return origin.removeprefix(f"{policy.path}: ")


def _signer(signer: dict[str, str]) -> Signer:
    return Signer(signer.get("key", ""), signer.get("issuer", ""), signer.get("identity", ""))


def _rule_check(outcome: RuleOutcome, policy: TrustPolicy) -> RuleCheck:
    rule = outcome.rule
    signers = tuple(_signer(s) for s in outcome.signers)
    return RuleCheck(_field(rule.origin, policy), rule.describe(), signers, outcome.code, outcome.reason)


def check_policy(
    source: Source, policy: TrustPolicy, own_roots: dict[Path, TrustedRootHandle], limits: Limits
) -> PolicyCheck:
    """Every image of the bundle judged under the policy's requireSignatures rules, read from the bundle alone."""
    rules = tuple((_field(r.origin, policy), r.describe()) for r in policy.require_signatures)
    if not rules:
        return PolicyCheck(rules, {}, NO_RULES)
    if source.reader is None:
        return PolicyCheck(rules, {}, NOT_READ)
    checked = check_upstream(source.reader, source.inventory, policy, limits, own_roots)
    images = {(i.source, i.digest): tuple(_rule_check(o, policy) for o in i.outcomes) for i in checked}
    return PolicyCheck(rules, images)
