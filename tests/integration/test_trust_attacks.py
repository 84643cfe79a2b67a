"""Attacks on signed bundles, approvals and the trust policy (the threat model's table, rows 1-19).

Every refusal is checked the same way: the exit code, the stable problem code(s) printed as `[CODE]` lines, an
empty namespace on the internal registry, the trust state's rollback record left exactly as it was, and the
refusal journaled with its codes. Bundles are collected and approved once per module and copied per test;
attacks are crafted on the copies.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import json
import re
import shutil
import tarfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from typer.testing import CliRunner

from mirror.bundle.signatures import add_envelope
from mirror.cli import app
from mirror.errors import VerificationError
from mirror.importer.run import import_bundle
from mirror.trust.check import check_trust
from mirror.trust.dsse import sign_envelope
from mirror.trust.keys import PASSWORD_VARIABLE, Signer, load_signer
from mirror.trust.sign import sign_approval, sign_collection
from mirror.trust.statement import Approval, Collection, approval_statement, collection_statement, parse_time
from tests.conftest import internal_repositories
from tests.support.journals import last_entry, rollback_record
from tests.support.mirrorsets import write_mirrorset
from tests.support.services import UPSTREAM_REGISTRY

UPSTREAM_SETTINGS = {UPSTREAM_REGISTRY: {"plainHTTP": True}}
OFFICERS = ("officer-a", "officer-b", "officer-c")
PASSWORD = "correct horse battery staple"
PROBLEM_LINE = re.compile(r"^\s+- \[([A-Z_]+)\] ", re.MULTILINE)
DROP = object()  # a policy field to leave out


# --- running mirror outside a test (module fixtures) ------------------------------------------------------------


def must(*args: object, env: dict[str, str | None] | None = None) -> Any:
    result = CliRunner().invoke(app, [str(a) for a in args], env=env, catch_exceptions=False)
    assert result.exit_code == 0, f"mirror {' '.join(map(str, args))}: {result.stderr}"
    return result


# --- keys and policies ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Keys:
    directory: Path
    ids: dict[str, str]

    def key(self, name: str) -> Path:
        return self.directory / f"{name}.key"

    def pub(self, name: str) -> Path:
        return self.directory / f"{name}.pub"

    def signer(self, name: str) -> Signer:
        return load_signer(self.key(name), env={})


def policy_document(keys: Keys, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "mirror/v1",
        "kind": "TrustPolicy",
        "collectors": {"keys": [str(keys.pub("collector"))], "threshold": 1},
        "approvers": {"keys": [str(keys.pub(name)) for name in OFFICERS], "threshold": 2},
        "maxAge": "14d",
        "allowedSources": [f"{UPSTREAM_REGISTRY}/fixtures/*"],
        "stateFile": "state.json",
    }
    for field, value in changes.items():
        if value is DROP:
            body.pop(field, None)
        else:
            body[field] = value
    return body


@dataclass(frozen=True)
class Trust:
    """The high side's trust directory of one test: its policies and the state file they share."""

    directory: Path
    keys: Keys

    def policy(self, name: str = "policy.yaml", **changes: Any) -> Path:
        path = self.directory / name
        path.write_text(yaml.safe_dump(policy_document(self.keys, **changes), sort_keys=False))
        return path

    @property
    def state(self) -> Path:
        return self.directory / "state.json"

    def rollback(self) -> dict[str, Any] | None:
        """The state file's rollback record; a refusal after the lock moves only the journal's head."""
        return rollback_record(self.state)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    """collector, officer-a/b (ECDSA P-256), officer-c (Ed25519), an attacker, and two password-protected keys."""
    directory = tmp_path_factory.mktemp("keys")
    plain: dict[str, str | None] = {PASSWORD_VARIABLE: None}
    ids = {}
    for name, options, env in [
        ("collector", [], plain),
        ("officer-a", [], plain),
        ("officer-b", [], plain),
        ("officer-c", ["--algorithm", "ed25519"], plain),
        ("attacker", [], plain),
        ("sealed-collector", [], {PASSWORD_VARIABLE: PASSWORD}),
        ("sealed-officer", [], {PASSWORD_VARIABLE: PASSWORD}),
    ]:
        ids[name] = must("keygen", directory / name, *options, env=env).stdout.split()[0]
    return Keys(directory, ids)


@pytest.fixture
def trust(tmp_path: Path, keys: Keys) -> Trust:
    directory = tmp_path / "trust"
    directory.mkdir()
    return Trust(directory, keys)


@pytest.fixture
def policy(trust: Trust) -> Path:
    return trust.policy()


# --- bundles, collected and approved once per module ------------------------------------------------------------


@pytest.fixture(scope="module")
def mirrorset(tmp_path_factory: pytest.TempPathFactory, upstream_images: dict[str, Any]) -> Path:
    work = tmp_path_factory.mktemp("mirrorset")
    return write_mirrorset(work / "m.yaml", [upstream_images["app_1"]["ref"]], registries=UPSTREAM_SETTINGS)


@pytest.fixture(scope="module")
def collected(tmp_path_factory: pytest.TempPathFactory, keys: Keys, mirrorset: Path) -> Callable[..., Path]:
    work = tmp_path_factory.mktemp("collected")
    approval_policy = work / "policy.yaml"
    approval_policy.write_text(yaml.safe_dump(policy_document(keys, stateFile="unused-state.json")))

    def collect(name: str, sequence: int, approvers: tuple[str, ...] = ()) -> Path:
        out = work / name
        must("collect", mirrorset, "-o", out, "--key", keys.key("collector"), "--sequence", sequence, "--quiet")
        for officer in approvers:
            must("approve", out, "--key", keys.key(officer), "--trust", approval_policy)
        return out

    return collect


