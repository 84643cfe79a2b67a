"""The trust policy loads strictly: every doubt is exit 2 naming the field; paths are relative to the policy."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from mirror.errors import ManifestError, UsageError
from mirror.trust.policy import DEFAULT_MAX_SEQUENCE_GAP, load_policy


def write_pub(path: Path, private: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(
        private.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return path


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A policy directory with two collector keys and two approver keys under keys/."""
    root = tmp_path / "site"
    write_pub(root / "keys" / "collector-1.pub", ec.generate_private_key(ec.SECP256R1()))
    write_pub(root / "keys" / "collector-2.pub", ed25519.Ed25519PrivateKey.generate())
    write_pub(root / "keys" / "officer-1.pub", ec.generate_private_key(ec.SECP256R1()))
    write_pub(root / "keys" / "officer-2.pub", ec.generate_private_key(ec.SECP256R1()))
    return root


def policy_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "mirror/v1",
        "kind": "TrustPolicy",
        "collectors": {"keys": ["keys/collector-1.pub", "keys/collector-2.pub"], "threshold": 1},
        "approvers": {"keys": ["keys/officer-1.pub", "keys/officer-2.pub"], "threshold": 2},
        "maxAge": "14d",
        "allowedSources": ["registry.example/*"],
        "stateFile": "state/trust.json",
        "maxSequenceGap": 50,
    }
    for name, value in changes.items():
        if value is DELETE:
            del body[name]
        else:
            body[name] = value
    return body


DELETE = object()


def write_policy(site: Path, body: dict[str, Any] | str) -> Path:
    path = site / "policy.yaml"
    path.write_text(body if isinstance(body, str) else yaml.safe_dump(body, sort_keys=False))
    return path


def key_id(path: Path) -> str:
    key = serialization.load_pem_public_key(path.read_bytes())
    return hashlib.sha256(
        key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    ).hexdigest()


def refusal(site: Path, body: dict[str, Any] | str) -> UsageError:
    path = write_policy(site, body)
    with pytest.raises(UsageError) as caught:
        load_policy(path)
    assert caught.value.exit_code == 2
    return caught.value


def field_refused(site: Path, body: dict[str, Any] | str) -> str:
    error = refusal(site, body)
    assert isinstance(error, ManifestError)
    assert error.field in str(error)
    return error.field


# --- a valid policy ---------------------------------------------------------------------------------------


