"""Every import attempt that takes the trust state lock appends exactly one journal entry (docs/journal.md).

Run against the in-process registry simulator, as tests/unit/test_collect_import_sim.py does.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from mirror.errors import MirrorError, UsageError, VerificationError
from mirror.importer.run import PartialImportError, import_bundle
from mirror.limits import DEFAULT_LIMITS
from mirror.trust.journal import journal_file_for
from mirror.trust.journal_read import check_journal
from mirror.trust.keys import generate
from mirror.trust.state import load_state
from tests.support.journals import lines, rewrite
from tests.support.signedbundles import SmallBundle, make_trust, sign
from tests.unit.registry_sim import RegistrySim
from tests.unit.test_collect_import_sim import INTERNAL, UPSTREAM, _collect, _policy, _upstream
from tests.unit.test_collect_import_sim import collector_key as collector_key  # the fixture

ONE_ATTEMPT = replace(DEFAULT_LIMITS, max_attempts=1)
TARGET = f"https://{INTERNAL}/mirror"


@pytest.fixture
def signed(tmp_path: Path, collector_key: tuple[Path, Path]) -> tuple[Path, Path, dict[str, str]]:
    """A signed bundle of two images, the policy that accepts it, and the images' digests by `repo:tag`."""
    upstream, digests = _upstream()
    return _collect(tmp_path, upstream, collector_key[0]), _policy(tmp_path, collector_key[1]), digests


def journal(policy: Path) -> list[dict[str, Any]]:
    state_file = policy.parent / "state.json"
    if not journal_file_for(state_file).exists():
        return []
    return [json.loads(line) for line in lines(state_file)]


def _edit_policy(policy: Path, **changes: object) -> None:
    body = yaml.safe_load(policy.read_text())
    body.update(changes)
    policy.write_text(yaml.safe_dump(body))


def test_an_import_appends_one_entry_with_what_it_landed_and_moves_the_head(
    signed: tuple[Path, Path, dict[str, str]], collector_key: tuple[Path, Path]
) -> None:
    bundle, policy, digests = signed
    import_bundle(bundle, TARGET, trust=policy, transport=RegistrySim(INTERNAL).transport())
    [entry] = journal(policy)
    inventory = json.loads((bundle / "inventory.json").read_bytes())
    assert (entry["kind"], entry["result"], entry["exitCode"]) == ("import", "imported", 0)
    assert entry["bundleId"] == inventory["bundleId"] and entry["sequence"] == 1
    assert entry["inventory"].startswith("sha256:") and entry["problems"] == []
    assert entry["collectors"] == [generate_key_id(collector_key[1])] and entry["approvers"] == []
    assert entry["registry"] == TARGET and entry["git"] is None
    landed = {(i["repository"], i["tag"]): i["digest"] for i in entry["written"]["images"]}
    assert landed == {(f"mirror/{r.split(':')[0]}", r.split(":")[1]): d for r, d in digests.items()}
    assert {i["status"] for i in entry["written"]["images"]} == {"pushed"}
    multi = next(i for i in entry["written"]["images"] if i["repository"] == "mirror/team/multi")
    assert len(multi["manifests"]) == 3  # the index and its two platforms
    state = load_state(policy.parent / "state.json")
    assert state.journal is not None and state.journal.entries == 1
    assert check_journal(policy.parent / "state.json").problems == []


def generate_key_id(public: Path) -> str:
    from mirror.trust.keys import load_public_key

    return load_public_key(public).key_id


def test_a_second_import_of_the_same_bundle_appends_a_second_entry_listing_the_same_images(
    signed: tuple[Path, Path, dict[str, str]],
) -> None:
    bundle, policy, _ = signed
    internal = RegistrySim(INTERNAL)
    import_bundle(bundle, TARGET, trust=policy, transport=internal.transport())
    import_bundle(bundle, TARGET, trust=policy, transport=internal.transport())
    first, second = journal(policy)
    assert second["seq"] == 2 and second["result"] == "imported"
    assert {i["status"] for i in second["written"]["images"]} == {"unchanged"}
    assert [i["digest"] for i in second["written"]["images"]] == [i["digest"] for i in first["written"]["images"]]


