"""`mirror audit` against the in-process registry simulator: bundles imported for real, then the registry
changed behind the journal's back (docs/audit.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mirror.audit.run import audit
from mirror.bundle.inventory import ArtifactRecord
from mirror.errors import DriftError, UsageError
from mirror.importer.run import import_bundle
from mirror.oci import mediatypes as mt
from mirror.trust.dsse import parse_envelope
from mirror.trust.journal import JournalError
from mirror.trust.keys import load_public_key
from tests.support.journals import lines, rewrite
from tests.support.signedbundles import OCI_CONFIG, OCI_LAYER, SmallBundle, Trust, make_trust, sign
from tests.unit.registry_sim import RegistrySim

INTERNAL = "internal.test"
TARGET = f"https://{INTERNAL}/mirror"
APP, WEB = "upstream.example/team/app:1.0", "upstream.example/team/web:2.0"


def bundle_of(directory: Path, trust: Trust, number: int, images: dict[str, str]) -> Path:
    """A signed bundle numbered `number` of one tiny image per source; `images` maps each source to a word that
    makes its content (the same word, the same digest)."""
    bundle = SmallBundle(directory / f"night-{number}", bundle_id=f"night-{number}")
    for source, word in images.items():
        config = json.dumps({"os": "linux", "architecture": "amd64", "word": word}).encode()
        digest, size = bundle._manifest(config, OCI_CONFIG, f"layer {word}".encode(), OCI_LAYER)
        bundle.artifacts.append(ArtifactRecord("image", source, digest, mt.OCI_MANIFEST, size, {}))
    bundle.finish()
    sign(bundle.root, trust, sequence=number)
    return bundle.root


@pytest.fixture
def trust(tmp_path: Path) -> Trust:
    return make_trust(tmp_path / "trust")


@pytest.fixture
def sim(tmp_path: Path, trust: Trust) -> RegistrySim:
    """The internal registry after one import of night-1: team/app:1.0 and team/web:2.0."""
    registry = RegistrySim(INTERNAL)
    first = bundle_of(tmp_path, trust, 1, {APP: "app-1", WEB: "web-1"})
    import_bundle(first, TARGET, trust=trust.policy, transport=registry.transport())
    return registry


def run(trust: Trust, sim: RegistrySim, **options: object):  # type: ignore[no-untyped-def]
    return audit(trust.policy, TARGET, transport=sim.transport(), jobs=2, **options)  # type: ignore[arg-type]


def codes(report) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    return [(d.code, d.subject) for d in report.drift.sorted()]


def digest_of(sim: RegistrySim, repository: str, tag: str) -> str:
    from mirror.oci.digest import sha256_digest

    return sha256_digest(sim.manifests[repository][tag][0])


def test_an_audit_right_after_an_import_is_clean(trust: Trust, sim: RegistrySim) -> None:
    report = run(trust, sim)
    assert report.clean and codes(report) == []
    assert [b.bundle_id for b in report.bundles] == ["night-1"] and report.sequences == "1"
    checked = report.registry_checked
    assert (checked.tags, checked.manifests, checked.blobs, checked.catalog) == (2, 2, 4, True)
    report.require_clean()


def test_a_tag_pushed_onto_another_manifest_is_tag_moved_naming_both_digests(trust: Trust, sim: RegistrySim) -> None:
    before = digest_of(sim, "mirror/team/app", "1.0")
    sim.manifests["mirror/team/app"]["1.0"] = sim.manifests["mirror/team/web"]["2.0"]
    report = run(trust, sim)
    [drift] = report.drift.sorted()
    assert (drift.code, drift.subject) == ("TAG_MOVED", "mirror/team/app:1.0")
    assert (drift.expected, drift.found) == (before, digest_of(sim, "mirror/team/web", "2.0"))
    with pytest.raises(DriftError) as raised:
        report.require_clean()
    assert raised.value.exit_code == 5


def test_a_deleted_tag_is_tag_missing(trust: Trust, sim: RegistrySim) -> None:
    del sim.manifests["mirror/team/web"]["2.0"]
    assert codes(run(trust, sim)) == [("TAG_MISSING", "mirror/team/web:2.0")]


def test_a_deleted_manifest_is_manifest_missing_and_its_tag_missing(trust: Trust, sim: RegistrySim) -> None:
    digest = digest_of(sim, "mirror/team/web", "2.0")
    del sim.manifests["mirror/team/web"]["2.0"], sim.manifests["mirror/team/web"][digest]
    assert codes(run(trust, sim)) == [  # in the order of what they concern
        ("TAG_MISSING", "mirror/team/web:2.0"),
        ("MANIFEST_MISSING", f"mirror/team/web@{digest}"),
    ]


def test_a_deleted_layer_is_blob_missing(trust: Trust, sim: RegistrySim) -> None:
    manifest = json.loads(sim.manifests["mirror/team/app"]["1.0"][0])
    layer = manifest["layers"][0]["digest"]
    del sim.blobs["mirror/team/app"][layer]
    [drift] = run(trust, sim).drift.sorted()
    assert (drift.code, drift.subject) == ("BLOB_MISSING", f"mirror/team/app@{layer}")


def test_each_blob_is_asked_once_per_repository(trust: Trust, sim: RegistrySim) -> None:
    sim.requests.clear()
    run(trust, sim)
    heads = [r.url.path for r in sim.registry_requests("HEAD", "blobs")]
    assert len(heads) == len(set(heads)) == 4


def test_a_tagged_image_costs_one_manifest_request_where_it_points_and_what_it_holds(
    trust: Trust, sim: RegistrySim
) -> None:
    sim.requests.clear()
    run(trust, sim)
    manifests = [(r.method, r.url.path) for r in sim.registry_requests(kind="manifests")]
    assert sorted(manifests) == [
        ("GET", "/v2/mirror/team/app/manifests/1.0"),
        ("GET", "/v2/mirror/team/web/manifests/2.0"),
    ]


def test_a_tag_side_loaded_into_an_imported_repository_is_tag_unexpected(trust: Trust, sim: RegistrySim) -> None:
    sim.manifests["mirror/team/app"]["debug"] = sim.manifests["mirror/team/app"]["1.0"]
    assert codes(run(trust, sim)) == [("TAG_UNEXPECTED", "mirror/team/app:debug")]


def test_a_repository_no_import_wrote_is_repository_unexpected(trust: Trust, sim: RegistrySim) -> None:
    sim.manifests["mirror/side/loaded"]["1"] = sim.manifests["mirror/team/app"]["1.0"]
    sim.manifests["elsewhere/not/ours"]["1"] = sim.manifests["mirror/team/app"]["1.0"]  # outside the prefix
    assert codes(run(trust, sim)) == [("REPOSITORY_UNEXPECTED", "mirror/side/loaded")]


def test_only_journaled_looks_for_nothing_the_journal_never_wrote(trust: Trust, sim: RegistrySim) -> None:
    sim.manifests["mirror/team/app"]["debug"] = sim.manifests["mirror/team/app"]["1.0"]
    sim.manifests["mirror/side/loaded"]["1"] = sim.manifests["mirror/team/app"]["1.0"]
    report = run(trust, sim, only_journaled=True)
    assert report.clean and report.registry_checked.catalog is None


def test_a_registry_without_a_catalog_is_noted_not_drift(trust: Trust, sim: RegistrySim) -> None:
    sim.catalog = False
    report = run(trust, sim)
    assert report.clean and report.registry_checked.catalog is False
    assert any("_catalog" in note for note in report.notes)


def test_a_referrers_fallback_tag_of_an_imported_manifest_is_expected_and_of_another_is_not(
    trust: Trust, sim: RegistrySim
) -> None:
    digest = digest_of(sim, "mirror/team/app", "1.0")
    index = json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": []}).encode()
    sim.add_manifest("mirror/team/app", index, mt.OCI_INDEX, tag=digest.replace(":", "-"))
    sim.add_manifest("mirror/team/app", index, mt.OCI_INDEX, tag="sha256-" + "0" * 64)
    assert codes(run(trust, sim)) == [("TAG_UNEXPECTED", "mirror/team/app:sha256-" + "0" * 64)]


def test_a_later_bundle_that_moved_the_tag_leaves_the_audit_clean(
    tmp_path: Path, trust: Trust, sim: RegistrySim
) -> None:
    second = bundle_of(tmp_path, trust, 2, {APP: "app-2"})
    import_bundle(second, TARGET, trust=trust.policy, transport=sim.transport())
    report = run(trust, sim)
    assert report.clean, codes(report)
    assert [b.bundle_id for b in report.bundles] == ["night-1", "night-2"] and report.sequences == "1..2"


def test_moving_the_tag_back_after_a_later_bundle_moved_it_is_drift(
    tmp_path: Path, trust: Trust, sim: RegistrySim
) -> None:
    first = sim.manifests["mirror/team/app"]["1.0"]
    import_bundle(bundle_of(tmp_path, trust, 2, {APP: "app-2"}), TARGET, trust=trust.policy, transport=sim.transport())
    sim.manifests["mirror/team/app"]["1.0"] = first
    assert codes(run(trust, sim)) == [("TAG_MOVED", "mirror/team/app:1.0")]


def test_a_truncated_journal_is_refused_with_exit_3_before_any_registry_request(trust: Trust, sim: RegistrySim) -> None:
    state_file = trust.policy.parent / "state.json"
    rewrite(state_file, [])
    sim.requests.clear()
    with pytest.raises(JournalError) as raised:
        run(trust, sim)
    assert raised.value.exit_code == 3
    assert [p.code for p in raised.value.problems] == ["JOURNAL_TRUNCATED"]
    assert sim.requests == []


def test_an_edited_journal_entry_is_refused_with_exit_3(trust: Trust, sim: RegistrySim) -> None:
    state_file = trust.policy.parent / "state.json"
    [line] = lines(state_file)
    rewrite(state_file, [line.replace(b'"night-1"', b'"night-9"')])
    with pytest.raises(JournalError) as raised:
        run(trust, sim)
    assert [p.code for p in raised.value.problems] == ["JOURNAL_HEAD_MISMATCH"]


def test_a_registry_the_journal_never_imported_into_is_a_usage_error(trust: Trust, sim: RegistrySim) -> None:
    with pytest.raises(UsageError, match="records no import into this registry"):
        audit(trust.policy, f"https://{INTERNAL}/other", transport=sim.transport())


def test_a_clean_audit_writes_a_statement_dsse_verifies_naming_every_bundle_held(
    tmp_path: Path, trust: Trust, sim: RegistrySim
) -> None:
    statement = tmp_path / "audit.intoto.json"
    key = trust.policy.parent / "officer.key"
    report = run(trust, sim, statement=statement, key=key)
    assert report.statement == statement
    envelope = parse_envelope(statement.read_bytes(), str(statement))
    public = load_public_key(trust.policy.parent / "officer.pub")
    assert envelope.payload_type == "application/vnd.in-toto+json" and envelope.signed_by([public]) == [public]
    body = json.loads(envelope.payload)
    assert body["_type"] == "https://in-toto.io/Statement/v1"
    assert body["predicateType"] == "urn:mirror:predicate:audit:v1"
    [bundle] = report.bundles
    assert body["subject"] == [{"name": "night-1", "digest": {"sha256": bundle.inventory.removeprefix("sha256:")}}]
    predicate = body["predicate"]
    assert (predicate["clean"], predicate["drift"], predicate["registry"]) == (True, 0, TARGET)
    assert predicate["journal"] == {"entries": 1, "sha256": report.journal_head}
    assert predicate["bundles"] == [{"bundleId": "night-1", "inventory": bundle.inventory, "sequence": 1}]


def test_an_audit_with_drift_writes_no_statement_and_says_so(tmp_path: Path, trust: Trust, sim: RegistrySim) -> None:
    statement = tmp_path / "audit.intoto.json"
    del sim.manifests["mirror/team/web"]["2.0"]
    report = run(trust, sim, statement=statement, key=trust.policy.parent / "officer.key")
    assert not statement.exists() and report.statement is None
    with pytest.raises(DriftError, match=f"no statement written to {statement}"):
        report.require_clean()


def test_a_statement_without_a_key_is_a_usage_error_before_anything_is_read(
    tmp_path: Path, trust: Trust, sim: RegistrySim
) -> None:
    sim.requests.clear()
    with pytest.raises(UsageError, match="--statement FILE and --key KEY go together"):
        run(trust, sim, statement=tmp_path / "s.json")
    assert sim.requests == []


def test_the_report_as_json_counts_drift_by_code(trust: Trust, sim: RegistrySim) -> None:
    del sim.manifests["mirror/team/web"]["2.0"]
    sim.manifests["mirror/team/app"]["debug"] = sim.manifests["mirror/team/app"]["1.0"]
    document = run(trust, sim).to_json()
    assert document["clean"] is False and document["driftTotal"] == 2
    assert document["counts"] == {"TAG_MISSING": 1, "TAG_UNEXPECTED": 1}
    assert [d["code"] for d in document["drift"]] == ["TAG_UNEXPECTED", "TAG_MISSING"]
    assert document["bundles"][0]["bundleId"] == "night-1" and document["journal"]["entries"] == 1