@pytest.fixture(scope="module")
def signed_dir(collected: Callable[..., Path]) -> Path:
    """Sequence 1, signed by the collector only."""
    return collected("signed", 1)


@pytest.fixture(scope="module")
def approved_dir(signed_dir: Path, keys: Keys, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same bundle as signed_dir (same inventory), approved by officer-a and officer-b."""
    out = Path(shutil.copytree(signed_dir, tmp_path_factory.mktemp("approved") / "bundle"))
    for officer in ("officer-a", "officer-b"):
        must("approve", out, "--key", keys.key(officer), "--collector-key", keys.pub("collector"))
    return out


@pytest.fixture(scope="module")
def approved_tar(collected: Callable[..., Path]) -> Path:
    return collected("approved.tar", 1, ("officer-a", "officer-b"))


@pytest.fixture(scope="module")
def approved_seq2(collected: Callable[..., Path]) -> Path:
    return collected("seq2", 2, ("officer-a", "officer-c"))


@pytest.fixture(scope="module")
def approved_far(collected: Callable[..., Path]) -> Path:
    return collected("far", 2**40, ("officer-a", "officer-b"))


@pytest.fixture
def copy(tmp_path: Path) -> Callable[[Path], Path]:
    """A private copy of a module bundle, to attack."""

    def make(source: Path) -> Path:
        target = tmp_path / "work" / f"{uuid.uuid4().hex[:6]}-{source.name}"
        target.parent.mkdir(exist_ok=True)
        if source.is_dir():
            return Path(shutil.copytree(source, target))
        return Path(shutil.copy(source, target))

    return make


# --- running the high side --------------------------------------------------------------------------------------


@pytest.fixture
def attempt_import(mirror_cli, services, internal_env, internal_url) -> Callable[..., Any]:
    def run(bundle: Path, policy: Path | None, *extra: object, url: str | None = None) -> Any:
        trust = ["--trust", policy] if policy is not None else []
        return mirror_cli(
            "import",
            bundle,
            *trust,
            "--registry",
            url or internal_url,
            "--ca-file",
            services.ca_file,
            "--quiet",
            *extra,
            env=internal_env,
        )

    return run


@pytest.fixture
def second_target(services) -> tuple[str, Callable[[], list[str]]]:
    """Another empty namespace, for the second import of a test whose first import wrote to the first."""
    prefix = f"t{uuid.uuid4().hex[:10]}"
    return f"https://{services.internal}/{prefix}", lambda: internal_repositories(services, prefix)


@pytest.fixture
def verify_json(mirror_cli) -> Callable[[Path, Path], dict[str, Any]]:
    def run(bundle: Path, policy: Path) -> dict[str, Any]:
        result = mirror_cli("verify", bundle, "--trust", policy, "--json")
        assert result.exit_code == 3, result.stdout + result.stderr
        return result.json()

    return run


def problem_codes(stderr: str) -> set[str]:
    return set(PROBLEM_LINE.findall(stderr))


def assert_refused(
    result: Any,
    written: Callable[[], list[str]],
    trust: Trust,
    state_before: dict[str, Any] | None,
    codes: set[str] | None = None,
    exit_code: int = 3,
) -> None:
    """The contract of every refusal: exit code, stable codes, nothing on the registry, the state's rollback record
    untouched, and a refused bundle (exit 3; a bad policy, exit 2, is refused before the lock) journaled with its
    codes."""
    assert result.exit_code == exit_code, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    if codes is not None:
        assert problem_codes(result.stderr) == codes, result.stderr
    assert written() == []
    assert trust.rollback() == state_before
    if exit_code == 3:
        entry = last_entry(trust.state)
        assert entry is not None and (entry["result"], entry["exitCode"]) == ("refused", 3)
        if codes is not None:
            assert set(entry["problems"]) == codes


def status_of(report: dict[str, Any], file: str) -> str:
    return next(s["status"] for s in report["signatures"] if s["file"] == file)


# --- crafting -------------------------------------------------------------------------------------------------


def inventory_bytes(bundle: Path) -> bytes:
    if bundle.is_dir():
        return (bundle / "inventory.json").read_bytes()
    with tarfile.open(bundle) as tar:  # only reads; never extracts
        handle = tar.extractfile("inventory.json")
        assert handle is not None
        return handle.read()


def inventory_sha256(bundle: Path) -> str:
    return hashlib.sha256(inventory_bytes(bundle)).hexdigest()


def bundle_id(bundle: Path) -> str:
    return json.loads(inventory_bytes(bundle))["bundleId"]


def bundle_created(bundle: Path) -> dt.datetime:
    return parse_time(json.loads(inventory_bytes(bundle))["created"], "created")


def signature_files(bundle: Path) -> list[Path]:
    return sorted((bundle / "signatures").iterdir())


def envelope_of(bundle: Path, key_id: str) -> Path:
    """The one envelope whose keyid hint names this key."""
    (found,) = [
        path for path in signature_files(bundle) if json.loads(path.read_bytes())["signatures"][0]["keyid"] == key_id
    ]
    return found


def store(bundle: Path, raw: bytes) -> str:
    """Add an envelope as the bundle path mirror would give it: signatures/<sha256 of its bytes>.json."""
    return add_envelope(bundle, raw)


def rewrite_envelope(path: Path, edit: Callable[[dict[str, Any]], None]) -> str:
    """Edit an envelope's JSON, store it under its new name and remove the original."""
    body = json.loads(path.read_bytes())
    edit(body)
    path.unlink()
    return store(path.parent.parent, json.dumps(body, indent=1).encode())


def add_approval(bundle: Path, signer: Signer, *, comment: str = "") -> str:
    envelope = sign_approval(
        signer, inventory_sha256(bundle), bundle_id=bundle_id(bundle), comment=comment, now=dt.datetime.now(dt.UTC)
    )
    return store(bundle, envelope)


def resign_collection(
    bundle: Path, keys: Keys, *, created: dt.datetime, valid_for: dt.timedelta, sequence: int = 1
) -> str:
    """Replace the collector's envelope with one the collector key signs over other times or another sequence."""
    envelope_of(bundle, keys.ids["collector"]).unlink()
    envelope = sign_collection(
        keys.signer("collector"),
        inventory_bytes(bundle),
        bundle_id=bundle_id(bundle),
        collector="collector",
        sequence=sequence,
        created=created.replace(microsecond=0),
        valid_for=valid_for,
    )
    return store(bundle, envelope)


def collection_payload(bundle: Path, *, predicate_type: str | None = None) -> bytes:
    """The collector's statement for this bundle, valid now, optionally with another predicateType."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    collection = Collection(bundle_id(bundle), "collector", 1, now, now + dt.timedelta(days=30), None)
    payload = collection_statement(inventory_sha256(bundle), collection)
    if predicate_type is None:
        return payload
    body = json.loads(payload)
    body["predicateType"] = predicate_type
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def flip_bit(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def largest_blob(bundle: Path) -> Path:
    return max((bundle / "blobs" / "sha256").iterdir(), key=lambda p: p.stat().st_size)


def tar_member(name: str, size: int = 0, kind: bytes = tarfile.REGTYPE, **attrs: Any) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.type, info.mtime, info.mode = size, kind, 0, 0o644
    for key, value in attrs.items():
        setattr(info, key, value)
    return info


def append_to_tar(
    path: Path,
    name: str,
    data: bytes | None = b"",
    *,
    kind: bytes = tarfile.REGTYPE,
    fmt: int = tarfile.USTAR_FORMAT,
    **attrs: Any,
) -> None:
    """Append one member with tarfile (a crafting tool here, never a reader of bundles)."""
    info = tar_member(name, len(data) if data else 0, kind, **attrs)
    with tarfile.open(path, "a", format=fmt) as tar:
        tar.addfile(info, io.BytesIO(data) if data else None)


def tar_data_end(path: Path) -> int:
    """Where the end-of-archive marker starts: just after the last member's padded data."""
    with tarfile.open(path) as tar:
        tar.getmembers()
        return tar.offset


def snapshot(directory: Path) -> list[str]:
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*"))


# === happy path =================================================================================================


@pytest.mark.parametrize("form", ["directory", "tar"])
def test_two_of_three_approvals_import_and_record_the_sequence(
    form, approved_dir, approved_tar, copy, attempt_import, policy, trust, keys, written_repositories, target_prefix
):
    bundle = copy(approved_dir if form == "directory" else approved_tar)
    result = attempt_import(bundle, policy)
    assert result.exit_code == 0, result.stderr
    assert written_repositories() == [f"{target_prefix}/fixtures/app"]
    state = json.loads(trust.state.read_bytes())
    assert state["collectors"] == {keys.ids["collector"]: {"sequence": 1, "inventory": inventory_sha256(bundle)}}
    assert state["latestCreated"] == json.loads(inventory_bytes(bundle))["created"]


def test_importing_the_same_bundle_again_succeeds_and_keeps_the_state(
    approved_dir, copy, attempt_import, policy, trust, written_repositories, target_prefix
):
    bundle = copy(approved_dir)
    assert attempt_import(bundle, policy).exit_code == 0
    state = trust.rollback()
    again = attempt_import(bundle, policy)
    assert again.exit_code == 0, again.stderr
    assert trust.rollback() == state
    assert written_repositories() == [f"{target_prefix}/fixtures/app"]


# === tampered content and inventory (threats 1, 2, 18) ==========================================================


def test_flipped_bit_in_a_layer_is_a_file_digest_problem(
    approved_dir, copy, attempt_import, policy, trust, written_repositories
):
    bundle = copy(approved_dir)
    layer = largest_blob(bundle)
    flip_bit(layer, layer.stat().st_size // 2)
    result = attempt_import(bundle, policy)
    assert_refused(result, written_repositories, trust, None, {"FILE_DIGEST"})
    assert f"blobs/sha256/{layer.name}" in result.stderr


def test_flipped_bit_in_a_manifest_is_a_file_digest_problem(
    approved_dir, copy, attempt_import, policy, trust, written_repositories
):
    bundle = copy(approved_dir)
    digest = json.loads((bundle / "index.json").read_bytes())["manifests"][0]["digest"]
    manifest = bundle / "blobs" / "sha256" / digest.removeprefix("sha256:")
    flip_bit(manifest, manifest.read_bytes().index(b"sha256:") + 10)
    result = attempt_import(bundle, policy)
    assert_refused(result, written_repositories, trust, None, {"FILE_DIGEST"})
    assert manifest.name in result.stderr


def test_flipped_bit_in_the_inventory_breaks_every_signature(
    approved_dir, copy, attempt_import, policy, trust, written_repositories
):
    bundle = copy(approved_dir)
    inventory = bundle / "inventory.json"
    flip_bit(inventory, inventory.read_bytes().index(b'"tool":"mirror') + len(b'"tool":"'))  # mirror -> lirror
    assert json.loads(inventory.read_bytes())["tool"].startswith("lirror")  # still a valid inventory
    result = attempt_import(bundle, policy)
    assert_refused(
        result, written_repositories, trust, None, {"SUBJECT_MISMATCH", "COLLECTOR_THRESHOLD", "APPROVER_THRESHOLD"}
    )
    assert result.stderr.count("[SUBJECT_MISMATCH]") == 3


def test_a_file_changed_together_with_its_inventory_entry_breaks_every_signature(
    approved_dir, copy, attempt_import, policy, trust, written_repositories
):
    bundle = copy(approved_dir)
    index = json.loads((bundle / "index.json").read_bytes())
    index["annotations"] = {"org.example.injected": "yes"}
    raw_index = json.dumps(index, indent=1).encode() + b"\n"
    (bundle / "index.json").write_bytes(raw_index)
    inventory = json.loads((bundle / "inventory.json").read_bytes())
    record = next(f for f in inventory["files"] if f["path"] == "index.json")
    record.update(sha256=hashlib.sha256(raw_index).hexdigest(), size=len(raw_index))
    (bundle / "inventory.json").write_bytes(json.dumps(inventory, indent=1, sort_keys=True).encode() + b"\n")
    result = attempt_import(bundle, policy)
    assert_refused(
        result, written_repositories, trust, None, {"SUBJECT_MISMATCH", "COLLECTOR_THRESHOLD", "APPROVER_THRESHOLD"}
    )


def test_smuggled_extra_file_is_unlisted(approved_dir, copy, attempt_import, policy, trust, written_repositories):
    bundle = copy(approved_dir)
    (bundle / "blobs" / "sha256" / ("0" * 64)).write_bytes(b"smuggled")
    result = attempt_import(bundle, policy)
    assert_refused(result, written_repositories, trust, None, {"FILE_UNLISTED"})


def test_missing_file_is_reported(approved_dir, copy, attempt_import, policy, trust, written_repositories):
    bundle = copy(approved_dir)
    layer = largest_blob(bundle)
    layer.unlink()
    result = attempt_import(bundle, policy)
    assert_refused(result, written_repositories, trust, None, {"FILE_MISSING"})
    assert layer.name in result.stderr


@pytest.mark.parametrize(
    ("name", "code"),
    [(f"{'0' * 64}.json", "ENVELOPE_INVALID"), ("notes.txt", "FILE_UNLISTED")],
    ids=["valid-envelope-under-a-wrong-hash", "not-an-envelope-name"],
)
def test_extra_file_under_signatures_not_named_by_its_hash(
    name, code, approved_dir, copy, attempt_import, policy, trust, keys, written_repositories
):
    bundle = copy(approved_dir)
    shutil.copy(envelope_of(bundle, keys.ids["officer-a"]), bundle / "signatures" / name)
    result = attempt_import(bundle, policy)
    assert_refused(result, written_repositories, trust, None, {code})
    assert f"signatures/{name}" in result.stderr


# === envelopes: type confusion, re-serialisation, predicate bypass (threats 3, 4, 10) ===========================


def test_edited_payload_type_no_longer_verifies(
    approved_dir, copy, attempt_import, verify_json, policy, trust, keys, written_repositories
):
    bundle = copy(approved_dir)
    edited = rewrite_envelope(
        envelope_of(bundle, keys.ids["collector"]), lambda body: body.update(payloadType="application/json")
    )
    assert status_of(verify_json(bundle, policy), edited) == "untrusted"
    result = attempt_import(bundle, policy)
    assert_refused(result, written_repositories, trust, None, {"COLLECTOR_THRESHOLD"})


def test_validly_signed_other_payload_type_is_refused(
    approved_dir, copy, attempt_import, policy, trust, keys, written_repositories
):
    bundle = copy(approved_dir)
    envelope_of(bundle, keys.ids["collector"]).unlink()
    store(bundle, sign_envelope(collection_payload(bundle), keys.signer("collector"), "application/json"))
    result = attempt_import(bundle, policy)
    assert_refused(result, written_repositories, trust, None, {"PAYLOAD_TYPE", "COLLECTOR_THRESHOLD"})


def test_validly_signed_statement_with_another_predicate_type_is_refused(
    approved_dir, copy, attempt_import, policy, trust, keys, written_repositories
):
    bundle = copy(approved_dir)
    envelope_of(bundle, keys.ids["collector"]).unlink()
    payload = collection_payload(bundle, predicate_type="https://slsa.dev/provenance/v1")
    store(bundle, sign_envelope(payload, keys.signer("collector")))
    result = attempt_import(bundle, policy)
    assert_refused(result, written_repositories, trust, None, {"STATEMENT_INVALID", "COLLECTOR_THRESHOLD"})


def test_reserialised_payload_with_the_old_signature_does_not_verify(
    approved_dir, copy, attempt_import, verify_json, policy, trust, keys, written_repositories
):
    bundle = copy(approved_dir)

    def reserialise(body: dict[str, Any]) -> None:
        original = base64.b64decode(body["payload"])
        statement = json.loads(original)
        redone = json.dumps(dict(reversed(list(statement.items()))), indent=2).encode()
        assert redone != original and json.loads(redone) == statement
        body["payload"] = base64.b64encode(redone).decode()

    edited = rewrite_envelope(envelope_of(bundle, keys.ids["collector"]), reserialise)
    assert status_of(verify_json(bundle, policy), edited) == "untrusted"
    result = attempt_import(bundle, policy)
    assert_refused(result, written_repositories, trust, None, {"COLLECTOR_THRESHOLD"})


# === approvals: key ids, thresholds, roles, mix-and-match, encoding (threats 5, 6, 7, 8, 9, 11) ================


def test_attacker_approval_with_a_spoofed_officer_keyid_is_not_counted(
    approved_dir, copy, attempt_import, verify_json, policy, trust, keys, written_repositories
):
    bundle = copy(approved_dir)
    envelope_of(bundle, keys.ids["officer-a"]).unlink()
    approval = Approval(bundle_id(bundle), "approved", keys.ids["officer-a"], dt.datetime.now(dt.UTC), "lgtm")
    raw = sign_envelope(approval_statement(inventory_sha256(bundle), approval), keys.signer("attacker"))
    body = json.loads(raw)
    body["signatures"][0]["keyid"] = keys.ids["officer-a"]
    spoofed = store(bundle, json.dumps(body).encode())
    assert status_of(verify_json(bundle, policy), spoofed) == "untrusted"
    result = attempt_import(bundle, policy)
    assert_refused(result, written_repositories, trust, None, {"APPROVER_THRESHOLD"})
    assert "1 approval(s)" in result.stderr


def test_approving_twice_with_one_key_adds_nothing_and_counts_once(
    signed_dir, copy, mirror_cli, attempt_import, policy, trust, keys, written_repositories
):
    bundle = copy(signed_dir)
    assert mirror_cli("approve", bundle, "--key", keys.key("officer-a"), "--trust", policy).exit_code == 0
    files = signature_files(bundle)
    again = mirror_cli("approve", bundle, "--key", keys.key("officer-a"), "--trust", policy, "--comment", "again")
    assert again.exit_code == 0, again.stderr
    assert "already approved" in again.stdout
    assert signature_files(bundle) == files
    result = attempt_import(bundle, policy)
    assert_refused(result, written_repositories, trust, None, {"APPROVER_THRESHOLD"})
    assert "1 approval(s) from distinct approver keys" in result.stderr


def test_second_envelope_from_the_same_approver_counts_once(
    approved_dir, copy, attempt_import, verify_json, policy, trust, keys, written_repositories
):
    bundle = copy(approved_dir)
    envelope_of(bundle, keys.ids["officer-b"]).unlink()
    first = str(envelope_of(bundle, keys.ids["officer-a"]).relative_to(bundle))
    second = add_approval(bundle, keys.signer("officer-a"), comment="a second opinion, from myself")
    report = verify_json(bundle, policy)
    assert {status_of(report, first), status_of(report, second)} == {"counted", "duplicate"}
    result = attempt_import(bundle, policy)
    assert_refused(result, written_repositories, trust, None, {"APPROVER_THRESHOLD"})
    assert "1 approval(s) from distinct approver keys" in result.stderr


def test_policy_listing_one_key_under_two_names_exits_2(
    approved_dir, copy, attempt_import, trust, keys, written_repositories
):
    bundle = copy(approved_dir)
    again = shutil.copy(keys.pub("officer-a"), trust.directory / "officer-a-again.pub")
    approvers = [str(keys.pub("officer-a")), str(again), str(keys.pub("officer-b"))]
    policy = trust.policy(approvers={"keys": approvers, "threshold": 2})
    result = attempt_import(bundle, policy)
    assert_refused(result, written_repositories, trust, None, exit_code=2)
    assert "approvers.keys[1]" in result.stderr and "same key" in result.stderr


def test_collector_key_signing_an_approval_is_role_confusion(
    approved_dir, copy, attempt_import, policy, trust, keys, written_repositories
):
    bundle = copy(approved_dir)
    envelope_of(bundle, keys.ids["officer-b"]).unlink()
    envelope = sign_approval(
        keys.signer("collector"),
        inventory_sha256(bundle),
        bundle_id=bundle_id(bundle),
        comment="approving my own bundle",
        now=dt.datetime.now(dt.UTC),
    )
    add_envelope(bundle, envelope)
    result = attempt_import(bundle, policy)
    assert_refused(result, written_repositories, trust, None, {"ROLE_CONFUSION", "APPROVER_THRESHOLD"})


def test_officer_key_signing_a_collection_is_role_confusion(
    approved_dir, copy, attempt_import, policy, trust, keys, written_repositories
):
    bundle = copy(approved_dir)
    store(bundle, sign_envelope(collection_payload(bundle), keys.signer("officer-a")))
    result = attempt_import(bundle, policy)
    assert_refused(result, written_repositories, trust, None, {"ROLE_CONFUSION"})


def test_policy_with_one_key_in_both_roles_exits_2(
    approved_dir, copy, attempt_import, trust, keys, written_repositories
):
    bundle = copy(approved_dir)
    approvers = [str(keys.pub("officer-a")), str(keys.pub("collector")), str(keys.pub("officer-b"))]
    policy = trust.policy(approvers={"keys": approvers, "threshold": 2})
    result = attempt_import(bundle, policy)
    assert_refused(result, written_repositories, trust, None, exit_code=2)
    assert "both a collector and an approver" in result.stderr


def test_approve_with_the_collector_key_is_refused(signed_dir, copy, mirror_cli, policy, keys):
    bundle = copy(signed_dir)
    files = signature_files(bundle)
    result = mirror_cli("approve", bundle, "--key", keys.key("collector"), "--trust", policy)
    assert result.exit_code == 2, result.stdout + result.stderr
    assert "collector key" in result.stderr
    assert signature_files(bundle) == files


def test_approve_with_a_key_the_policy_does_not_list_is_refused(signed_dir, copy, mirror_cli, policy, keys):
    bundle = copy(signed_dir)
    files = signature_files(bundle)
    result = mirror_cli("approve", bundle, "--key", keys.key("attacker"), "--trust", policy)
    assert result.exit_code == 2, result.stdout + result.stderr
    assert "not an approver" in result.stderr
    assert signature_files(bundle) == files


def test_approvals_copied_from_another_bundle_do_not_count(
    signed_dir, approved_seq2, copy, attempt_import, verify_json, policy, trust, keys, written_repositories
):
    bundle = copy(signed_dir)
    copied = []
    for officer in ("officer-a", "officer-c"):
        source = envelope_of(approved_seq2, keys.ids[officer])
        shutil.copy(source, bundle / "signatures" / source.name)
        copied.append(f"signatures/{source.name}")
    report = verify_json(bundle, policy)
    assert [status_of(report, name) for name in copied] == ["refused", "refused"]
    result = attempt_import(bundle, policy)
    assert_refused(result, written_repositories, trust, None, {"SUBJECT_MISMATCH", "APPROVER_THRESHOLD"})
    assert result.stderr.count("[SUBJECT_MISMATCH]") == 2


def test_approval_naming_another_bundle_id_does_not_count(
    approved_dir, copy, attempt_import, policy, trust, keys, written_repositories
):
    bundle = copy(approved_dir)
    envelope_of(bundle, keys.ids["officer-b"]).unlink()
    envelope = sign_approval(
        keys.signer("officer-b"),
        inventory_sha256(bundle),
        bundle_id=str(uuid.uuid4()),
        comment="",
        now=dt.datetime.now(dt.UTC),
    )
    store(bundle, envelope)
    result = attempt_import(bundle, policy)
    assert_refused(result, written_repositories, trust, None, {"BUNDLE_MISMATCH", "APPROVER_THRESHOLD"})


def test_approval_naming_another_reviewer_does_not_count(
    approved_dir, copy, attempt_import, policy, trust, keys, written_repositories
):
    bundle = copy(approved_dir)
    envelope_of(bundle, keys.ids["officer-b"]).unlink()
    approval = Approval(bundle_id(bundle), "approved", keys.ids["officer-c"], dt.datetime.now(dt.UTC), "")
    store(bundle, sign_envelope(approval_statement(inventory_sha256(bundle), approval), keys.signer("officer-b")))
    result = attempt_import(bundle, policy)
    assert_refused(result, written_repositories, trust, None, {"STATEMENT_INVALID", "APPROVER_THRESHOLD"})


def test_ecdsa_signature_reencoded_as_raw_r_s_is_not_counted(
    approved_dir, copy, attempt_import, verify_json, policy, trust, keys, written_repositories
):
    bundle = copy(approved_dir)

    def to_raw(body: dict[str, Any]) -> None:
        r, s = decode_dss_signature(base64.b64decode(body["signatures"][0]["sig"]))
        raw = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        body["signatures"][0]["sig"] = base64.b64encode(raw).decode()

    edited = rewrite_envelope(envelope_of(bundle, keys.ids["officer-a"]), to_raw)
    assert len(base64.b64decode(json.loads((bundle / edited).read_bytes())["signatures"][0]["sig"])) == 64
    assert status_of(verify_json(bundle, policy), edited) == "untrusted"
    result = attempt_import(bundle, policy)
    assert_refused(result, written_repositories, trust, None, {"APPROVER_THRESHOLD"})


# === replay, rollback, fast-forward (threats 13, 14) ============================================================


def test_replaying_an_older_sequence_is_a_rollback(
    approved_dir, approved_seq2, copy, attempt_import, policy, trust, second_target
):
    assert attempt_import(copy(approved_seq2), policy).exit_code == 0
    before = trust.rollback()
    url, written = second_target
    result = attempt_import(copy(approved_dir), policy, url=url)
    assert_refused(result, written, trust, before, {"ROLLBACK", "COLLECTOR_THRESHOLD"})


def test_another_bundle_under_an_already_imported_sequence_is_a_rollback(
    approved_dir, approved_tar, copy, attempt_import, policy, trust, second_target
):
    assert attempt_import(copy(approved_dir), policy).exit_code == 0
    before = trust.rollback()
    url, written = second_target
    result = attempt_import(copy(approved_tar), policy, url=url)  # also sequence 1, another inventory
    assert_refused(result, written, trust, before, {"ROLLBACK", "COLLECTOR_THRESHOLD"})


def test_sequence_far_beyond_the_last_import_is_a_gap(
    approved_dir, approved_far, copy, attempt_import, policy, trust, second_target
):
    assert attempt_import(copy(approved_dir), policy).exit_code == 0
    before = trust.rollback()
    url, written = second_target
    result = attempt_import(copy(approved_far), policy, url=url)
    assert_refused(result, written, trust, before, {"SEQUENCE_GAP", "COLLECTOR_THRESHOLD"})


# === freshness (threat 12) ======================================================================================


def test_bundle_past_its_valid_for_is_expired(
    mirrorset, tmp_path, mirror_cli, attempt_import, policy, trust, keys, written_repositories
):
    bundle = tmp_path / "short-lived"
    collect = mirror_cli(
        "collect", mirrorset, "-o", bundle, "--key", keys.key("collector"), "--sequence", 1, "--valid-for", "1s"
    )
    assert collect.exit_code == 0, collect.stderr
    for officer in ("officer-a", "officer-b"):  # crafted: `mirror approve` would rightly refuse it once expired
        add_approval(bundle, keys.signer(officer))
    time.sleep(1.2)
    result = attempt_import(bundle, policy)
    assert_refused(result, written_repositories, trust, None, {"EXPIRED", "COLLECTOR_THRESHOLD"})


def test_bundle_created_before_max_age_is_too_old(
    approved_dir, copy, attempt_import, policy, trust, keys, written_repositories
):
    bundle = copy(approved_dir)
    created = dt.datetime.now(dt.UTC) - dt.timedelta(days=20)
    resign_collection(bundle, keys, created=created, valid_for=dt.timedelta(days=30))
    result = attempt_import(bundle, policy)
    assert_refused(result, written_repositories, trust, None, {"TOO_OLD", "COLLECTOR_THRESHOLD"})


def test_bundle_created_in_the_future_is_refused(
    approved_dir, copy, attempt_import, policy, trust, keys, written_repositories
):
    bundle = copy(approved_dir)
    created = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    resign_collection(bundle, keys, created=created, valid_for=dt.timedelta(days=30))
    result = attempt_import(bundle, policy)
    assert_refused(result, written_repositories, trust, None, {"CREATED_IN_FUTURE", "COLLECTOR_THRESHOLD"})


def test_clock_set_back_cannot_revive_a_bundle_that_expired_before_the_last_import(
    approved_dir,
    approved_seq2,
    copy,
    trust,
    policy,
    keys,
    services,
    internal_env,
    internal_url,
    second_target,
    monkeypatch,
):
    for name, value in internal_env.items():
        monkeypatch.setenv(name, value)
    accepted = copy(approved_dir)
    import_bundle(accepted, internal_url, trust=policy, ca_file=str(services.ca_file))
    latest = bundle_created(accepted)  # T: the newest `created` the high side has accepted
    stale = copy(approved_seq2)
    resign_collection(stale, keys, created=latest - dt.timedelta(hours=2), valid_for=dt.timedelta(hours=1), sequence=2)
    set_back = latest - dt.timedelta(minutes=90)  # a clock at which the stale bundle would still be valid
    assert check_trust(stale, trust.policy("no-history.yaml", stateFile="empty-state.json"), clock=set_back).ok
    before = trust.rollback()
    url, written = second_target
    with pytest.raises(VerificationError) as refused:
        import_bundle(stale, url, trust=policy, ca_file=str(services.ca_file), clock=set_back)
    assert {p.code for p in refused.value.problems} == {"EXPIRED", "COLLECTOR_THRESHOLD"}
    assert written() == []
    assert trust.rollback() == before


# === hostile tars (threats 15-19) ===============================================================================


def test_tar_member_climbing_out_with_dot_dot_is_refused_and_lands_nowhere(
    approved_tar, tmp_path, attempt_import, policy, trust, written_repositories, monkeypatch
):
    workdir = tmp_path / "deep" / "er"
    workdir.mkdir(parents=True)
    bundle = Path(shutil.copy(approved_tar, workdir / "bundle.tar"))
    escaped = f"escaped-{uuid.uuid4().hex[:8]}"
    append_to_tar(bundle, f"../../{escaped}", b"pwned")
    monkeypatch.chdir(workdir)
    before = snapshot(tmp_path)
    result = attempt_import(bundle, policy)
    assert_refused(result, written_repositories, trust, None)
    assert "unsafe member name" in result.stderr
    assert not (tmp_path / escaped).exists()
    # The state lock (mirror.trust.lock), never removed, and the journal of the refusal with its head in the state
    # file are the files an import may leave.
    left = {"trust/state.json.lock", "trust/state.json.journal", "trust/state.json"}
    assert [p for p in snapshot(tmp_path) if p not in left] == before


def test_tar_member_with_an_absolute_name_is_refused_and_lands_nowhere(
    approved_tar, copy, attempt_import, policy, trust, written_repositories
):
    bundle = copy(approved_tar)
    target = Path(f"/tmp/mirror-attack-{uuid.uuid4().hex[:8]}")
    append_to_tar(bundle, str(target), b"pwned")
    result = attempt_import(bundle, policy)
    assert_refused(result, written_repositories, trust, None)
    assert "unsafe member name" in result.stderr
    assert not target.exists()


def _truncated(path: Path) -> None:
    """A member whose size header claims 1 MiB, followed by one block of data and the end marker."""
    data = path.read_bytes()[: tar_data_end(path)]
    header = tar_member(f"blobs/sha256/{'e' * 64}", size=1 << 20).tobuf(format=tarfile.USTAR_FORMAT)
    path.write_bytes(data + header + b"x" * 512 + b"\0" * 1024)


HOSTILE_MEMBERS: dict[str, tuple[Callable[[Path], None], str]] = {
    "symlink": (
        lambda p: append_to_tar(p, "blobs-link", None, kind=tarfile.SYMTYPE, linkname="/"),
        "symbolic link members are not allowed",
    ),
    "hardlink": (
        lambda p: append_to_tar(p, f"blobs/sha256/{'e' * 64}", None, kind=tarfile.LNKTYPE, linkname="/etc/passwd"),
        "hard link members are not allowed",
    ),
    "char-device": (
        lambda p: append_to_tar(p, "null", None, kind=tarfile.CHRTYPE, devmajor=1, devminor=3),
        "character device members are not allowed",
    ),
    "block-device": (
        lambda p: append_to_tar(p, "sda", None, kind=tarfile.BLKTYPE, devmajor=8, devminor=0),
        "block device members are not allowed",
    ),
    "fifo": (lambda p: append_to_tar(p, "fifo", None, kind=tarfile.FIFOTYPE), "FIFO members are not allowed"),
    "gnu-sparse": (
        lambda p: append_to_tar(p, f"blobs/sha256/{'e' * 64}", None, kind=tarfile.GNUTYPE_SPARSE),
        "GNU sparse file members are not allowed",
    ),
    "pax-header": (
        lambda p: append_to_tar(p, "extra", b"x", fmt=tarfile.PAX_FORMAT, pax_headers={"path": "index.json"}),
        "PAX extended header members are not allowed",
    ),
    "gnu-long-name": (
        lambda p: append_to_tar(p, "blobs/sha256/" + "e" * 200, b"x", fmt=tarfile.GNU_FORMAT),
        "not a POSIX ustar header",
    ),
    "size-beyond-the-file": (_truncated, "is truncated"),
    "duplicate-name-other-bytes": (
        lambda p: append_to_tar(p, "index.json", b'{"schemaVersion": 2, "manifests": []}'),
        "appears twice",
    ),
}


@pytest.mark.parametrize("attack", list(HOSTILE_MEMBERS))
def test_hostile_tar_member_is_refused(attack, approved_tar, copy, attempt_import, policy, trust, written_repositories):
    bundle = copy(approved_tar)
    craft, message = HOSTILE_MEMBERS[attack]
    craft(bundle)
    result = attempt_import(bundle, policy)
    assert_refused(result, written_repositories, trust, None)
    assert message in result.stderr


def test_symlink_in_a_directory_bundle_is_refused(
    approved_dir, copy, tmp_path, attempt_import, policy, trust, written_repositories
):
    bundle = copy(approved_dir)
    layer = largest_blob(bundle)
    elsewhere = Path(shutil.move(layer, tmp_path / "elsewhere"))
    layer.symlink_to(elsewhere)  # the same bytes, reached through a link
    result = attempt_import(bundle, policy)
    assert_refused(result, written_repositories, trust, None)
    assert "links are not allowed" in result.stderr


# === policy decisions and bad policies ==========================================================================


def test_source_outside_allowed_sources_is_refused(approved_dir, copy, attempt_import, trust, written_repositories):
    policy = trust.policy(allowedSources=["docker.io/*"])
    result = attempt_import(copy(approved_dir), policy)
    assert_refused(result, written_repositories, trust, None, {"SOURCE_NOT_ALLOWED"})
    assert f"{UPSTREAM_REGISTRY}/fixtures/app" in result.stderr


def _all_officers(threshold: int) -> Callable[[Keys], dict[str, Any]]:
    return lambda keys: {"approvers": {"keys": [str(keys.pub(name)) for name in OFFICERS], "threshold": threshold}}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        (lambda keys: {"trustEveryone": True}, "trustEveryone"),
        (_all_officers(4), "approvers.threshold"),
        (lambda keys: {"stateFile": DROP}, "stateFile"),
    ],
    ids=["unknown-field", "threshold-above-the-keys", "missing-state-file"],
)
def test_invalid_policy_exits_2_naming_the_field(
    changes, field, approved_dir, copy, attempt_import, trust, keys, written_repositories
):
    policy = trust.policy(**changes(keys))
    result = attempt_import(copy(approved_dir), policy)
    assert_refused(result, written_repositories, trust, None, exit_code=2)
    assert f"{policy}: {field}" in result.stderr


