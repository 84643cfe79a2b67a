"""Upstream cosign signatures against the real local registries: required at collect by the MirrorSet's
`spec.verify`, and again, offline, at import by the trust policy's `requireSignatures`.

Each test pushes a fresh image to its own repository of the upstream registry and signs it (or not, or badly)
with tests/support/cosign.py, which writes cosign's classic format (a `.sig` tag, simple-signing payloads).
"""

from __future__ import annotations

import contextlib
import json
import socket
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from mirror.bundle.inventory import blob_path, parse_inventory
from mirror.supplychain.cosign import cosign_key_from_pem
from tests.support import cosign
from tests.support.attach import Artifact, Attacher
from tests.support.images import Image, Layer
from tests.support.journals import rollback_record
from tests.support.services import UPSTREAM_REGISTRY

PROBLEM = "  - [{code}] "


@dataclass(frozen=True)
class Pushed:
    repository: str  # HOST/PATH
    reference: str  # HOST/PATH:1.0
    digest: str


def push_image(name: str) -> Pushed:
    """A fresh single-platform image at `<upstream>/sigs/<unique>/<name>:1.0`."""
    path = f"sigs/{uuid.uuid4().hex[:10]}/{name}"
    image = Image([Layer.from_seed(f"{path}/layer", files=1, file_size=256)], labels={"test": path})
    blobs = {digest: data for digest, data in image.blobs() if digest != image.digest and data is not None}
    with Attacher(UPSTREAM_REGISTRY) as attacher:
        attacher.push(path, Artifact(image.manifest.data, blobs), "1.0")
    repository = f"{UPSTREAM_REGISTRY}/{path}"
    return Pushed(repository, f"{repository}:1.0", image.digest)


def push_signature(image: Pushed, manifest: cosign.SignatureManifest) -> None:
    """`manifest` pushed under cosign's tag for the image, as `cosign sign` pushes it."""
    path = image.repository.removeprefix(f"{UPSTREAM_REGISTRY}/")
    with Attacher(UPSTREAM_REGISTRY) as attacher:
        attacher.push(path, Artifact(manifest.raw, manifest.blobs), cosign.cosign_tag(image.digest))


def sign(image: Pushed, key: cosign.PrivateKey, *, signs: str | None = None) -> cosign.SignatureManifest:
    manifest = cosign.signature_manifest([cosign.signed_layer(key, image.repository, signs or image.digest)])
    push_signature(image, manifest)
    return manifest


def key_id(key: cosign.PrivateKey) -> str:
    return cosign_key_from_pem(cosign.public_pem(key), "cosign.pub").key_id


@pytest.fixture
def upstream_key(tmp_path: Path) -> cosign.PrivateKey:
    key = cosign.generate_key()
    cosign.write_public_key(key, tmp_path / "upstream.pub")
    return key


def mirrorset(tmp_path: Path, *images: Pushed, verify: bool = True) -> Path:
    spec: dict[str, Any] = {
        "registries": {UPSTREAM_REGISTRY: {"plainHTTP": True}},
        "images": [i.reference for i in images],
    }
    if verify:
        spec["verify"] = [{"match": f"{UPSTREAM_REGISTRY}/sigs/*", "key": "upstream.pub"}]
    document = {"apiVersion": "mirror/v1", "kind": "MirrorSet", "metadata": {"name": "signed"}, "spec": spec}
    path = tmp_path / f"set-{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def inventory(bundle: Path) -> dict[str, Any]:
    return dict(json.loads((bundle / "inventory.json").read_bytes()))


# --- collect ------------------------------------------------------------------------------------------------------


def test_collect_verifies_a_signed_image_and_records_its_signer(mirror_cli, tmp_path, upstream_key):
    image = push_image("app")
    sign(image, upstream_key)
    out = tmp_path / "bundle"
    result = mirror_cli("collect", mirrorset(tmp_path, image), "-o", out)
    assert result.exit_code == 0, result.stderr
    [recorded] = [a for a in inventory(out)["artifacts"] if a["kind"] == "image"]
    assert recorded["signers"] == [{"key": key_id(upstream_key)}]
    assert any(a["kind"] == "attached" and a["subject"] == image.digest for a in inventory(out)["artifacts"])


