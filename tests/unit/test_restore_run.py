"""`mirror restore` against the registry simulator: three nights imported under /mirror, restored into an empty
/restored, each bundle through the import's own checks, journaled as `restore` (docs/day-two.md, "Restore")."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mirror.errors import TransferError, UsageError, VerificationError
from mirror.importer.restore import restore_chain
from mirror.importer.run import import_bundle
from mirror.trust.journal_read import check_journal
from tests.support.journals import lines, rollback_record
from tests.support.signedbundles import SmallBundle, Trust, make_trust, sign
from tests.unit.registry_sim import RegistrySim

HOST = "registry.test"
TARGET, RESTORED = f"https://{HOST}/mirror", f"https://{HOST}/restored"

NIGHTLY = [
    {"upstream.example/team/app:1.0": "app 1", "upstream.example/team/app:latest": "app 1"},
    {"upstream.example/team/app:2.0": "app 2", "upstream.example/team/app:latest": "app 2"},
    {"upstream.example/team/app:2.0": "app 2", "upstream.example/team/app:latest": "app 2",
     "upstream.example/team/tool:1.0": "tool 1"},
]  # fmt: skip


@dataclass
class Chain:
    trust: Trust
    sim: RegistrySim
    bundles: list[Path]

    @property
    def state_file(self) -> Path:
        return self.trust.policy.parent / "state.json"

    def journal(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in lines(self.state_file)]

    def under(self, prefix: str) -> dict[tuple[str, str], str]:
        """Every tag under the prefix, (repository without it, tag) → the digest it names."""
        found = {}
        for repository, stored in self.sim.manifests.items():
            if repository.startswith(prefix + "/"):
                for reference, (raw, _) in stored.items():
                    if not reference.startswith("sha256:"):
                        found[(repository.removeprefix(prefix + "/"), reference)] = "sha256:" + _sha(raw)
        return found

    def restore(self, bundles: list[Path] | None = None, **options: Any) -> Any:
        chosen = self.bundles if bundles is None else bundles
        return restore_chain(chosen, RESTORED, trust=self.trust.policy, transport=self.sim.transport(), **options)


def _sha(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def night(directory: Path, trust: Trust, number: int, images: dict[str, str]) -> Path:
    bundle = SmallBundle(directory / f"night-{number}", bundle_id=f"night-{number}")
    for source, content in images.items():
        bundle.image(source, content=content)
    bundle.finish()
    sign(bundle.root, trust, sequence=number)
    return bundle.root


@pytest.fixture
def chain(tmp_path: Path) -> Chain:
    trust = make_trust(tmp_path / "trust")
    sim = RegistrySim(HOST)
    bundles = [night(tmp_path, trust, n, images) for n, images in enumerate(NIGHTLY, start=1)]
    for bundle in bundles:
        import_bundle(bundle, TARGET, trust=trust.policy, transport=sim.transport())
    return Chain(trust, sim, bundles)


def test_the_chain_restored_into_an_empty_prefix_lands_every_tag_on_the_same_digest(chain: Chain) -> None:
    report = chain.restore()
    assert chain.under("restored") == chain.under("mirror")
    assert [r.bundle_id for r in report.restored] == ["night-1", "night-2", "night-3"]


def test_each_bundle_restored_is_journaled_as_a_restore_of_its_import(chain: Chain) -> None:
    chain.restore()
    entries = chain.journal()
    restores = [e for e in entries if e["kind"] == "restore"]
    assert [(e["bundleId"], e["result"], e["restores"], e["registry"]) for e in restores] == [
        ("night-1", "restored", 1, RESTORED),
        ("night-2", "restored", 2, RESTORED),
        ("night-3", "restored", 3, RESTORED),
    ]
    imported = {e["inventory"]: e for e in entries if e["kind"] == "import"}
    for entry in restores:
        before = imported[entry["inventory"]]["written"]["images"]
        assert [
            (i["repository"].replace("restored/", "mirror/", 1), i["tag"], i["digest"])
            for i in entry["written"]["images"]
        ] == [(i["repository"], i["tag"], i["digest"]) for i in before]
    assert check_journal(chain.state_file).problems == []


def test_bundles_given_in_another_order_are_restored_in_the_order_they_were_imported(chain: Chain) -> None:
    report = chain.restore(list(reversed(chain.bundles)))
    assert [r.bundle_id for r in report.restored] == ["night-1", "night-2", "night-3"]
    assert chain.under("restored") == chain.under("mirror")


def test_the_rollback_record_is_left_as_it_was_and_an_old_bundle_stays_refused_for_import(chain: Chain) -> None:
    before = rollback_record(chain.state_file)
    chain.restore()
    assert rollback_record(chain.state_file) == before
    with pytest.raises(VerificationError) as refused:
        import_bundle(chain.bundles[0], TARGET, trust=chain.trust.policy, transport=chain.sim.transport())
    assert "ROLLBACK" in {p.code for p in refused.value.problems}


def test_expired_bundles_the_journal_lists_are_restored(chain: Chain) -> None:
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=90)  # the signatures were valid for 30 days
    chain.restore(clock=later)
    assert chain.under("restored") == chain.under("mirror")


def test_a_bundle_the_journal_does_not_list_is_refused_before_anything_is_written(chain: Chain, tmp_path: Path) -> None:
    stranger = night(tmp_path / "other", chain.trust, 4, {"upstream.example/team/new:1.0": "new"})
    with pytest.raises(VerificationError) as refused:
        chain.restore([*chain.bundles, stranger])
    assert [p.code for p in refused.value.problems] == ["RESTORE_NOT_IMPORTED"]
    assert chain.under("restored") == {}
    assert all(e["kind"] == "import" for e in chain.journal())


def test_leaving_out_the_last_night_is_refused_before_anything_is_written(chain: Chain) -> None:
    with pytest.raises(UsageError) as refused:
        chain.restore(chain.bundles[:2])
    assert [p.code for p in refused.value.problems] == ["RESTORE_INCOMPLETE"]  # type: ignore[union-attr]
    assert chain.under("restored") == {}


def test_a_signature_no_longer_valid_under_the_policy_is_refused_before_anything_is_written(chain: Chain) -> None:
    for envelope in (chain.bundles[2] / "signatures").iterdir():
        if b"approval" in base64.b64decode(json.loads(envelope.read_bytes())["payload"]):
            envelope.unlink()  # the officer's approval of night 3
    with pytest.raises(VerificationError) as refused:
        chain.restore()
    assert "APPROVER_THRESHOLD" in {p.code for p in refused.value.problems}
    assert chain.under("restored") == {}


def test_a_damaged_bundle_after_the_first_stops_the_restore_exit_4_and_is_journaled_refused(chain: Chain) -> None:
    blob = next(p for p in (chain.bundles[1] / "blobs" / "sha256").iterdir() if p.stat().st_size < 200)
    blob.write_bytes(b"tampered")
    with pytest.raises(TransferError) as stopped:
        chain.restore()
    assert "night-1" in stopped.value.message and "night-2" in stopped.value.message
    restores = [(e["bundleId"], e["result"]) for e in chain.journal() if e["kind"] == "restore"]
    assert restores == [("night-1", "restored"), ("night-2", "refused")]


def test_restoring_again_replays_the_chain_uploading_nothing_and_ends_the_same(chain: Chain) -> None:
    chain.restore()
    again = chain.restore()
    assert sum(r.report.counts.blobs_uploaded for r in again.restored) == 0
    assert chain.under("restored") == chain.under("mirror")