def test_a_refused_bundle_appends_one_entry_with_its_problem_codes_and_records_no_sequence(
    tmp_path: Path, signed: tuple[Path, Path, dict[str, str]]
) -> None:
    bundle, policy, _ = signed
    generate(str(policy.parent / "other"), env={})
    _edit_policy(policy, collectors={"keys": ["other.pub"], "threshold": 1})
    internal = RegistrySim(INTERNAL)
    with pytest.raises(VerificationError):
        import_bundle(bundle, TARGET, trust=policy, transport=internal.transport())
    [entry] = journal(policy)
    assert (entry["result"], entry["exitCode"]) == ("refused", 3)
    assert "COLLECTOR_THRESHOLD" in entry["problems"] and entry["written"] is None
    assert entry["bundleId"] is not None and entry["collectors"] == []
    assert load_state(policy.parent / "state.json").collectors == {}
    assert internal.registry_requests("PUT") == []


def test_a_plan_refusal_after_the_lock_appends_one_entry_with_exit_code_2(
    tmp_path: Path, signed: tuple[Path, Path, dict[str, str]]
) -> None:
    bundle, policy, _ = signed
    with pytest.raises(UsageError):
        import_bundle(
            bundle, TARGET, trust=policy, transport=RegistrySim(INTERNAL).transport(), flux_out=tmp_path / "flux"
        )
    [entry] = journal(policy)
    assert (entry["result"], entry["exitCode"]) == ("refused", 2)
    assert "Flux" in entry["message"]


def test_a_registry_that_cannot_be_reached_appends_a_failed_entry_and_records_no_sequence(
    signed: tuple[Path, Path, dict[str, str]],
) -> None:
    bundle, policy, _ = signed
    with pytest.raises(MirrorError):
        import_bundle(bundle, "http://127.0.0.1:1/rt", trust=policy, limits=ONE_ATTEMPT)
    [entry] = journal(policy)
    assert (entry["result"], entry["exitCode"], entry["written"]) == ("failed", 4, None)
    assert load_state(policy.parent / "state.json").collectors == {}


def test_a_partial_import_appends_one_entry_with_its_plan_and_how_far_it_got(
    signed: tuple[Path, Path, dict[str, str]],
) -> None:
    bundle, policy, digests = signed
    internal = RegistrySim(INTERNAL)
    internal.fail(99, 500, match=lambda r: r.method == "PUT" and "/manifests/" in r.url.path)
    with pytest.raises(PartialImportError):
        import_bundle(bundle, TARGET, trust=policy, transport=internal.transport(), limits=ONE_ATTEMPT)
    [entry] = journal(policy)
    assert (entry["result"], entry["exitCode"]) == ("partial", 4)
    assert entry["progress"]["stateRecorded"] is True and entry["progress"]["registryWriteRequests"] > 0
    assert {i["digest"] for i in entry["written"]["images"]} == set(digests.values())
    assert {i["status"] for i in entry["written"]["images"]} == {None}
    assert entry["problems"] or entry["message"]


def test_a_refusal_before_the_lock_appends_nothing(signed: tuple[Path, Path, dict[str, str]]) -> None:
    bundle, policy, _ = signed
    with pytest.raises(UsageError):
        import_bundle(bundle, TARGET, trust=policy, allow_unsigned=True)
    assert journal(policy) == []


def test_a_dry_run_appends_nothing(signed: tuple[Path, Path, dict[str, str]]) -> None:
    bundle, policy, _ = signed
    import_bundle(bundle, TARGET, trust=policy, dry_run=True, transport=RegistrySim(INTERNAL).transport())
    assert journal(policy) == []


def test_a_truncated_journal_refuses_the_import_before_anything_is_read_or_written(
    signed: tuple[Path, Path, dict[str, str]],
) -> None:
    bundle, policy, _ = signed
    internal = RegistrySim(INTERNAL)
    import_bundle(bundle, TARGET, trust=policy, transport=internal.transport())
    import_bundle(bundle, TARGET, trust=policy, transport=internal.transport())
    state_file = policy.parent / "state.json"
    rewrite(state_file, lines(state_file)[:1])
    before = (journal_file_for(state_file).read_bytes(), state_file.read_bytes(), len(internal.requests))
    with pytest.raises(VerificationError) as refused:
        import_bundle(bundle, TARGET, trust=policy, transport=internal.transport())
    assert refused.value.exit_code == 3
    assert [p.code for p in refused.value.problems] == ["JOURNAL_TRUNCATED"]
    assert (journal_file_for(state_file).read_bytes(), state_file.read_bytes(), len(internal.requests)) == before


