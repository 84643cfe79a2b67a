"""`mirror prune` against the registry simulator after three real nightly imports: dry run by default, `--yes`
deletes by digest and journals it, and every refusal comes before the first delete (docs/day-two.md)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mirror.errors import TransferError, UsageError, VerificationError
from mirror.importer.run import import_bundle
from mirror.prune.run import prune_target
from mirror.trust.journal import journal_file_for
from mirror.trust.journal_read import check_journal
from mirror.trust.keys import generate
from tests.support.journals import lines, rewrite
from tests.support.signedbundles import SmallBundle, Trust, make_trust, sign
from tests.unit.registry_sim import RegistrySim

HOST = "registry.test"
TARGET = f"https://{HOST}/mirror"
APP, TOOL, OLD = "mirror/team/app", "mirror/team/tool", "mirror/team/old"


@dataclass
class Nights:
    trust: Trust
    sim: RegistrySim
    digests: list[dict[str, str]]  # per night: "repository:tag" → digest
    inventories: list[str]

    @property
    def state_file(self) -> Path:
        return self.trust.policy.parent / "state.json"

    def journal(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in lines(self.state_file)]

    def present(self, repository: str, reference: str) -> bool:
        return reference in self.sim.manifests[repository]

    def prune(self, keep: int = 1, **options: Any) -> Any:
        return prune_target(TARGET, trust=self.trust.policy, keep=keep, transport=self.sim.transport(), **options)


NIGHTLY: list[dict[str, str]] = [
    # source → what its content is called: a tag whose content changes moves
    {"upstream.example/team/app:1.0": "app 1", "upstream.example/team/tool:1.0": "tool 1",
     "upstream.example/team/app:latest": "app latest 1", "upstream.example/team/old:1.0": "old 1"},
    {"upstream.example/team/app:2.0": "app 2", "upstream.example/team/tool:1.0": "tool 1",
     "upstream.example/team/app:latest": "app latest 2"},
    {"upstream.example/team/app:2.0": "app 2", "upstream.example/team/tool:1.0": "tool 1",
     "upstream.example/team/app:latest": "app latest 2"},
]  # fmt: skip


@pytest.fixture
def nights(tmp_path: Path) -> Nights:
    """Three nights imported in order into one simulated registry under /mirror."""
    trust = make_trust(tmp_path / "trust")
    sim = RegistrySim(HOST)
    digests, inventories = [], []
    for number, images in enumerate(NIGHTLY, start=1):
        bundle = SmallBundle(tmp_path / f"night-{number}", bundle_id=f"night-{number}")
        landed = {}
        for source, content in images.items():
            landed["mirror/" + source.split("/", 1)[1]] = bundle.image(source, content=content)
        raw = bundle.finish()
        sign(bundle.root, trust, sequence=number)
        import_bundle(bundle.root, TARGET, trust=trust.policy, transport=sim.transport())
        digests.append(landed)
        inventories.append(f"sha256:{hashlib.sha256(raw).hexdigest()}")
    sim.requests.clear()  # the imports' own
    return Nights(trust, sim, digests, inventories)


def only_night_one(nights: Nights) -> list[tuple[str, str]]:
    first = nights.digests[0]
    return sorted(
        [(APP, first[f"{APP}:1.0"]), (APP, first[f"{APP}:latest"]), (OLD, first[f"{OLD}:1.0"])],
    )


def test_a_dry_run_lists_what_only_the_older_nights_used_and_deletes_nothing(nights: Nights) -> None:
    journal_before = journal_file_for(nights.state_file).read_bytes()
    report = nights.prune(1)
    assert report.dry_run
    assert sorted((d.candidate.repository, d.candidate.digest) for d in report.to_delete) == only_night_one(nights)
    assert nights.sim.registry_requests("DELETE") == []
    assert journal_file_for(nights.state_file).read_bytes() == journal_before
    assert [b.bundle_id for b in report.kept] == ["night-3"]


def test_yes_deletes_exactly_those_manifests_and_the_tags_only_on_them(nights: Nights) -> None:
    first, third = nights.digests[0], nights.digests[2]
    report = nights.prune(1, yes=True)
    assert sorted((d.candidate.repository, d.candidate.digest) for d in report.deleted) == only_night_one(nights)
    for repository, digest in only_night_one(nights):
        assert not nights.present(repository, digest)
    assert not nights.present(APP, "1.0") and not nights.present(OLD, "1.0")
    for name, digest in third.items():  # everything night 3 landed is still there, tags included
        repository, tag = name.rsplit(":", 1)
        assert nights.present(repository, digest) and nights.present(repository, tag)
    assert nights.sim.manifests[APP]["latest"] == nights.sim.manifests[APP][third[f"{APP}:latest"]]
    assert first[f"{TOOL}:1.0"] == third[f"{TOOL}:1.0"]


def test_yes_journals_one_prune_entry_listing_each_manifest_deleted_with_its_tags(nights: Nights) -> None:
    first = nights.digests[0]
    nights.prune(1, yes=True)
    entry = nights.journal()[-1]
    assert (entry["kind"], entry["result"], entry["exitCode"]) == ("prune", "pruned", 0)
    assert entry["registry"] == TARGET and entry["kept"] == [nights.inventories[2]]
    deleted = {(d["repository"], d["digest"]): d["tags"] for d in entry["deleted"]}
    assert deleted == {
        (APP, first[f"{APP}:1.0"]): ["1.0"],
        (APP, first[f"{APP}:latest"]): [],  # night 2 moved `latest` away from it
        (OLD, first[f"{OLD}:1.0"]): ["1.0"],
    }
    assert check_journal(nights.state_file).problems == []


def test_a_second_prune_finds_them_gone_and_deletes_nothing(nights: Nights) -> None:
    nights.prune(1, yes=True)
    deletes = len(nights.sim.registry_requests("DELETE"))
    report = nights.prune(1, yes=True)
    assert report.deleted == [] and len(report.gone) == 3
    assert len(nights.sim.registry_requests("DELETE")) == deletes
    assert nights.journal()[-1]["deleted"] == []


def test_keep_two_deletes_only_what_the_oldest_night_used(nights: Nights) -> None:
    report = nights.prune(2, yes=True)
    assert sorted((d.candidate.repository, d.candidate.digest) for d in report.deleted) == only_night_one(nights)


def test_a_registry_with_deletes_disabled_is_refused_before_any_delete_and_the_refusal_is_journaled(
    nights: Nights,
) -> None:
    nights.sim.deletes_enabled = False
    with pytest.raises(UsageError) as refused:
        nights.prune(1, yes=True)
    assert {p.code for p in refused.value.problems} == {"PRUNE_DELETES_DISABLED"}  # type: ignore[union-attr]
    assert "storage" in (refused.value.hint or "")
    for repository, digest in only_night_one(nights):
        assert nights.present(repository, digest)
    probes = nights.sim.registry_requests("DELETE")
    assert {p.url.path.rsplit("/", 1)[1] for p in probes} == {"sha256:" + "0" * 64}
    entry = nights.journal()[-1]
    assert (entry["kind"], entry["result"], entry["exitCode"]) == ("prune", "refused", 2)
    assert entry["deleted"] == [] and entry["problems"] == ["PRUNE_DELETES_DISABLED", "PRUNE_DELETES_DISABLED"]


def test_credentials_that_may_not_delete_are_refused_before_any_delete(nights: Nights) -> None:
    nights.sim.auth, nights.sim.users = "bearer", {"alice": "secret"}
    nights.sim.user_actions = ("pull", "push")
    env = {"MIRROR_REGISTRY_USERNAME": "alice", "MIRROR_REGISTRY_PASSWORD": "secret"}
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        with pytest.raises(UsageError) as refused:
            nights.prune(1, yes=True)
    assert {p.code for p in refused.value.problems} == {"PRUNE_DELETE_DENIED"}  # type: ignore[union-attr]
    for repository, digest in only_night_one(nights):
        assert nights.present(repository, digest)


def test_a_tag_pointed_outside_mirror_at_an_old_manifest_leaves_its_repository_whole_and_is_reported(
    nights: Nights,
) -> None:
    first = nights.digests[0]
    nights.sim.manifests[APP]["prod"] = nights.sim.manifests[APP][first[f"{APP}:1.0"]]
    report = nights.prune(1, yes=True)
    assert [(d.candidate.repository, d.candidate.digest) for d in report.deleted] == [(OLD, first[f"{OLD}:1.0"])]
    assert nights.present(APP, first[f"{APP}:1.0"]) and nights.present(APP, first[f"{APP}:latest"])
    codes = {d.problem.code for d in report.skipped if d.problem is not None}
    assert codes == {"PRUNE_TAG_NOT_JOURNALED", "PRUNE_REPOSITORY_LEFT_WHOLE"}
    assert any("prod" in d.problem.message for d in report.skipped if d.problem is not None)


def test_a_kept_tag_moved_back_onto_an_old_manifest_leaves_its_repository_whole(nights: Nights) -> None:
    first = nights.digests[0]
    nights.sim.manifests[APP]["latest"] = nights.sim.manifests[APP][first[f"{APP}:latest"]]
    report = nights.prune(1, yes=True)
    assert APP not in {d.candidate.repository for d in report.deleted}
    assert "PRUNE_TAG_MOVED" in {d.problem.code for d in report.skipped if d.problem is not None}


def test_a_delete_that_fails_half_way_is_journaled_partial_with_what_was_deleted(nights: Nights) -> None:
    first = nights.digests[0]
    failing = first[f"{OLD}:1.0"]
    nights.sim.fail(1, status=403, match=lambda r: r.method == "DELETE" and r.url.path.endswith(failing))
    with pytest.raises(TransferError) as stopped:
        nights.prune(1, yes=True, jobs=1)
    assert "2 manifest(s) deleted" in stopped.value.message
    entry = nights.journal()[-1]
    assert (entry["result"], entry["exitCode"]) == ("partial", 4)
    assert {d["digest"] for d in entry["deleted"]} == {first[f"{APP}:1.0"], first[f"{APP}:latest"]}
    assert nights.present(OLD, failing)


def test_a_policy_listing_importer_keys_needs_importer_key_before_anything(nights: Nights) -> None:
    generate(str(nights.trust.policy.parent / "importer"), env={})
    policy = json.loads(nights.trust.policy.read_text())
    nights.trust.policy.write_text(json.dumps({**policy, "importers": {"keys": ["importer.pub"], "fromEntry": 4}}))
    requests = len(nights.sim.requests)
    with pytest.raises(UsageError, match="--importer-key"):
        nights.prune(1, yes=True)
    assert len(nights.sim.requests) == requests
    report = nights.prune(1, yes=True, importer_key=nights.trust.policy.parent / "importer.key")
    assert len(report.deleted) == 3
    assert nights.journal()[-1]["signature"]["keyid"]


def test_a_damaged_journal_refuses_the_prune_before_the_registry_is_asked(nights: Nights) -> None:
    rewrite(nights.state_file, lines(nights.state_file)[:2])
    requests = len(nights.sim.requests)
    for yes in (False, True):
        with pytest.raises(VerificationError) as refused:
            nights.prune(1, yes=yes)
        assert [p.code for p in refused.value.problems] == ["JOURNAL_TRUNCATED"]
    assert len(nights.sim.requests) == requests


def test_keep_must_be_at_least_one(nights: Nights) -> None:
    with pytest.raises(UsageError, match="--keep"):
        nights.prune(0, yes=True)