def test_collect_refuses_an_unsigned_image_under_a_rule_naming_it(mirror_cli, tmp_path, upstream_key):
    signed, unsigned = push_image("app"), push_image("db")
    sign(signed, upstream_key)
    out = tmp_path / "bundle"
    result = mirror_cli("collect", mirrorset(tmp_path, signed, unsigned), "-o", out)
    assert result.exit_code == 3, result.stderr
    assert PROBLEM.format(code="SIGNATURE_MISSING") + unsigned.reference in result.stderr
    assert signed.reference not in result.stderr
    assert not out.exists()
    assert list(tmp_path.glob("bundle*")) == []  # no staging left behind either


def test_collect_refuses_a_forged_signature(mirror_cli, tmp_path, upstream_key):
    image = push_image("app")
    payload = cosign.simple_signing_payload(image.repository, image.digest)
    forged = cosign.SignatureLayer(payload, cosign.sign(cosign.generate_key(), payload))  # another key
    push_signature(image, cosign.signature_manifest([forged]))
    result = mirror_cli("collect", mirrorset(tmp_path, image), "-o", tmp_path / "bundle")
    assert result.exit_code == 3, result.stderr
    assert PROBLEM.format(code="SIGNATURE_INVALID") + image.reference in result.stderr
    assert key_id(upstream_key) in result.stderr


def test_collect_refuses_a_signature_made_for_another_digest(mirror_cli, tmp_path, upstream_key):
    image, other = push_image("app"), push_image("other")
    sign(image, upstream_key, signs=other.digest)  # a genuine signature of another image, copied to this one
    result = mirror_cli("collect", mirrorset(tmp_path, image), "-o", tmp_path / "bundle")
    assert result.exit_code == 3, result.stderr
    assert PROBLEM.format(code="SIGNATURE_DIGEST_MISMATCH") + image.reference in result.stderr
    assert other.digest in result.stderr


def test_collect_s_json_log_gives_each_refusal_its_code(mirror_cli, tmp_path, upstream_key):
    image = push_image("app")
    result = mirror_cli("collect", mirrorset(tmp_path, image), "-o", tmp_path / "bundle", "--log-format", "json")
    assert result.exit_code == 3
    [line] = [json.loads(x) for x in result.stderr.splitlines() if '"exitCode"' in x]
    assert [p["code"] for p in line["problems"]] == ["SIGNATURE_MISSING"]
    assert image.reference in line["problems"][0]["message"]


# --- import -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HighSide:
    policy: Path
    officer: Path
    collector: Path


@pytest.fixture
def ca(services) -> str:
    return str(services.ca_file)


@pytest.fixture
def high_side(tmp_path: Path, mirror_cli, upstream_key) -> HighSide:
    """Collector and officer keys, and a policy that requires the upstream key's signature on `sigs/*`."""
    keys = tmp_path / "keys"
    keys.mkdir()
    for name in ("collector", "officer"):
        assert mirror_cli("keygen", keys / name).exit_code == 0
    cosign.write_public_key(upstream_key, keys / "upstream.pub")
    policy = {
        "apiVersion": "mirror/v1",
        "kind": "TrustPolicy",
        "collectors": {"keys": ["collector.pub"], "threshold": 1},
        "approvers": {"keys": ["officer.pub"], "threshold": 1},
        "stateFile": "state.json",
        "requireSignatures": [{"match": f"{UPSTREAM_REGISTRY}/sigs/*", "key": "upstream.pub"}],
    }
    (keys / "policy.yaml").write_text(json.dumps(policy))
    return HighSide(keys / "policy.yaml", keys / "officer.key", keys / "collector.key")


def collect_and_approve(mirror_cli, tmp_path: Path, high_side: HighSide, manifest: Path) -> Path:
    out = tmp_path / f"bundle-{uuid.uuid4().hex[:6]}"
    collected = mirror_cli("collect", manifest, "-o", out, "--key", high_side.collector)
    assert collected.exit_code == 0, collected.stderr
    approved = mirror_cli("approve", out, "--key", high_side.officer, "--trust", high_side.policy)
    assert approved.exit_code == 0, approved.stderr
    return out


@pytest.fixture
def only_the_target(monkeypatch, services) -> Callable[[], contextlib.AbstractContextManager[None]]:
    """Within it, every connection but to the internal registry is refused: the import must not need the upstream."""
    host, _, port = services.internal.rpartition(":")
    connect = socket.socket.connect

    def guarded(self: socket.socket, address: Any) -> None:
        if isinstance(address, tuple) and (address[0], str(address[1])) != (host, port):
            raise ConnectionRefusedError(f"test: no network to {address} during the import")
        connect(self, address)

    @contextlib.contextmanager
    def blocked() -> Iterator[None]:
        with monkeypatch.context() as patch:
            patch.setattr(socket.socket, "connect", guarded)
            yield

    return blocked


