"""Upstream signature rules: MirrorSet `spec.verify` and per-image `verify:`, TrustPolicy `requireSignatures:`.

Each rule is `{match, key}` (cosign key-based) or `{match, issuer, identity | identityRegexp}` (keyless); paths
are relative to the file; every mistake is exit 2 naming the file and the field.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from mirror.errors import ManifestError
from mirror.manifest.load import load_mirrorsets
from mirror.supplychain.rules import VerifyRule, rules_for, shipped_trusted_root
from mirror.trust.policy import load_policy
from tests.support import cosign
from tests.support.signedbundles import make_trust

HEADER = "apiVersion: mirror/v1\nkind: MirrorSet\nmetadata: {name: test}\n"
FLUX = "ghcr.io/fluxcd/source-controller:v1.4.1"


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    (tmp_path / "keys").mkdir()
    return cosign.write_public_key(cosign.generate_key(), tmp_path / "keys" / "fluxcd.pub")


@pytest.fixture
def root_file(tmp_path: Path) -> Path:
    path = tmp_path / "trusted_root.json"
    path.write_text('{"mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1"}')
    return path


def mirrorset(tmp_path: Path, spec: str) -> Path:
    path = tmp_path / "set.yaml"
    path.write_text(HEADER + "spec:\n" + textwrap.indent(textwrap.dedent(spec), "  "))
    return path


def refusal(path: Path) -> str:
    with pytest.raises(ManifestError) as caught:
        load_mirrorsets([path])
    assert caught.value.exit_code == 2
    assert str(path) in str(caught.value)
    return str(caught.value)


def test_a_key_rule_loads_the_key_relative_to_the_mirrorset(tmp_path, key_file):
    path = mirrorset(tmp_path, 'images: [nginx]\nverify:\n  - {match: "ghcr.io/fluxcd/*", key: keys/fluxcd.pub}\n')
    [rule] = load_mirrorsets([path])[0].verify
    assert rule.match == "ghcr.io/fluxcd/*"
    assert rule.key is not None and rule.key.source == str(key_file)
    assert rule.origin == f"{path}: spec.verify[0]"


def test_a_keyless_rule_takes_the_trusted_root_of_the_mirrorset(tmp_path, root_file):
    path = mirrorset(
        tmp_path,
        """\
        images: [nginx]
        trustedRoot: trusted_root.json
        verify:
          - {match: "ghcr.io/*", issuer: "https://token.actions.githubusercontent.com",
             identityRegexp: "^https://github.com/stefanprodan/"}
        """,
    )
    [rule] = load_mirrorsets([path])[0].verify
    assert (rule.issuer, rule.identity, rule.identity_regexp) == (
        "https://token.actions.githubusercontent.com",
        None,
        "^https://github.com/stefanprodan/",
    )
    assert rule.trusted_root == root_file


def test_a_rule_may_name_its_own_trusted_root(tmp_path, root_file):
    other = tmp_path / "other_root.json"
    other.write_text("{}")
    path = mirrorset(
        tmp_path,
        """\
        images: [nginx]
        trustedRoot: trusted_root.json
        verify: [{match: "*", issuer: "https://issuer", identity: "ci@example.com", trustedRoot: other_root.json}]
        """,
    )
    assert load_mirrorsets([path])[0].verify[0].trusted_root == other


def test_a_keyless_rule_without_a_trusted_root_takes_sigstores_public_root_shipped_with_the_sigstore_package(
    tmp_path,
):
    from mirror.supplychain.keyless import load_trusted_root

    path = mirrorset(tmp_path, 'images: [nginx]\nverify: [{match: "*", issuer: "https://i", identity: "me"}]\n')
    [rule] = load_mirrorsets([path])[0].verify
    assert rule.trusted_root is not None and rule.trusted_root == shipped_trusted_root()
    load_trusted_root(rule.trusted_root.read_bytes(), str(rule.trusted_root))  # a real trusted root


def test_without_the_shipped_root_a_keyless_rule_needs_a_trusted_root(tmp_path, monkeypatch):
    monkeypatch.setattr("mirror.supplychain.rules.shipped_trusted_root", lambda: None)
    path = mirrorset(tmp_path, 'images: [nginx]\nverify: [{match: "*", issuer: "https://i", identity: "me"}]\n')
    assert "spec.verify[0].trustedRoot" in refusal(path)


def test_a_rule_without_match_is_refused(tmp_path, key_file):
    path = mirrorset(tmp_path, "images: [nginx]\nverify: [{key: keys/fluxcd.pub}]\n")
    assert "spec.verify[0].match" in refusal(path)


def test_a_rule_with_neither_key_nor_issuer_is_refused(tmp_path):
    path = mirrorset(tmp_path, 'images: [nginx]\nverify: [{match: "*"}]\n')
    assert "spec.verify[0]" in refusal(path)


def test_a_rule_with_both_key_and_issuer_is_refused(tmp_path, key_file):
    path = mirrorset(
        tmp_path, 'images: [nginx]\nverify: [{match: "*", key: keys/fluxcd.pub, issuer: "https://i", identity: x}]\n'
    )
    assert "spec.verify[0]" in refusal(path)


def test_a_keyless_rule_needs_exactly_one_of_identity_and_identity_regexp(tmp_path, root_file):
    both = 'verify: [{match: "*", issuer: "https://i", identity: x, identityRegexp: "^x$"}]\n'
    neither = 'verify: [{match: "*", issuer: "https://i"}]\n'
    for spec in (both, neither):
        path = mirrorset(tmp_path, "images: [nginx]\ntrustedRoot: trusted_root.json\n" + spec)
        assert "spec.verify[0].identity" in refusal(path)


def test_an_identity_regexp_that_re2_cannot_compile_is_refused(tmp_path, root_file):
    path = mirrorset(
        tmp_path,
        'images: [nginx]\ntrustedRoot: trusted_root.json\nverify: [{match: "*", issuer: "https://i", '
        'identityRegexp: "(a)\\\\1"}]\n',
    )
    assert "spec.verify[0].identityRegexp" in refusal(path)


def test_a_missing_key_file_is_refused_naming_the_field(tmp_path):
    path = mirrorset(tmp_path, 'images: [nginx]\nverify: [{match: "*", key: keys/missing.pub}]\n')
    assert "spec.verify[0].key" in refusal(path)


def test_a_key_that_is_not_a_public_key_is_refused_naming_the_field(tmp_path):
    (tmp_path / "junk.pub").write_text("junk")
    path = mirrorset(tmp_path, 'images: [nginx]\nverify: [{match: "*", key: junk.pub}]\n')
    assert "spec.verify[0].key" in refusal(path)


def test_an_unknown_field_in_a_rule_is_refused(tmp_path, key_file):
    path = mirrorset(tmp_path, 'images: [nginx]\nverify: [{match: "*", key: keys/fluxcd.pub, keys: x}]\n')
    assert "spec.verify[0].keys" in refusal(path)


def test_a_trusted_root_on_a_key_rule_is_refused(tmp_path, key_file, root_file):
    path = mirrorset(
        tmp_path, 'images: [nginx]\nverify: [{match: "*", key: keys/fluxcd.pub, trustedRoot: trusted_root.json}]\n'
    )
    assert "spec.verify[0].trustedRoot" in refusal(path)


def test_a_missing_trusted_root_file_is_refused(tmp_path):
    path = mirrorset(tmp_path, "images: [nginx]\ntrustedRoot: nowhere.json\n")
    assert "spec.trustedRoot" in refusal(path)


def test_verify_must_be_a_list(tmp_path):
    path = mirrorset(tmp_path, "images: [nginx]\nverify: {match: x}\n")
    assert "spec.verify" in refusal(path)


def test_an_image_entry_takes_rules_of_its_own_without_match(tmp_path, key_file):
    path = mirrorset(tmp_path, "images:\n  - {ref: nginx, verify: [{key: keys/fluxcd.pub}]}\n")
    [image] = load_mirrorsets([path])[0].images
    assert image.verify is not None
    [rule] = image.verify
    assert rule.match is None
    assert rule.origin == f"{path}: spec.images[0].verify[0]"


def test_an_image_rule_with_match_is_refused(tmp_path, key_file):
    path = mirrorset(tmp_path, 'images:\n  - {ref: nginx, verify: [{match: "*", key: keys/fluxcd.pub}]}\n')
    assert "spec.images[0].verify[0].match" in refusal(path)


def test_an_image_listed_twice_with_other_rules_is_refused(tmp_path, key_file):
    path = mirrorset(tmp_path, "images:\n  - {ref: nginx, verify: []}\n  - nginx\n")
    assert "spec.images[1]" in refusal(path)


# --- which rules apply to an image ------------------------------------------------------------------------------


def rule(match: str | None, origin: str = "set.yaml: spec.verify[0]") -> VerifyRule:
    return VerifyRule(origin=origin, match=match, issuer="https://i", identity="me", trusted_root=Path("r.json"))


def test_a_glob_matches_across_path_segments_as_allowed_sources_do():
    assert rule("ghcr.io/fluxcd/*").matches(FLUX)
    assert not rule("ghcr.io/fluxcd/*").matches("ghcr.io/other/app:1")
    assert not rule("GHCR.io/fluxcd/*").matches(FLUX)  # case matters


def test_every_spec_rule_whose_glob_matches_applies():
    rules = (rule("ghcr.io/*", "a"), rule("docker.io/*", "b"), rule("ghcr.io/fluxcd/*", "c"))
    assert [r.origin for r in rules_for(FLUX, rules, None)] == ["a", "c"]


def test_an_image_s_own_rules_replace_the_spec_rules():
    own = (rule(None, "own"),)
    assert [r.origin for r in rules_for(FLUX, (rule("*", "spec"),), own)] == ["own"]


def test_an_empty_list_of_its_own_exempts_an_image():
    assert rules_for(FLUX, (rule("*", "spec"),), ()) == ()


# --- the trust policy ---------------------------------------------------------------------------------------------


def policy_with(tmp_path: Path, **fields: object) -> Path:
    trust = make_trust(tmp_path / "trust")
    body = json.loads(trust.policy.read_text())
    body.update(fields)
    trust.policy.write_text(json.dumps(body))
    return trust.policy


def test_the_policy_requires_signatures_with_rules_of_the_same_shape(tmp_path):
    (tmp_path / "trust").mkdir()
    cosign.write_public_key(cosign.generate_key(), tmp_path / "trust" / "upstream.pub")
    path = policy_with(tmp_path, requireSignatures=[{"match": "registry.example/*", "key": "upstream.pub"}])
    [required] = load_policy(path).require_signatures
    assert required.match == "registry.example/*"
    assert required.origin == f"{path}: requireSignatures[0]"


def test_a_policy_rule_without_match_is_refused(tmp_path):
    path = policy_with(tmp_path, requireSignatures=[{"issuer": "https://i", "identity": "me"}])
    with pytest.raises(ManifestError, match=r"requireSignatures\[0\]\.match"):
        load_policy(path)


def test_a_policy_keyless_rule_takes_the_policy_s_trusted_root(tmp_path):
    (tmp_path / "trust").mkdir()
    (tmp_path / "trust" / "root.json").write_text("{}")
    path = policy_with(
        tmp_path, trustedRoot="root.json", requireSignatures=[{"match": "*", "issuer": "https://i", "identity": "me"}]
    )
    policy = load_policy(path)
    assert policy.trusted_root == tmp_path / "trust" / "root.json"
    assert policy.require_signatures[0].trusted_root == tmp_path / "trust" / "root.json"


def test_a_policy_keyless_rule_without_a_trusted_root_leaves_it_to_the_bundle(tmp_path):
    path = policy_with(tmp_path, requireSignatures=[{"match": "*", "issuer": "https://i", "identity": "me"}])
    assert load_policy(path).require_signatures[0].trusted_root is None


def test_require_signatures_must_be_a_list(tmp_path):
    path = policy_with(tmp_path, requireSignatures={"match": "*"})
    with pytest.raises(ManifestError, match="requireSignatures"):
        load_policy(path)
