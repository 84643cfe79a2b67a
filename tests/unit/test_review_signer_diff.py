"""`mirror diff` and inspect's "since base": the upstream signers of an image between two nights. A signer that
changed (or vanished) is a supply-chain alarm, highlighted in text and HTML and flagged in JSON; attached
manifests that came or went are counted, not listed as artifacts."""

from __future__ import annotations

from pathlib import Path

from mirror.bundle.inventory import ArtifactRecord, Inventory
from mirror.oci import mediatypes as mt
from mirror.oci.digest import sha256_digest
from mirror.review.diff import Diff, diff_sources
from mirror.review.html import review_html
from mirror.review.jsonout import diff_json
from mirror.review.model import build_review
from mirror.review.source import open_source
from mirror.review.text import diff_text
from mirror.supplychain.attached import COSIGN_SIGNATURE, attached_record

APP = "registry.example/team/app:1.0"
VENDOR = {"key": "aa" * 32}
STRANGER = {"key": "bb" * 32}
KEYLESS = {"issuer": "https://token.actions.githubusercontent.com", "identity": "https://github.com/acme/app"}


def _image(digest_seed: str, signers: list[dict[str, str]] | None) -> ArtifactRecord:
    extra: dict[str, object] = {"via": "listed"}
    if signers is not None:
        extra["signers"] = signers
    return ArtifactRecord("image", APP, sha256_digest(digest_seed.encode()), mt.OCI_MANIFEST, 100, extra)


def _signature(image: ArtifactRecord, seed: str) -> ArtifactRecord:
    return attached_record(
        "registry.example/team/app",
        sha256_digest(seed.encode()),
        mt.OCI_MANIFEST,
        10,
        subject=image.digest,
        artifact_type=COSIGN_SIGNATURE,
        found="cosign-tag",
        image=APP,
        tag=image.digest.replace(":", "-") + ".sig",
    )


def _inventory(path: Path, *artifacts: ArtifactRecord) -> Path:
    path.write_bytes(Inventory(path.stem, "2026-01-01T00:00:00Z", "test", artifacts, ()).to_bytes())
    return path


def _diff(tmp_path: Path, old: list[ArtifactRecord], new: list[ArtifactRecord]) -> Diff:
    before = _inventory(tmp_path / "night1.inventory.json", *old)
    after = _inventory(tmp_path / "night2.inventory.json", *new)
    return diff_sources(open_source(before), open_source(after))


def test_a_signer_that_changed_between_nights_is_an_alarm(tmp_path):
    diff = _diff(tmp_path, [_image("v1", [VENDOR])], [_image("v2", [STRANGER])])
    [change] = diff.signers
    assert (change.source, change.what, change.alarm, change.image_moved) == (APP, "signer changed", True, True)
    assert f"ALARM signer changed {APP}  key {'aa' * 32} -> key {'bb' * 32}  (tag moved)" in diff_text(diff)


def test_a_signer_that_changed_while_the_image_did_not_move_is_an_alarm_too(tmp_path):
    diff = _diff(tmp_path, [_image("v1", [VENDOR])], [_image("v1", [KEYLESS])])
    [change] = diff.signers
    assert change.alarm and not change.image_moved and diff.unchanged == 1
    assert "(same digest)" in diff_text(diff)


def test_a_second_signer_next_to_the_first_is_a_change_and_an_alarm(tmp_path):
    [change] = _diff(tmp_path, [_image("v1", [VENDOR])], [_image("v2", [VENDOR, STRANGER])]).signers
    assert change.what == "signer changed" and change.alarm


def test_a_signer_removed_from_an_image_is_an_alarm(tmp_path):
    diff = _diff(tmp_path, [_image("v1", [VENDOR])], [_image("v2", None)])
    [change] = diff.signers
    assert (change.what, change.alarm) == ("signer removed", True)
    assert f"ALARM signer removed {APP}  key {'aa' * 32} -> none" in diff_text(diff)