# --- --importer-key ------------------------------------------------------------------------------------------


def test_the_importer_key_signs_the_entry_and_the_policy_verifies_it(
    tmp_path: Path, signed: tuple[Path, Path, dict[str, str]]
) -> None:
    bundle, policy, _ = signed
    key, _, key_id = generate(str(policy.parent / "importer"), env={})
    _edit_policy(policy, importers={"keys": ["importer.pub"]})
    import_bundle(bundle, TARGET, trust=policy, importer_key=key, transport=RegistrySim(INTERNAL).transport())
    [entry] = journal(policy)
    assert entry["signature"]["keyid"] == key_id


def test_a_policy_with_importer_keys_refuses_an_import_without_one_before_the_lock(
    signed: tuple[Path, Path, dict[str, str]],
) -> None:
    bundle, policy, _ = signed
    generate(str(policy.parent / "importer"), env={})
    _edit_policy(policy, importers={"keys": ["importer.pub"]})
    with pytest.raises(UsageError, match="--importer-key") as refused:
        import_bundle(bundle, TARGET, trust=policy, transport=RegistrySim(INTERNAL).transport())
    assert refused.value.exit_code == 2
    assert journal(policy) == [] and not (policy.parent / "state.json").exists()


def test_an_importer_key_the_policy_does_not_list_is_refused(
    signed: tuple[Path, Path, dict[str, str]],
) -> None:
    bundle, policy, _ = signed
    generate(str(policy.parent / "importer"), env={})
    other, _, _ = generate(str(policy.parent / "other"), env={})
    _edit_policy(policy, importers={"keys": ["importer.pub"]})
    with pytest.raises(UsageError, match="importers"):
        import_bundle(bundle, TARGET, trust=policy, importer_key=other, transport=RegistrySim(INTERNAL).transport())
    assert journal(policy) == []


def test_an_importer_key_with_allow_unsigned_is_a_usage_error(
    tmp_path: Path, signed: tuple[Path, Path, dict[str, str]]
) -> None:
    bundle, _, _ = signed
    key, _, _ = generate(str(tmp_path / "importer"), env={})
    with pytest.raises(UsageError, match="--importer-key"):
        import_bundle(bundle, TARGET, allow_unsigned=True, importer_key=key)


def test_the_upstream_host_is_not_part_of_the_journal(signed: tuple[Path, Path, dict[str, str]]) -> None:
    bundle, policy, _ = signed
    import_bundle(bundle, TARGET, trust=policy, transport=RegistrySim(INTERNAL).transport())
    assert UPSTREAM not in json.dumps(journal(policy)[0]["written"])


def test_a_hostile_bundle_id_is_cut_in_the_entry_and_the_refusal_still_journaled(tmp_path: Path) -> None:
    trust = make_trust(tmp_path / "trust")
    bundle = SmallBundle(tmp_path / "bundle", bundle_id="x" * 100_000)
    bundle.image("upstream.test/team/app:1.0")
    bundle.finish()
    sign(bundle.root, trust)
    with pytest.raises(VerificationError):
        import_bundle(bundle.root, TARGET, trust=trust.policy, transport=RegistrySim(INTERNAL).transport())
    [entry] = journal(trust.policy)
    assert entry["result"] == "refused"
    assert len(entry["bundleId"]) == DEFAULT_LIMITS.max_journal_message_chars and "bundleId" in entry["notes"][0]


def test_an_import_interrupted_after_its_first_write_appends_a_partial_entry_with_exit_130(
    signed: tuple[Path, Path, dict[str, str]],
) -> None:
    bundle, policy, _ = signed
    internal = RegistrySim(INTERNAL)

    def interrupt(request: Any) -> None:
        if request.method == "PUT" and "/manifests/" in request.url.path:
            raise KeyboardInterrupt

    internal.on_request = interrupt
    with pytest.raises(KeyboardInterrupt):
        import_bundle(bundle, TARGET, trust=policy, transport=internal.transport(), jobs=1)
    [entry] = journal(policy)
    assert (entry["result"], entry["exitCode"], entry["message"]) == ("partial", 130, "interrupted")