def test_import_re_verifies_the_upstream_signature_offline(
    mirror_cli, tmp_path, upstream_key, high_side, internal_url, internal_env, ca, only_the_target, written_repositories
):
    image = push_image("app")
    sign(image, upstream_key)
    bundle = collect_and_approve(mirror_cli, tmp_path, high_side, mirrorset(tmp_path, image))
    verified = mirror_cli("verify", bundle, "--trust", high_side.policy, "--json")
    assert verified.exit_code == 0, verified.stdout
    [checked] = verified.json()["upstreamSignatures"]
    assert checked["signers"] == [{"key": key_id(upstream_key)}]
    with only_the_target():
        result = mirror_cli(
            "import", bundle, "--trust", high_side.policy, "--registry", internal_url, "--ca-file", ca, env=internal_env
        )
    assert result.exit_code == 0, result.stderr
    assert written_repositories() != []


def test_inspect_with_the_policy_shows_each_image_s_verdict_offline(
    mirror_cli, tmp_path, upstream_key, high_side, only_the_target
):
    signed, unsigned = push_image("app"), push_image("db")
    sign(signed, upstream_key)
    manifest = mirrorset(tmp_path, signed, unsigned, verify=False)
    bundle = collect_and_approve(mirror_cli, tmp_path, high_side, manifest)
    with only_the_target():
        result = mirror_cli("inspect", bundle, "--trust", high_side.policy, "--json")
    assert result.exit_code == 0, result.stderr
    checks = {a["source"]: a["attached"]["policyCheck"] for a in result.json()["artifacts"]}
    [verified], [refused] = checks[signed.reference], checks[unsigned.reference]
    assert (verified["verified"], verified["signers"]) == (True, [{"key": key_id(upstream_key)}])
    assert (refused["verified"], refused["code"]) == (False, "SIGNATURE_MISSING")


def test_import_refuses_an_image_the_collector_did_not_verify_and_writes_nothing(
    mirror_cli, tmp_path, upstream_key, high_side, internal_url, internal_env, ca, written_repositories
):
    image = push_image("app")
    payload = cosign.simple_signing_payload(image.repository, image.digest)
    push_signature(image, cosign.signature_manifest([cosign.SignatureLayer(payload, cosign.sign(upstream_key, b"x"))]))
    # A collect without spec.verify carries the forged signature unchecked; the high side's policy catches it.
    bundle = collect_and_approve(mirror_cli, tmp_path, high_side, mirrorset(tmp_path, image, verify=False))
    result = mirror_cli(
        "import", bundle, "--trust", high_side.policy, "--registry", internal_url, "--ca-file", ca, env=internal_env
    )
    assert result.exit_code == 3, result.stderr
    assert PROBLEM.format(code="SIGNATURE_INVALID") + image.reference in result.stderr
    assert written_repositories() == []
    assert rollback_record(high_side.policy.parent / "state.json") is None


def test_verify_json_gives_the_upstream_refusal_its_code(mirror_cli, tmp_path, high_side):
    image = push_image("app")  # not signed at all
    bundle = collect_and_approve(mirror_cli, tmp_path, high_side, mirrorset(tmp_path, image, verify=False))
    result = mirror_cli("verify", bundle, "--trust", high_side.policy, "--json")
    assert result.exit_code == 3
    assert [p["code"] for p in result.json()["problems"]] == ["SIGNATURE_MISSING"]


def _payload_blob(bundle: Path, manifest: cosign.SignatureManifest) -> Path:
    [payload] = [d for d, data in manifest.blobs.items() if b"critical" in data]
    return bundle / blob_path(payload)


def test_import_refuses_a_carried_signature_altered_after_approval_and_writes_nothing(
    mirror_cli, tmp_path, upstream_key, high_side, internal_url, internal_env, ca, written_repositories
):
    image, other = push_image("app"), push_image("other")
    manifest = sign(image, upstream_key)
    bundle = collect_and_approve(mirror_cli, tmp_path, high_side, mirrorset(tmp_path, image))
    path = _payload_blob(bundle, manifest)
    path.write_bytes(path.read_bytes().replace(image.digest.encode(), other.digest.encode()))
    result = mirror_cli(
        "import", bundle, "--trust", high_side.policy, "--registry", internal_url, "--ca-file", ca, env=internal_env
    )
    assert result.exit_code == 3, result.stderr
    assert "[FILE_DIGEST]" in result.stderr
    assert written_repositories() == []


