"""The import journal on the real services: real imports append chained entries, and a truncated journal refuses
the next import before it writes anything (docs/journal.md)."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from mirror.trust.journal import journal_file_for
from mirror.trust.journal_read import check_journal, imported_bundles, iter_entries
from mirror.trust.keys import generate
from mirror.trust.policy import load_policy
from mirror.trust.state import JournalHead, load_state
from tests.conftest import internal_repositories
from tests.support.journals import lines, rewrite
from tests.support.signedbundles import SmallBundle, Trust, make_trust, sign


def signed_bundle(directory: Path, trust: Trust, number: int, source: str) -> tuple[Path, dict[str, str]]:
    """A bundle of one tiny image, signed and approved with sequence `number`; the image's source and digest."""
    bundle = SmallBundle(directory / f"night-{number}", bundle_id=f"night-{number}")
    bundle.image(source)
    bundle.finish()
    sign(bundle.root, trust, sequence=number)
    return bundle.root, {bundle.artifacts[0].source: bundle.artifacts[0].digest}


def tags(services: Any, repository: str) -> list[str]:
    """The repository's tags on the internal registry, read with curl (an independent client)."""
    done = subprocess.run(
        [
            *("curl", "-s", "--cacert", str(services.ca_file)),
            *("-u", f"{services.internal_user}:{services.internal_password}"),
            f"https://{services.internal}/v2/{repository}/tags/list",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return sorted(json.loads(done.stdout).get("tags") or [])


@pytest.fixture
def run_import(mirror_cli, services, internal_env, internal_url):  # type: ignore[no-untyped-def]
    def run(bundle: Path, trust: Trust, *extra: object) -> Any:
        return mirror_cli(
            "import", bundle, "--trust", trust.policy, "--registry", internal_url, "--ca-file", services.ca_file,
            "--quiet", *extra, env=internal_env,
        )  # fmt: skip

    return run


def test_two_real_imports_append_two_chained_entries_and_the_state_records_the_head(
    tmp_path, run_import, target_prefix
):
    trust = make_trust(tmp_path / "trust")
    first, first_digests = signed_bundle(tmp_path, trust, 1, "upstream.example/team/app:1.0")
    second, second_digests = signed_bundle(tmp_path, trust, 2, "upstream.example/team/app:2.0")
    for bundle in (first, second):
        result = run_import(bundle, trust)
        assert result.exit_code == 0, result.stderr

    state_file = trust.policy.parent / "state.json"
    one, two = lines(state_file)
    entries = [json.loads(line) for line in (one, two)]
    assert [(e["seq"], e["kind"], e["result"], e["bundleId"]) for e in entries] == [
        (1, "import", "imported", "night-1"),
        (2, "import", "imported", "night-2"),
    ]
    assert entries[0]["prev"] is None
    assert entries[1]["prev"] == "sha256:" + hashlib.sha256(one).hexdigest()
    assert entries[1]["approvers"] == [trust.officer.public.key_id]
    assert load_state(state_file).journal == JournalHead(2, hashlib.sha256(two).hexdigest())
    assert check_journal(state_file).problems == []

    bundles = imported_bundles(iter_entries(journal_file_for(state_file)))
    landed = {(i.repository, i.tag): i.digest for b in bundles for i in b.images}
    assert landed == {
        (f"{target_prefix}/team/app", "1.0"): first_digests["upstream.example/team/app:1.0"],
        (f"{target_prefix}/team/app", "2.0"): second_digests["upstream.example/team/app:2.0"],
    }


def test_a_truncated_journal_refuses_the_third_import_and_nothing_is_written(
    tmp_path, run_import, services, target_prefix
):
    trust = make_trust(tmp_path / "trust")
    for number in (1, 2):
        bundle, _ = signed_bundle(tmp_path, trust, number, f"upstream.example/team/app:{number}.0")
        assert run_import(bundle, trust).exit_code == 0
    state_file = trust.policy.parent / "state.json"
    rewrite(state_file, lines(state_file)[:1])  # the last entry removed
    state_before, journal_before = state_file.read_bytes(), journal_file_for(state_file).read_bytes()
    repositories_before = internal_repositories(services, target_prefix)

    third, _ = signed_bundle(tmp_path, trust, 3, "upstream.example/team/other:3.0")
    result = run_import(third, trust)

    assert result.exit_code == 3, result.stdout + result.stderr
    assert "JOURNAL_TRUNCATED" in result.stderr and "Traceback" not in result.stderr
    assert internal_repositories(services, target_prefix) == repositories_before == [f"{target_prefix}/team/app"]
    assert tags(services, f"{target_prefix}/team/app") == ["1.0", "2.0"]
    assert (state_file.read_bytes(), journal_file_for(state_file).read_bytes()) == (state_before, journal_before)


def test_importer_key_signs_the_entry_a_policy_listing_it_requires(tmp_path, run_import):
    trust = make_trust(tmp_path / "trust")
    _, _, key_id = generate(str(tmp_path / "trust" / "importer"), env={})
    policy = json.loads(trust.policy.read_text())
    trust.policy.write_text(json.dumps({**policy, "importers": {"keys": ["importer.pub"]}}))
    bundle, _ = signed_bundle(tmp_path, trust, 1, "upstream.example/team/app:1.0")

    unsigned = run_import(bundle, trust)
    assert unsigned.exit_code == 2 and "--importer-key" in unsigned.stderr, unsigned.stderr
    signed = run_import(bundle, trust, "--importer-key", tmp_path / "trust" / "importer.key")
    assert signed.exit_code == 0, signed.stderr

    state_file = trust.policy.parent / "state.json"
    [entry] = [json.loads(line) for line in lines(state_file)]
    assert entry["signature"]["keyid"] == key_id
    assert check_journal(state_file, importers=load_policy(trust.policy).importers).problems == []
