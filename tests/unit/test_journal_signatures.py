"""Importer signatures on journal entries: DSSE signatures over the canonical entry, checked against the policy."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from securesystemslib.dsse import Envelope as SslibEnvelope
from securesystemslib.signer import SSlibKey

from mirror.errors import ManifestError
from mirror.limits import DEFAULT_LIMITS
from mirror.trust.journal import ENTRY_PAYLOAD_TYPE
from mirror.trust.journal_read import check_journal
from mirror.trust.keys import Signer, generate, load_signer
from mirror.trust.policy import Importers, load_policy
from mirror.trust.state import JournalHead, load_state, save_state
from tests.support.journals import append_entry, import_fields, lines, rewrite, write_journal


@pytest.fixture
def importer(tmp_path: Path) -> Signer:
    key, _, _ = generate(str(tmp_path / "importer"), env={})
    return load_signer(key, env={})


@pytest.fixture
def stranger(tmp_path: Path) -> Signer:
    key, _, _ = generate(str(tmp_path / "stranger"), env={})
    return load_signer(key, env={})


def codes(state_file: Path, importers: Importers) -> list[str]:
    return [p.code for p in check_journal(state_file, importers=importers).problems]


def _rechain(state_file: Path, entries: list[dict[str, object]]) -> None:
    """An attacker's rewrite: entries re-hashed into a chain, and the head set to match."""
    previous: bytes | None = None
    new_lines = []
    for entry in entries:
        entry["prev"] = None if previous is None else "sha256:" + hashlib.sha256(previous).hexdigest()
        previous = json.dumps(entry, sort_keys=True, separators=(",", ":")).encode() + b"\n"
        new_lines.append(previous)
    rewrite(state_file, new_lines)
    state = load_state(state_file)
    assert previous is not None
    state.journal = JournalHead(len(new_lines), hashlib.sha256(previous).hexdigest())
    save_state(state_file, state)


def test_every_entry_is_signed_by_the_importer_key_and_verifies(tmp_path: Path, importer: Signer) -> None:
    state_file = write_journal(tmp_path, 3, signer=importer)
    for line in lines(state_file):
        assert json.loads(line)["signature"]["keyid"] == importer.public.key_id
    assert codes(state_file, Importers((importer.public,))) == []


def test_a_signed_entry_is_a_dsse_envelope_securesystemslib_verifies(tmp_path: Path, importer: Signer) -> None:
    state_file = write_journal(tmp_path, 1, signer=importer)
    entry = json.loads(lines(state_file)[0])
    signature = entry.pop("signature")
    body = json.dumps(entry, sort_keys=True, separators=(",", ":")).encode()
    envelope = SslibEnvelope.from_dict(
        {"payload": base64.b64encode(body).decode(), "payloadType": ENTRY_PAYLOAD_TYPE, "signatures": [signature]}
    )
    public = importer.private.public_key()
    pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    key = SSlibKey(importer.public.key_id, "ecdsa", "ecdsa-sha2-nistp256", {"public": pem.decode()})
    assert envelope.verify([key], threshold=1) == {importer.public.key_id: key}


def test_an_entry_signed_by_a_key_the_policy_does_not_list_is_refused(
    tmp_path: Path, importer: Signer, stranger: Signer
) -> None:
    state_file = write_journal(tmp_path, 2, signer=stranger)
    assert codes(state_file, Importers((importer.public,))) == ["JOURNAL_SIGNATURE_INVALID"] * 2


def test_a_rewritten_signed_journal_with_a_matching_head_is_found_by_its_signatures(
    tmp_path: Path, importer: Signer
) -> None:
    state_file = write_journal(tmp_path, 3, signer=importer)
    entries = [json.loads(line) for line in lines(state_file)]
    entries[1]["bundleId"] = "night-forged"
    _rechain(state_file, entries)
    assert check_journal(state_file).problems == []  # the chain alone cannot tell
    problems = check_journal(state_file, importers=Importers((importer.public,))).problems
    # The entry edited, and the next one, whose prev changed with it.
    assert [(p.code, p.message.split(":")[0]) for p in problems] == [
        ("JOURNAL_SIGNATURE_INVALID", "entry 2"),
        ("JOURNAL_SIGNATURE_INVALID", "entry 3"),
    ]