def test_valid_policy_loads_keys_relative_to_the_policy_file(
    site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # relative to the policy, not to the working directory
    policy = load_policy(write_policy(site, policy_body()))
    assert [k.key_id for k in policy.collectors.keys] == [
        key_id(site / "keys" / "collector-1.pub"),
        key_id(site / "keys" / "collector-2.pub"),
    ]
    assert [k.key_id for k in policy.approvers.keys] == [
        key_id(site / "keys" / "officer-1.pub"),
        key_id(site / "keys" / "officer-2.pub"),
    ]


def test_valid_policy_reads_thresholds_age_sources_and_gap(site: Path) -> None:
    policy = load_policy(write_policy(site, policy_body()))
    assert (policy.collectors.threshold, policy.approvers.threshold) == (1, 2)
    assert policy.max_age == dt.timedelta(days=14)
    assert policy.allowed_sources == ("registry.example/*",)
    assert policy.max_sequence_gap == 50


def test_state_file_is_relative_to_the_policy_file(site: Path) -> None:
    policy = load_policy(write_policy(site, policy_body()))
    assert policy.state_file == site / "state" / "trust.json"


def test_approvers_omitted_means_threshold_zero(site: Path) -> None:
    policy = load_policy(write_policy(site, policy_body(approvers=DELETE)))
    assert (policy.approvers.keys, policy.approvers.threshold) == ((), 0)


def test_optional_fields_omitted_take_their_defaults(site: Path) -> None:
    body = policy_body(maxAge=DELETE, allowedSources=DELETE, maxSequenceGap=DELETE)
    policy = load_policy(write_policy(site, body))
    assert (policy.max_age, policy.allowed_sources, policy.max_sequence_gap) == (None, None, DEFAULT_MAX_SEQUENCE_GAP)


@pytest.mark.parametrize(("text", "expected"), [("30s", 30), ("30m", 1800), ("12h", 43200), ("2w", 1209600)])
def test_max_age_units(site: Path, text: str, expected: int) -> None:
    assert load_policy(write_policy(site, policy_body(maxAge=text))).max_age == dt.timedelta(seconds=expected)


# --- refusals, each naming its field ----------------------------------------------------------------------


def test_unknown_top_level_field_is_named(site: Path) -> None:
    assert field_refused(site, policy_body(approver={"keys": [], "threshold": 0})) == "approver"


def test_unknown_role_field_is_named(site: Path) -> None:
    body = policy_body(collectors={"keys": ["keys/collector-1.pub"], "threshold": 1, "min": 1})
    assert field_refused(site, body) == "collectors.min"


def test_wrong_kind_is_refused(site: Path) -> None:
    assert field_refused(site, policy_body(kind="MirrorSet")) == "kind"


def test_wrong_api_version_is_refused(site: Path) -> None:
    assert field_refused(site, policy_body(apiVersion="mirror/v2")) == "kind"


def test_same_public_key_under_two_names_is_refused(site: Path) -> None:
    shutil.copy(site / "keys" / "collector-1.pub", site / "keys" / "collector-1-copy.pub")
    body = policy_body(collectors={"keys": ["keys/collector-1.pub", "keys/collector-1-copy.pub"], "threshold": 2})
    assert field_refused(site, body) == "collectors.keys[1]"


def test_same_key_file_listed_twice_is_refused(site: Path) -> None:
    body = policy_body(approvers={"keys": ["keys/officer-1.pub", "keys/officer-1.pub"], "threshold": 2})
    assert field_refused(site, body) == "approvers.keys[1]"


def test_threshold_above_the_number_of_keys_is_refused(site: Path) -> None:
    body = policy_body(approvers={"keys": ["keys/officer-1.pub", "keys/officer-2.pub"], "threshold": 3})
    assert field_refused(site, body) == "approvers.threshold"


def test_collector_threshold_zero_is_refused(site: Path) -> None:
    body = policy_body(collectors={"keys": ["keys/collector-1.pub"], "threshold": 0})
    assert field_refused(site, body) == "collectors.threshold"


@pytest.mark.parametrize("threshold", [True, "1", 1.0, -1, None])
def test_threshold_that_is_not_a_positive_integer_is_refused(site: Path, threshold: Any) -> None:
    body = policy_body(collectors={"keys": ["keys/collector-1.pub"], "threshold": threshold})
    assert field_refused(site, body) == "collectors.threshold"


def test_collectors_missing_is_refused(site: Path) -> None:
    assert field_refused(site, policy_body(collectors=DELETE)) == "collectors"


def test_role_keys_not_a_list_is_refused(site: Path) -> None:
    body = policy_body(collectors={"keys": "keys/collector-1.pub", "threshold": 1})
    assert field_refused(site, body) == "collectors.keys"


def test_key_that_is_both_collector_and_approver_is_refused(site: Path) -> None:
    body = policy_body(approvers={"keys": ["keys/officer-1.pub", "keys/collector-2.pub"], "threshold": 1})
    assert field_refused(site, body) == "approvers.keys"


def test_same_key_copied_into_both_roles_is_refused(site: Path) -> None:
    shutil.copy(site / "keys" / "collector-1.pub", site / "keys" / "officer-3.pub")
    body = policy_body(approvers={"keys": ["keys/officer-3.pub"], "threshold": 1})
    assert field_refused(site, body) == "approvers.keys"


def test_missing_state_file_is_refused(site: Path) -> None:
    assert field_refused(site, policy_body(stateFile=DELETE)) == "stateFile"


def test_empty_state_file_is_refused(site: Path) -> None:
    assert field_refused(site, policy_body(stateFile="")) == "stateFile"


@pytest.mark.parametrize("max_age", ["2x", "0d", 14, "14", "d", "-1d", "1.5d", "14 d", "14D"])
def test_bad_max_age_is_refused(site: Path, max_age: Any) -> None:
    assert field_refused(site, policy_body(maxAge=max_age)) == "maxAge"


def test_max_age_with_non_ascii_digits_is_refused(site: Path) -> None:
    # "１４d" (fullwidth digits) must not be read as 14 days.
    assert field_refused(site, policy_body(maxAge="１４d")) == "maxAge"


@pytest.mark.parametrize("sources", ["registry.example/*", {"a": "b"}, [""], [1]])
def test_allowed_sources_not_a_list_of_patterns_is_refused(site: Path, sources: Any) -> None:
    assert field_refused(site, policy_body(allowedSources=sources)) == "allowedSources"


@pytest.mark.parametrize("gap", [0, -5, True, "10", 1.5])
def test_max_sequence_gap_not_a_positive_integer_is_refused(site: Path, gap: Any) -> None:
    assert field_refused(site, policy_body(maxSequenceGap=gap)) == "maxSequenceGap"


def test_unreadable_key_file_is_named(site: Path) -> None:
    body = policy_body(collectors={"keys": ["keys/collector-1.pub", "keys/absent.pub"], "threshold": 1})
    assert field_refused(site, body) == "collectors.keys[1]"


def test_key_file_that_is_not_a_public_key_is_named(site: Path) -> None:
    (site / "keys" / "notes.pub").write_text("hello\n")
    body = policy_body(collectors={"keys": ["keys/notes.pub"], "threshold": 1})
    assert field_refused(site, body) == "collectors.keys[0]"


def test_duplicate_yaml_key_is_refused(site: Path) -> None:
    text = yaml.safe_dump(policy_body(), sort_keys=False) + "maxSequenceGap: 100000\n"
    error = refusal(site, text)
    assert "maxSequenceGap" in str(error)


def test_two_yaml_documents_are_refused(site: Path) -> None:
    text = yaml.safe_dump(policy_body(), sort_keys=False)
    refusal(site, text + "---\n" + text)


def test_policy_that_is_not_a_mapping_is_refused(site: Path) -> None:
    refusal(site, "- collectors\n")


def test_missing_policy_file_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as caught:
        load_policy(tmp_path / "absent.yaml")
    assert caught.value.exit_code == 2


def test_a_policy_that_is_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "policy.yaml"
    os.mkfifo(fifo)
    with pytest.raises(UsageError, match="not a regular file"):
        load_policy(fifo)
