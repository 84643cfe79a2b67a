"""Files mirror writes beside a bundle never go through a link someone planted at a name mirror once used."""

from __future__ import annotations

import hashlib
from pathlib import Path

from mirror.bundle.signatures import SIGNATURE_DIR, add_envelope
from mirror.collector.incremental import write_beside
from mirror.trust.state import TrustState, save_state


def _victim(tmp_path: Path) -> Path:
    victim = tmp_path / "victim"
    victim.write_bytes(b"keep me")
    return victim


def test_the_inventory_copy_is_not_written_through_a_link_at_its_old_temporary_name(tmp_path: Path) -> None:
    victim = _victim(tmp_path)
    beside = tmp_path / "night.inventory.json"
    (tmp_path / ".night.inventory.json.partial").symlink_to(victim)
    write_beside(beside, b"{}")
    assert victim.read_bytes() == b"keep me"
    assert beside.read_bytes() == b"{}"


def test_an_approval_is_not_written_through_a_link_at_its_old_temporary_name(tmp_path: Path) -> None:
    victim = _victim(tmp_path)
    raw = b'{"payload": "", "payloadType": "x", "signatures": []}'
    name = hashlib.sha256(raw).hexdigest() + ".json"
    (tmp_path / SIGNATURE_DIR).mkdir()
    (tmp_path / SIGNATURE_DIR / f".{name}.partial").symlink_to(victim)
    add_envelope(tmp_path, raw)
    assert victim.read_bytes() == b"keep me"
    assert (tmp_path / SIGNATURE_DIR / name).read_bytes() == raw


def test_the_trust_state_is_not_written_through_a_link_at_its_old_temporary_name(tmp_path: Path) -> None:
    victim = _victim(tmp_path)
    (tmp_path / ".state.json.partial").symlink_to(victim)
    save_state(tmp_path / "state.json", TrustState())
    assert victim.read_bytes() == b"keep me"
    assert (tmp_path / "state.json").read_bytes().startswith(b"{")