def test_import_refuses_a_signature_altered_with_its_inventory_listing_and_writes_nothing(
    mirror_cli, tmp_path, upstream_key, high_side, internal_url, internal_env, ca, written_repositories
):
    image, other = push_image("app"), push_image("other")
    manifest = sign(image, upstream_key)
    bundle = collect_and_approve(mirror_cli, tmp_path, high_side, mirrorset(tmp_path, image))
    path = _payload_blob(bundle, manifest)
    altered = path.read_bytes().replace(image.digest.encode(), other.digest.encode())
    # The attacker stores the altered payload under its own digest and lists it so in the inventory.
    path.unlink()
    moved = bundle / blob_path(cosign.sha256_digest(altered))
    moved.write_bytes(altered)
    body = inventory(bundle)
    [record] = [r for r in body["files"] if r["path"] == str(path.relative_to(bundle))]
    record.update(path=str(moved.relative_to(bundle)), sha256=moved.name, size=len(altered))
    body["files"].sort(key=lambda r: r["path"])
    (bundle / "inventory.json").write_bytes(json.dumps(body, indent=1, sort_keys=True).encode() + b"\n")
    result = mirror_cli(
        "import", bundle, "--trust", high_side.policy, "--registry", internal_url, "--ca-file", ca, env=internal_env
    )
    assert result.exit_code == 3, result.stderr
    assert "[SUBJECT_MISMATCH]" in result.stderr  # the collector's signature and the approval no longer hold
    assert written_repositories() == []


def test_an_incremental_bundle_keeps_the_signatures_its_base_carried_so_they_verify_again(
    mirror_cli, tmp_path, upstream_key, high_side
):
    image = push_image("app")
    sign(image, upstream_key)
    manifest = mirrorset(tmp_path, image)
    base = collect_and_approve(mirror_cli, tmp_path, high_side, manifest)
    night = tmp_path / "night"
    collected = mirror_cli("collect", manifest, "-o", night, "--key", high_side.collector, "--since", base)
    assert collected.exit_code == 0, collected.stderr
    assert mirror_cli("approve", night, "--key", high_side.officer, "--trust", high_side.policy).exit_code == 0
    assert image.digest in parse_inventory((night / "inventory.json").read_bytes()).expected_sizes  # left to the base
    result = mirror_cli("verify", night, "--trust", high_side.policy, "--json")
    assert result.exit_code == 0, result.stdout
    assert result.json()["upstreamSignatures"][0]["signers"] == [{"key": key_id(upstream_key)}]


def test_import_journals_the_cosign_tag_it_puts_so_audit_finds_no_drift(
    mirror_cli, tmp_path, upstream_key, high_side, internal_url, internal_env, ca, written_repositories
):
    image = push_image("app")
    sign(image, upstream_key)
    bundle = collect_and_approve(mirror_cli, tmp_path, high_side, mirrorset(tmp_path, image))
    trust = ("--trust", high_side.policy, "--registry", internal_url, "--ca-file", ca)
    imported = mirror_cli("import", bundle, *trust, env=internal_env)
    assert imported.exit_code == 0, imported.stderr
    entry = json.loads((high_side.policy.parent / "state.json.journal").read_text().splitlines()[-1])
    assert [a["tag"] for a in entry["written"]["attached"]] == [cosign.cosign_tag(image.digest)]
    audited = mirror_cli("audit", *trust, env=internal_env)
    assert audited.exit_code == 0, audited.stdout + audited.stderr


def test_verify_counts_attached_manifests_apart_from_artifacts_as_inspect_and_import_do(
    mirror_cli, tmp_path, upstream_key, high_side
):
    image = push_image("app")
    sign(image, upstream_key)
    bundle = collect_and_approve(mirror_cli, tmp_path, high_side, mirrorset(tmp_path, image))
    verified = mirror_cli("verify", bundle, "--trust", high_side.policy)
    assert verified.exit_code == 0, verified.stderr
    assert "  1 artifact(s) and 1 attached manifest(s), " in verified.stdout