def test_a_forged_signature_under_the_importer_key_id_is_refused(
    tmp_path: Path, importer: Signer, stranger: Signer
) -> None:
    state_file = write_journal(tmp_path, 1, signer=stranger)
    [entry] = [json.loads(line) for line in lines(state_file)]
    entry["signature"]["keyid"] = importer.public.key_id  # the key id is only a hint
    _rechain(state_file, [entry])
    assert codes(state_file, Importers((importer.public,))) == ["JOURNAL_SIGNATURE_INVALID"]


def test_signatures_stripped_from_a_rewritten_journal_are_found(tmp_path: Path, importer: Signer) -> None:
    state_file = write_journal(tmp_path, 2, signer=importer)
    entries = [json.loads(line) for line in lines(state_file)]
    for entry in entries:
        del entry["signature"]
    _rechain(state_file, entries)
    assert codes(state_file, Importers((importer.public,))) == ["JOURNAL_UNSIGNED"] * 2


def test_entries_before_from_entry_may_be_unsigned(tmp_path: Path, importer: Signer) -> None:
    state_file = write_journal(tmp_path, 2)
    append_entry(state_file, 3, signer=importer)
    assert codes(state_file, Importers((importer.public,), from_entry=3)) == []
    assert codes(state_file, Importers((importer.public,), from_entry=2)) == ["JOURNAL_UNSIGNED"]


def test_a_malformed_signature_field_is_an_invalid_entry(tmp_path: Path, importer: Signer) -> None:
    state_file = write_journal(tmp_path, 1, signer=importer)
    [entry] = [json.loads(line) for line in lines(state_file)]
    entry["signature"] = {"keyid": importer.public.key_id, "sig": "!!not base64!!"}
    _rechain(state_file, [entry])
    assert codes(state_file, Importers((importer.public,))) == ["JOURNAL_ENTRY_INVALID"]


def test_without_importer_keys_signatures_are_not_required(tmp_path: Path, importer: Signer) -> None:
    state_file = write_journal(tmp_path, 1, signer=importer)
    assert check_journal(state_file).problems == []
    assert import_fields(1)["result"] == "imported"


# --- the policy field ----------------------------------------------------------------------------------------


def _policy(tmp_path: Path, importers: object) -> Path:
    generate(str(tmp_path / "collector"), env={})
    body = {
        "apiVersion": "mirror/v1",
        "kind": "TrustPolicy",
        "collectors": {"keys": ["collector.pub"], "threshold": 1},
        "stateFile": "state.json",
        "importers": importers,
    }
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(body))
    return path


def test_the_policy_lists_importer_keys_and_from_which_entry_they_sign(tmp_path: Path, importer: Signer) -> None:
    policy = load_policy(_policy(tmp_path, {"keys": ["importer.pub"], "fromEntry": 4}))
    assert policy.importers == Importers((importer.public,), from_entry=4)


def test_a_policy_without_importers_has_none(tmp_path: Path) -> None:
    path = _policy(tmp_path, None)
    body = yaml.safe_load(path.read_text())
    del body["importers"]
    path.write_text(yaml.safe_dump(body))
    assert load_policy(path).importers is None


@pytest.mark.parametrize(
    "importers",
    [{"keys": []}, {"keys": ["importer.pub"], "fromEntry": 0}, {"keys": ["importer.pub"], "threshold": 1}, "x"],
    ids=["no-keys", "from-zero", "unknown-field", "not-a-mapping"],
)
def test_a_malformed_importers_field_is_a_policy_error(tmp_path: Path, importer: Signer, importers: object) -> None:
    with pytest.raises(ManifestError, match="importers"):
        load_policy(_policy(tmp_path, importers))


def test_an_importer_key_that_is_also_a_collector_key_is_a_policy_error(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="importers"):
        load_policy(_policy(tmp_path, {"keys": ["collector.pub"]}))


def test_signature_problems_are_capped_like_every_list_of_problems(tmp_path: Path, importer: Signer) -> None:
    state_file = write_journal(tmp_path, 5)
    few = replace(DEFAULT_LIMITS, max_problems=3)
    problems = check_journal(state_file, limits=few, importers=Importers((importer.public,))).problems
    assert [p.code for p in problems] == ["JOURNAL_UNSIGNED"] * 3 + ["PROBLEMS_OMITTED"]
    assert problems[-1].omitted == (("JOURNAL_UNSIGNED", 2),)
