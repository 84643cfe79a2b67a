"""Rules for upstream signatures: which images must be signed, and by whom.

One shape in three places: MirrorSet `spec.verify` (with `match`), an image entry's own `verify:` (without
`match`; it replaces `spec.verify` for that image, and `verify: []` exempts it), and TrustPolicy
`requireSignatures:`. See docs/supply-chain.md.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mirror.errors import ManifestError, UsageError

if TYPE_CHECKING:
    from mirror.supplychain.cosign import CosignKey

# cryptography and RE2 are imported when a rule needs them: every MirrorSet is read through here.

_FIELDS = {"match", "key", "issuer", "identity", "identityRegexp", "trustedRoot"}


@dataclass(frozen=True)
class VerifyRule:
    """A requirement: an image it applies to needs at least one valid signature by `key`, or (keyless) by a
    certificate that `issuer` issued to `identity` (or to an identity `identity_regexp` finds)."""

    origin: str = dataclasses.field(
        compare=False
    )  # the file and field it came from, for messages: "set.yaml: spec.verify[0]"
    match: str | None = None  # a glob over source references; None for an image's own rules
    key: CosignKey | None = None
    issuer: str | None = None
    identity: str | None = None
    identity_regexp: str | None = None
    trusted_root: Path | None = None  # for keyless rules: the file given, or None (the policy's: the bundle's)

    @property
    def keyless(self) -> bool:
        return self.key is None

    def matches(self, source: str) -> bool:
        """Globs as the trust policy's allowedSources: `*` crosses `/`, and case matters."""
        return self.match is None or fnmatch.fnmatchcase(source, self.match)

    def describe(self) -> str:
        if self.key is not None:
            return f"key {self.key.key_id}"
        wanted = f"identity {self.identity}" if self.identity is not None else f"identity ~ /{self.identity_regexp}/"
        return f"issuer {self.issuer}, {wanted}"


def rules_for(source: str, rules: Sequence[VerifyRule], own: Sequence[VerifyRule] | None) -> tuple[VerifyRule, ...]:
    """The rules an image must satisfy, every one of them: its own if it has any list of them, else each rule
    whose glob matches its source."""
    if own is not None:
        return tuple(own)
    return tuple(r for r in rules if r.matches(source))


class _Reader:
    def __init__(self, path: Path, field: str) -> None:
        self.path = path
        self.field = field

    def fail(self, field: str, problem: str, hint: str | None = None) -> ManifestError:
        return ManifestError(str(self.path), field, problem, hint=hint)

    def text(self, value: Any, field: str) -> str:
        if not isinstance(value, str) or not value:
            raise self.fail(field, f"expected a non-empty string, got {value!r}")
        return value

    def file(self, value: Any, field: str) -> Path:
        path = self.path.parent / self.text(value, field)
        if not path.is_file():
            raise self.fail(field, f"{path} is not a file")
        return path


def trusted_root_file(value: Any, path: Path, field: str) -> Path | None:
    """A file-level `trustedRoot:` (MirrorSet spec, trust policy), relative to the file; None when absent."""
    return None if value is None else _Reader(path, field).file(value, field)


def _rule(reader: _Reader, item: Any, field: str, *, with_match: bool, trusted_root: Path | None) -> VerifyRule:
    if not isinstance(item, dict):
        raise reader.fail(field, "expected a mapping: {match, key} or {match, issuer, identity | identityRegexp}")
    unknown = sorted(str(k) for k in item if k not in _FIELDS)
    if unknown:
        raise reader.fail(f"{field}.{unknown[0]}", "unknown field", hint=f"allowed: {', '.join(sorted(_FIELDS))}")
    match = None
    if with_match:
        match = reader.text(item.get("match"), f"{field}.match")
    elif "match" in item:
        raise reader.fail(f"{field}.match", "an image's own rules apply to that image; they take no match")
    if ("key" in item) == ("issuer" in item):
        raise reader.fail(field, "give key (cosign key-based) or issuer with identity or identityRegexp (keyless)")
    if "key" in item:
        return _key_rule(reader, item, field, match)
    return _keyless_rule(reader, item, field, match, trusted_root)