@pytest.mark.parametrize(
    "content",
    [b"{not json", b'{"collectors": {}, "latestCreated": "yesterday"}\n'],
    ids=["not-json", "bad-latest-created"],
)
def test_unreadable_state_file_exits_2_naming_it(
    content, approved_dir, copy, attempt_import, policy, trust, written_repositories
):
    trust.state.write_bytes(content)
    result = attempt_import(copy(approved_dir), policy)
    assert result.exit_code == 2 and "Traceback" not in result.stderr, result.stderr
    assert written_repositories() == []
    assert trust.state.read_bytes() == content and last_entry(trust.state) is None
    assert f"{trust.state}: the trust state file is unreadable" in result.stderr


def test_import_with_both_trust_and_allow_unsigned_exits_2(
    approved_dir, copy, attempt_import, policy, trust, written_repositories
):
    result = attempt_import(copy(approved_dir), policy, "--allow-unsigned")
    assert_refused(result, written_repositories, trust, None, exit_code=2)
    assert "not both" in result.stderr


# === password-protected keys ====================================================================================


@pytest.mark.parametrize("password", [None, "not the password"], ids=["no-password", "wrong-password"])
def test_sealed_collector_key_without_its_password_exits_2_cleanly(
    password, mirrorset, tmp_path, mirror_process, keys, monkeypatch
):
    monkeypatch.delenv(PASSWORD_VARIABLE, raising=False)
    out = tmp_path / "bundle"
    env = {PASSWORD_VARIABLE: password} if password else {}
    result = mirror_process("collect", mirrorset, "-o", out, "--key", keys.key("sealed-collector"), env=env)
    assert result.exit_code == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "sealed-collector.key" in result.stderr
    assert not out.exists()


@pytest.mark.parametrize("password", [None, "not the password"], ids=["no-password", "wrong-password"])
def test_sealed_officer_key_without_its_password_exits_2_cleanly(
    password, signed_dir, copy, mirror_process, keys, monkeypatch
):
    monkeypatch.delenv(PASSWORD_VARIABLE, raising=False)
    bundle = copy(signed_dir)
    files = signature_files(bundle)
    env = {PASSWORD_VARIABLE: password} if password else {}
    result = mirror_process(
        "approve", bundle, "--key", keys.key("sealed-officer"), "--collector-key", keys.pub("collector"), env=env
    )
    assert result.exit_code == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "sealed-officer.key" in result.stderr
    assert signature_files(bundle) == files


def test_sealed_officer_key_with_its_password_approves(signed_dir, copy, mirror_process, keys):
    bundle = copy(signed_dir)
    result = mirror_process(
        "approve",
        bundle,
        "--key",
        keys.key("sealed-officer"),
        "--collector-key",
        keys.pub("collector"),
        env={PASSWORD_VARIABLE: PASSWORD},
    )
    assert result.exit_code == 0, result.stderr
    assert keys.ids["sealed-officer"] in result.stdout
    assert len(signature_files(bundle)) == 2