def test_a_signer_added_to_an_image_that_had_none_is_listed_without_an_alarm(tmp_path):
    diff = _diff(tmp_path, [_image("v1", None)], [_image("v2", [VENDOR])])
    [change] = diff.signers
    assert (change.what, change.alarm) == ("signer added", False)
    text = diff_text(diff)
    assert f"  signer added   {APP}  none -> key {'aa' * 32}" in text and "ALARM" not in text


def test_the_same_signers_in_another_order_are_no_change(tmp_path):
    assert _diff(tmp_path, [_image("v1", [VENDOR, KEYLESS])], [_image("v2", [KEYLESS, VENDOR])]).signers == []


def test_json_flags_each_signer_change_and_counts_the_alarms(tmp_path):
    body = diff_json(_diff(tmp_path, [_image("v1", [VENDOR])], [_image("v2", [KEYLESS])]))
    assert body["signers"] == [
        {
            "kind": "image",
            "source": APP,
            "change": "signer changed",
            "old": [VENDOR],
            "new": [KEYLESS],
            "imageMoved": True,
            "alarm": True,
        }
    ]
    assert (body["summary"]["signerChanges"], body["summary"]["signerAlarms"]) == (1, 1)


def test_attached_manifests_that_came_and_went_are_counted_not_listed_as_artifacts(tmp_path):
    old, new = _image("v1", [VENDOR]), _image("v2", [VENDOR])
    diff = _diff(tmp_path, [old, _signature(old, "sig1")], [new, _signature(new, "sig2"), _signature(new, "sig3")])
    assert diff.added == [] and diff.removed == [] and [c.what for c in diff.changed] == ["tag moved"]
    assert (diff.attached_added, diff.attached_removed) == (2, 1)
    assert "2 attached manifest(s) added, 1 removed" in diff_text(diff)
    summary = diff_json(diff)["summary"]
    assert (summary["attachedAdded"], summary["attachedRemoved"]) == (2, 1)


def test_the_html_report_highlights_a_signer_alarm_in_its_changes_since_base(tmp_path):
    before = _inventory(tmp_path / "night1.inventory.json", _image("v1", [VENDOR]))
    after = _inventory(tmp_path / "night2.inventory.json", _image("v2", [KEYLESS]))
    page = review_html(build_review(after, base=before))
    assert "<tr class='alarm'>" in page and "ALARM signer changed" in page
    assert ".alarm" in page.split("</style>")[0]
    changes = page.index("<h2>Changes since base</h2>")
    assert changes < page.index("ALARM signer changed") < page.index("<h2>Signatures</h2>")


def test_a_signer_added_is_not_styled_as_an_alarm_in_html(tmp_path):
    before = _inventory(tmp_path / "night1.inventory.json", _image("v1", None))
    after = _inventory(tmp_path / "night2.inventory.json", _image("v2", [VENDOR]))
    page = review_html(build_review(after, base=before))
    assert "signer added" in page and "<tr class='alarm'>" not in page


def test_hostile_signer_text_is_escaped_in_the_diff(tmp_path):
    hostile = {"issuer": "https://x\x1b[2J", "identity": "<b>me</b>"}
    diff = _diff(tmp_path, [_image("v1", [VENDOR])], [_image("v2", [hostile])])
    assert "\x1b" not in diff_text(diff)
    before = tmp_path / "night1.inventory.json"
    page = review_html(build_review(tmp_path / "night2.inventory.json", base=before))
    assert "<b>me</b>" not in page and "&lt;b&gt;me&lt;/b&gt;" in page


def test_the_diff_summary_line_counts_signer_changes_and_alarms(tmp_path):
    diff = _diff(tmp_path, [_image("v1", [VENDOR])], [_image("v2", [KEYLESS])])
    assert diff_text(diff).splitlines()[1].endswith("; 1 signer change(s), 1 ALARM(s)")


def test_the_html_diff_summary_names_the_alarms(tmp_path):
    before = _inventory(tmp_path / "night1.inventory.json", _image("v1", [VENDOR]))
    after = _inventory(tmp_path / "night2.inventory.json", _image("v2", [KEYLESS]))
    page = review_html(build_review(after, base=before))
    assert '<span class="status bad">1 supply-chain ALARM(s)</span>' in page
