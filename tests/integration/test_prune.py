"""`mirror prune` on the real services: after three nights, `--keep 1` removes exactly the manifests only the
oldest night used, and the registry then holds exactly what the kept night's journal entry records
(docs/day-two.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.journals import lines
from tests.support.signedbundles import SmallBundle, Trust, make_trust, sign
from tests.support.targetstate import manifest_digest, tagged

NIGHTLY: list[dict[str, str]] = [
    # source → its content: night 2 moves `latest`; app:1.0 and old:1.0 are night 1's alone
    {"upstream.example/team/app:1.0": "app 1", "upstream.example/team/tool:1.0": "tool 1",
     "upstream.example/team/app:latest": "app 1", "upstream.example/team/old:1.0": "old 1"},
    {"upstream.example/team/app:2.0": "app 2", "upstream.example/team/tool:1.0": "tool 1",
     "upstream.example/team/app:latest": "app 2"},
    {"upstream.example/team/app:2.0": "app 2", "upstream.example/team/tool:1.0": "tool 1",
     "upstream.example/team/app:latest": "app 2"},
]  # fmt: skip


def night(directory: Path, trust: Trust, number: int) -> tuple[Path, dict[str, str]]:
    """Night `number`, signed and approved with that sequence; its images' digests by `team/NAME:TAG`."""
    bundle = SmallBundle(directory / f"night-{number}", bundle_id=f"night-{number}")
    digests = {}
    for source, content in NIGHTLY[number - 1].items():
        digests[source.split("/", 1)[1]] = bundle.image(source, content=content)
    bundle.finish()
    sign(bundle.root, trust, sequence=number)
    return bundle.root, digests


@pytest.fixture
def three_nights(tmp_path, mirror_cli, services, internal_env, internal_url) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    trust = make_trust(tmp_path / "trust")
    nights = []
    for number in (1, 2, 3):
        bundle, digests = night(tmp_path, trust, number)
        result = mirror_cli(
            "import", bundle, "--trust", trust.policy, "--registry", internal_url, "--ca-file", services.ca_file,
            "--quiet", env=internal_env,
        )  # fmt: skip
        assert result.exit_code == 0, result.stderr
        nights.append(digests)
    return {"trust": trust, "digests": nights}


@pytest.fixture
def run_prune(mirror_cli, services, internal_env, internal_url, three_nights):  # type: ignore[no-untyped-def]
    def run(*extra: object) -> Any:
        return mirror_cli(
            "prune", "--trust", three_nights["trust"].policy, "--registry", internal_url,
            "--ca-file", services.ca_file, *extra, env=internal_env,
        )  # fmt: skip

    return run


def only_night_one(three_nights: dict[str, Any], prefix: str) -> set[tuple[str, str]]:
    first = three_nights["digests"][0]
    return {(f"{prefix}/team/app", first["team/app:1.0"]), (f"{prefix}/team/old", first["team/old:1.0"])}


def test_a_dry_run_lists_exactly_what_only_the_oldest_night_used_and_deletes_nothing(
    run_prune, three_nights, services, target_prefix
):
    result = run_prune("--keep", "1", "--json")
    assert result.exit_code == 0, result.stderr
    report = result.json()
    planned = {(m["repository"], m["digest"]) for m in report["manifests"] if m["action"] == "delete"}
    assert planned == only_night_one(three_nights, target_prefix)
    assert [b["bundleId"] for b in report["kept"]] == ["night-3"] and report["dryRun"] is True
    for repository, digest in planned:
        assert manifest_digest(services, repository, digest) == digest


def test_keep_1_yes_removes_exactly_those_manifests_and_the_registry_is_what_the_kept_night_recorded(
    run_prune, three_nights, services, target_prefix
):
    before = tagged(services, target_prefix)
    result = run_prune("--keep", "1", "--yes")
    if result.exit_code == 2 and "PRUNE_DELETES_DISABLED" in result.stderr:
        pytest.skip("the running internal registry has deletes disabled: restart the services (scripts/services)")
    assert result.exit_code == 0, result.stderr
    assert "deleted 2 manifest(s)" in result.stdout and "garbage collection" in result.stdout

    for repository, digest in only_night_one(three_nights, target_prefix):
        assert manifest_digest(services, repository, digest) is None
    third = three_nights["digests"][2]
    after = tagged(services, target_prefix)
    assert after == {tuple(name.split(":")): digest for name, digest in third.items()}  # what night 3 recorded
    assert {k: v for k, v in before.items() if k in after} == after  # nothing kept moved

    state_file = three_nights["trust"].policy.parent / "state.json"
    entries = [json.loads(line) for line in lines(state_file)]
    kept = entries[2]["written"]["images"]
    assert {(i["repository"].removeprefix(f"{target_prefix}/"), i["tag"]): i["digest"] for i in kept} == after
    prune = entries[-1]
    assert (prune["kind"], prune["result"]) == ("prune", "pruned")
    assert {(d["repository"], d["digest"]) for d in prune["deleted"]} == only_night_one(three_nights, target_prefix)


def test_a_second_prune_finds_nothing_left_to_delete(run_prune):
    first = run_prune("--keep", "1", "--yes", "--json")
    if first.exit_code == 2 and "PRUNE_DELETES_DISABLED" in first.stderr:
        pytest.skip("the running internal registry has deletes disabled: restart the services (scripts/services)")
    assert first.exit_code == 0, first.stderr
    again = run_prune("--keep", "1", "--yes", "--json")
    assert again.exit_code == 0, again.stderr
    assert again.json()["deleted"] == 0
    assert {m["action"] for m in again.json()["manifests"]} == {"gone"}


def test_after_keep_1_yes_mirror_audit_finds_the_targets_clean(
    run_prune, three_nights, mirror_cli, services, internal_env, internal_url
):
    pruned = run_prune("--keep", "1", "--yes")
    if pruned.exit_code == 2 and "PRUNE_DELETES_DISABLED" in pruned.stderr:
        pytest.skip("the running internal registry has deletes disabled: restart the services (scripts/services)")
    assert pruned.exit_code == 0, pruned.stderr

    audited = mirror_cli(
        "audit", "--trust", three_nights["trust"].policy, "--registry", internal_url, "--ca-file", services.ca_file,
        "--json", env=internal_env,
    )  # fmt: skip

    assert audited.exit_code == 0, audited.stdout + audited.stderr
    assert audited.json()["drift"] == []