def _key_rule(reader: _Reader, item: dict[str, Any], field: str, match: str | None) -> VerifyRule:
    for name in ("identity", "identityRegexp", "trustedRoot"):
        if name in item:
            raise reader.fail(f"{field}.{name}", "only for keyless rules (with issuer), not with key")
    from mirror.supplychain.cosign import load_cosign_key

    try:
        key = load_cosign_key(reader.path.parent / reader.text(item["key"], f"{field}.key"))
    except ManifestError:
        raise
    except UsageError as exc:
        raise reader.fail(f"{field}.key", exc.message, hint=exc.hint) from exc
    return VerifyRule(f"{reader.path}: {field}", match, key=key)


def _keyless_rule(
    reader: _Reader, item: dict[str, Any], field: str, match: str | None, trusted_root: Path | None
) -> VerifyRule:
    issuer = reader.text(item["issuer"], f"{field}.issuer")
    if ("identity" in item) == ("identityRegexp" in item):
        raise reader.fail(f"{field}.identity", "give exactly one of identity and identityRegexp")
    identity = reader.text(item["identity"], f"{field}.identity") if "identity" in item else None
    pattern = reader.text(item["identityRegexp"], f"{field}.identityRegexp") if "identityRegexp" in item else None
    if pattern is not None:
        from mirror.supplychain.keyless import IdentityRule, check_identity_rule

        try:
            check_identity_rule(IdentityRule(issuer, identity_regexp=pattern), f"{field}.identityRegexp")
        except UsageError as exc:
            message = exc.message.removeprefix(f"{field}.identityRegexp: ")
            raise reader.fail(f"{field}.identityRegexp", message, hint=exc.hint) from exc
    if "trustedRoot" in item:
        trusted_root = reader.file(item["trustedRoot"], f"{field}.trustedRoot")
    return VerifyRule(
        f"{reader.path}: {field}",
        match,
        issuer=issuer,
        identity=identity,
        identity_regexp=pattern,
        trusted_root=trusted_root,
    )


# Where the `sigstore` package keeps the public-good instance's trusted root as of its release (a copy it ships
# to bootstrap TUF). tests/unit/test_verify_rules.py reads it, so an upgrade that moves it fails there.
_SHIPPED_ROOT = ("_store", "https%3A%2F%2Ftuf-repo-cdn.sigstore.dev", "trusted_root.json")


def shipped_trusted_root() -> Path | None:
    """The public-good Sigstore trusted root the installed `sigstore` package ships; None when there is none.

    Found without importing sigstore (every MirrorSet is read through here)."""
    spec = importlib.util.find_spec("sigstore")
    for location in (spec.submodule_search_locations or []) if spec else []:
        path = Path(location).joinpath(*_SHIPPED_ROOT)
        if path.is_file():
            return path
    return None


def parse_rules(
    value: Any,
    path: Path,
    field: str,
    *,
    with_match: bool,
    trusted_root: Path | None,
    root_required: bool,
    root_field: str,
) -> tuple[VerifyRule, ...]:
    """The rules at `field` of the file `path` (None: no rules); every error names the file and the field.

    trusted_root: the file-level trustedRoot, which keyless rules without their own take. root_required: a keyless
    rule must end up with one (the MirrorSet's); otherwise (the policy's) the bundle's carried root is used.
    """
    if value is None:
        return ()
    reader = _Reader(path, field)
    if not isinstance(value, list):
        raise reader.fail(field, "expected a list of rules: {match, key} or {match, issuer, identity}")
    rules = tuple(
        _rule(reader, item, f"{field}[{i}]", with_match=with_match, trusted_root=trusted_root)
        for i, item in enumerate(value)
    )
    shipped = (
        shipped_trusted_root() if root_required and any(r.keyless and r.trusted_root is None for r in rules) else None
    )
    if shipped is not None:  # Sigstore's public-good instance, as of the sigstore package's release
        rules = tuple(dataclasses.replace(r, trusted_root=r.trusted_root or shipped) if r.keyless else r for r in rules)
    for i, rule in enumerate(rules):
        if root_required and rule.keyless and rule.trusted_root is None:
            raise reader.fail(
                f"{field}[{i}].trustedRoot",
                f"a keyless rule needs a trusted root: give trustedRoot here or {root_field}",
                hint="a trusted_root.json (Fulcio CAs, Rekor and CT log keys), e.g. a TUF-updated copy of Sigstore's",
            )
    return rules
