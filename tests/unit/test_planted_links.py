"""Files mirror writes beside a bundle never go through a link someone planted at a name mirror once used."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from mirror.bundle.inventory import blob_path
from mirror.bundle.layout import LayoutWriter
from mirror.bundle.signatures import SIGNATURE_DIR, add_envelope
from mirror.collector.incremental import write_beside
from mirror.errors import UsageError
from mirror.oci.digest import sha256_digest
from mirror.trust.keys import generate
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


def test_a_new_public_key_is_not_written_through_a_dangling_link_at_its_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    victim = tmp_path / "elsewhere" / "victim.pub"  # does not exist yet: the link dangles
    victim.parent.mkdir()
    monkeypatch.chdir(tmp_path)
    (tmp_path / "officer.pub").symlink_to(victim)
    with pytest.raises(UsageError, match="already exists"):
        generate("officer", env={})
    assert not victim.exists()
    assert not (tmp_path / "officer.key").exists()  # refused before anything was written


def test_layout_blobs_and_files_are_not_written_through_links_at_their_final_names(tmp_path: Path) -> None:
    victim = _victim(tmp_path)
    writer = LayoutWriter(tmp_path / "bundle")
    data = b"blob"
    digest = sha256_digest(data)
    (tmp_path / "bundle" / blob_path(digest)).symlink_to(victim)
    (tmp_path / "bundle" / "index.json").symlink_to(victim)
    writer.put_bytes(digest, data)
    writer._write_file("index.json", b"{}")
    assert victim.read_bytes() == b"keep me"
    assert writer.blob_location(digest).read_bytes() == data
