"""The officer's report (`mirror inspect`, text, JSON and HTML) on small bundles built in-process: what an
officer must see before approving. See docs/officer-guide.md and docs/review.md."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import replace
from pathlib import Path

import pytest

from mirror.bundle.inventory import ArtifactRecord, HostRecord
from mirror.bundle.signatures import add_envelope
from mirror.review.diff import diff_sources
from mirror.review.html import review_html
from mirror.review.jsonout import diff_json, review_json
from mirror.review.model import build_review
from mirror.review.source import open_source
from mirror.review.text import diff_text, review_text
from mirror.trust.keys import generate, load_public_key, load_signer
from mirror.trust.sign import sign_approval, sign_collection
from tests.support.signedbundles import SmallBundle

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


class Keys:
    """A collector key and two officer keys, and a policy that wants both officers (2 of 2)."""

    def __init__(self, directory: Path, *, allowed_sources: list[str] | None = None) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.signers = {}
        for name in ("collector", "officer-a", "officer-b"):
            key, _, _ = generate(str(directory / name), env={})
            self.signers[name] = load_signer(key, env={})
        self.key_ids = {name: load_public_key(directory / f"{name}.pub").key_id for name in self.signers}
        policy = {
            "apiVersion": "mirror/v1",
            "kind": "TrustPolicy",
            "collectors": {"keys": ["collector.pub"], "threshold": 1},
            "approvers": {"keys": ["officer-a.pub", "officer-b.pub"], "threshold": 2},
            "stateFile": "state.json",
        }
        if allowed_sources is not None:
            policy["allowedSources"] = allowed_sources
        self.policy = directory / "policy.yaml"
        self.policy.write_text(json.dumps(policy))

    def collect(self, bundle: Path, collector: str = "night-collector") -> None:
        raw = (bundle / "inventory.json").read_bytes()
        envelope = sign_collection(
            self.signers["collector"],
            raw,
            bundle_id=json.loads(raw)["bundleId"],
            collector=collector,
            sequence=7,
            created=NOW,
            valid_for=dt.timedelta(days=10),
        )
        add_envelope(bundle, envelope)

    def approve(self, bundle: Path, officer: str, comment: str) -> None:
        raw = (bundle / "inventory.json").read_bytes()
        sha = hashlib.sha256(raw).hexdigest()
        envelope = sign_approval(
            self.signers[officer], sha, bundle_id=json.loads(raw)["bundleId"], comment=comment, now=NOW
        )
        add_envelope(bundle, envelope)


def small_bundle(root: Path, **inventory: object) -> Path:
    bundle = SmallBundle(root)
    bundle.image("registry.example/team/app:1.0", via="listed")
    bundle.finish(**inventory)
    return root


@pytest.fixture
def keys(tmp_path: Path) -> Keys:
    return Keys(tmp_path / "keys")


# --- the verdict before approval --------------------------------------------------------------------------


def test_a_bundle_with_fewer_approvals_than_the_policy_wants_is_awaiting_approvals_not_refused(tmp_path, keys):
    bundle = small_bundle(tmp_path / "bundle")
    keys.collect(bundle)
    keys.approve(bundle, "officer-a", "looked at it")

    review = build_review(bundle, trust=keys.policy)

    assert "signatures: awaiting 1 of 2 approvals (1 given)" in review_text(review)
    assert "REFUSED" not in review_text(review).split("upstream supply chain")[0]
    signing = review_json(review)["signing"]
    assert signing["state"] == "awaiting approval"
    assert signing["approvals"] == {"given": 1, "required": 2}
    assert "awaiting 1 of 2 approvals (1 given)" in review_html(review)


def test_a_collected_bundle_not_yet_approved_awaits_every_approval(tmp_path, keys):
    bundle = small_bundle(tmp_path / "bundle")
    keys.collect(bundle)

    review = build_review(bundle, trust=keys.policy)

    assert review.signatures.verdict == "awaiting 2 of 2 approvals (0 given)"


def test_a_bundle_the_policy_refuses_for_more_than_missing_approvals_is_refused(tmp_path):
    keys = Keys(tmp_path / "keys", allowed_sources=["elsewhere.example/*"])
    bundle = small_bundle(tmp_path / "bundle")
    keys.collect(bundle)

    review = build_review(bundle, trust=keys.policy)

    assert review.signatures.verdict == "REFUSED by the policy"
    assert review_json(review)["signing"]["state"] == "refused"


def test_a_bundle_with_every_approval_satisfies_the_policy(tmp_path, keys):
    bundle = small_bundle(tmp_path / "bundle")
    keys.collect(bundle)
    keys.approve(bundle, "officer-a", "one")
    keys.approve(bundle, "officer-b", "two")

    review = build_review(bundle, trust=keys.policy)

    assert review.signatures.verdict == "signatures satisfy the policy"
    assert review_json(review)["signing"]["state"] == "satisfied"


# --- who approved, when, and what they said ------------------------------------------------------------------


def test_an_approval_shows_the_key_name_from_the_policy_its_time_and_comment_in_text(tmp_path, keys):
    bundle = small_bundle(tmp_path / "bundle")
    keys.collect(bundle)
    keys.approve(bundle, "officer-a", "checked against CHG-1234")

    text = review_text(build_review(bundle, trust=keys.policy))

    stamp = NOW.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert f"approval by officer-a (key {keys.key_ids['officer-a']}), {stamp}: counted" in text
    assert "comment: checked against CHG-1234" in text


def test_an_approval_shows_its_key_name_in_json_and_html(tmp_path, keys):
    bundle = small_bundle(tmp_path / "bundle")
    keys.collect(bundle)
    keys.approve(bundle, "officer-a", "checked against CHG-1234")

    review = build_review(bundle, trust=keys.policy)

    [approval] = [s for s in review_json(review)["signing"]["signatures"] if s["kind"] == "approval"]
    assert approval["keyName"] == "officer-a"
    page = review_html(review)
    assert "officer-a" in page and "checked against CHG-1234" in page


def test_without_a_policy_an_approval_is_named_by_its_key_id_with_its_time_and_comment(tmp_path, keys):
    bundle = small_bundle(tmp_path / "bundle")
    keys.collect(bundle)
    keys.approve(bundle, "officer-a", "checked against CHG-1234")

    text = review_text(build_review(bundle))

    assert f"approval by key {keys.key_ids['officer-a']} (claimed), {NOW:%Y-%m-%dT%H:%M:%SZ}: unverified" in text
    assert "comment: checked against CHG-1234" in text


def test_the_collection_statement_is_listed_before_the_approvals(tmp_path, keys):
    bundle = small_bundle(tmp_path / "bundle")
    keys.collect(bundle)
    keys.approve(bundle, "officer-a", "one")
    keys.approve(bundle, "officer-b", "two")

    text = review_text(build_review(bundle, trust=keys.policy))

    headings = [line.split(" (key")[0].strip() for line in text.splitlines() if " by " in line and ": counted" in line]
    assert headings[0] == "collection by collector"
    assert sorted(headings[1:]) == ["approval by officer-a", "approval by officer-b"]


# --- the title: which MirrorSets, which collector -----------------------------------------------------------


def test_the_report_is_titled_by_the_mirrorsets_and_the_collector(tmp_path, keys):
    bundle = small_bundle(tmp_path / "bundle", mirror_sets=("platform", "apps"))
    keys.collect(bundle)

    review = build_review(bundle, trust=keys.policy)

    title = f"MirrorSets platform, apps, collected by night-collector with collector (key {keys.key_ids['collector']})"
    assert review_text(review).splitlines()[0] == title
    what, by = title.split(", collected ")
    assert f"<h1>{what}</h1><p class='byline'>collected {by}</p>" in review_html(review)
    assert review_json(review)["bundle"]["title"] == title
    assert review_json(review)["bundle"]["mirrorSets"] == ["platform", "apps"]


def test_a_collector_named_as_its_key_is_named_once_in_the_title(tmp_path, keys):
    bundle = small_bundle(tmp_path / "bundle", mirror_sets=("platform",))
    keys.collect(bundle, collector="collector")

    title = review_text(build_review(bundle, trust=keys.policy)).splitlines()[0]

    assert title == f"MirrorSet platform, collected by collector (key {keys.key_ids['collector']})"


def test_without_a_policy_the_title_names_the_collector_key_as_claimed(tmp_path, keys):
    bundle = small_bundle(tmp_path / "bundle", mirror_sets=("platform",))
    keys.collect(bundle)

    title = review_text(build_review(bundle)).splitlines()[0]

    assert title == f"MirrorSet platform, collected by night-collector with key {keys.key_ids['collector']} (claimed)"


def test_a_bundle_from_before_mirrorset_names_were_recorded_says_so_in_its_title(tmp_path, keys):
    bundle = small_bundle(tmp_path / "bundle")

    title = review_text(build_review(bundle)).splitlines()[0]

    assert title == "MirrorSets not recorded (an older bundle), not signed by a collector"


# --- upstream endpoints reached in clear text ---------------------------------------------------------------


def _hosts_bundle(root: Path) -> Path:
    hosts = (HostRecord("registry.example", "named"), HostRecord("127.0.0.1:25000", "named", plain_http=True))
    return small_bundle(root, hosts=hosts)


def test_a_host_reached_over_plain_http_is_flagged_at_the_top_and_in_the_host_list(tmp_path):
    text = review_text(build_review(_hosts_bundle(tmp_path / "bundle")))

    header = text.split("\n\n")[0]
    assert "PLAIN HTTP: 1 host(s) reached without TLS" in header and "127.0.0.1:25000" in header
    assert "  127.0.0.1:25000  named  PLAIN HTTP" in text.splitlines()
    assert "  registry.example  named" in text.splitlines()


def test_a_host_reached_over_plain_http_is_flagged_in_json_and_html(tmp_path):
    review = build_review(_hosts_bundle(tmp_path / "bundle"))

    body = review_json(review)
    assert body["plainHTTPHosts"] == ["127.0.0.1:25000"]
    assert body["hosts"] == [
        {"host": "registry.example", "how": "named", "plainHTTP": False},
        {"host": "127.0.0.1:25000", "how": "named", "plainHTTP": True},
    ]
    assert "PLAIN HTTP" in review_html(review)


def test_an_http_source_of_an_older_inventory_is_flagged_as_plain_http_too(tmp_path):
    bundle = SmallBundle(tmp_path / "bundle")
    bundle.chart("app", "1.0.0", repo="http://charts.example:8080")
    bundle.finish()

    assert review_json(build_review(tmp_path / "bundle"))["plainHTTPHosts"] == ["charts.example:8080"]


# --- an OCI chart is one artifact ---------------------------------------------------------------------------


def _oci_chart_bundle(root: Path) -> Path:
    """An OCI chart listed in a MirrorSet, and the same manifest again as the OCI artifact a Flux object names."""
    bundle = SmallBundle(root)
    bundle.chart("app", "1.0.0", repo="oci://registry.example/charts")
    listed = bundle.artifacts.pop()
    chart = ArtifactRecord("chart", "registry.example/charts/app:1.0.0", listed.digest, listed.media_type, 9, {})
    bundle.artifacts.append(replace(chart, extra={**listed.extra, "via": "listed"}))
    bundle.artifacts.append(replace(chart, kind="image", extra={"via": "flux"}))
    bundle.finish()
    return root


def test_an_oci_chart_that_a_flux_object_also_names_is_listed_once_under_charts(tmp_path):
    review = build_review(_oci_chart_bundle(tmp_path / "bundle"))

    assert [e.artifact.kind for e in review.entries] == ["chart"]
    text = review_text(review)
    assert text.count("registry.example/charts/app:1.0.0") == 1
    assert "found: listed, Flux object" in text
    assert "Images (" not in text
    assert review_json(review)["totals"]["byKind"]["image"] == 0


def test_an_oci_chart_listed_once_still_says_every_way_it_was_found_in_json_and_html(tmp_path):
    review = build_review(_oci_chart_bundle(tmp_path / "bundle"))

    [chart] = review_json(review)["artifacts"]
    assert chart["found"] == "listed" and chart["alsoFound"] == ["flux"]
    assert review_html(review).count("registry.example/charts/app:1.0.0") == 1


# --- Flux objects -------------------------------------------------------------------------------------------


def _object(kind: str, namespace: str, name: str, spec: dict, api: str = "source.toolkit.fluxcd.io/v1") -> dict:
    return {"apiVersion": api, "kind": kind, "metadata": {"name": name, "namespace": namespace}, "spec": spec}


RELEASE = "helm.toolkit.fluxcd.io/v2"


def _fleet(root: Path, objects: list[dict], bundle_id: str = "b-fleet") -> Path:
    bundle = SmallBundle(root, bundle_id=bundle_id)
    bundle.flux("https://git.example/fleet.git", "clusters/prod", objects)
    bundle.finish()
    return root


def test_inspect_lists_each_flux_object_by_kind_namespace_and_name(tmp_path):
    bundle = _fleet(
        tmp_path / "bundle",
        [
            _object("GitRepository", "flux-system", "apps", {"url": "https://git.example/apps.git"}),
            _object("HelmRelease", "apps", "web", {"chart": {"spec": {"version": "1.0.0"}}}, RELEASE),
        ],
    )

    review = build_review(bundle)

    lines = review_text(review).splitlines()
    assert "      2 object(s):" in lines
    assert "        GitRepository flux-system/apps" in lines and "        HelmRelease apps/web" in lines
    [fleet] = review_json(review)["artifacts"]
    assert fleet["objects"] == [
        {"apiVersion": RELEASE, "kind": "HelmRelease", "namespace": "apps", "name": "web"},
        {
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": "GitRepository",
            "namespace": "flux-system",
            "name": "apps",
        },
    ]
    assert "HelmRelease" in review_html(review) and "flux-system/apps" in review_html(review)


def _two_fleets(tmp_path: Path) -> tuple[Path, Path]:
    old = _fleet(
        tmp_path / "old",
        [
            _object("GitRepository", "flux-system", "apps", {"url": "https://git.example/apps.git"}),
            _object("HelmRelease", "apps", "web", {"chart": {"spec": {"version": "1.0.0"}}, "interval": "5m"}, RELEASE),
            _object("Secret", "apps", "token", {}, "v1") | {"stringData": {"token": "old-secret-value"}},
        ],
        "b-old",
    )
    new = _fleet(
        tmp_path / "new",
        [
            _object("HelmRelease", "apps", "web", {"chart": {"spec": {"version": "1.1.0"}}, "interval": "5m"}, RELEASE),
            _object("OCIRepository", "flux-system", "charts", {"url": "oci://registry.example/charts"}),
            _object("Secret", "apps", "token", {}, "v1") | {"stringData": {"token": "new-secret-value"}},
        ],
        "b-new",
    )
    return old, new


def test_the_diff_names_each_flux_object_added_removed_and_changed_with_the_fields_that_changed(tmp_path):
    old, new = _two_fleets(tmp_path)

    lines = diff_text(diff_sources(open_source(old), open_source(new))).splitlines()

    assert '    HelmRelease apps/web changed: spec.chart.spec.version "1.0.0" -> "1.1.0"' in lines
    assert "    OCIRepository flux-system/charts added" in lines
    assert "    GitRepository flux-system/apps removed" in lines


def test_the_diff_of_a_flux_secret_names_the_fields_that_changed_but_never_their_values(tmp_path):
    old, new = _two_fleets(tmp_path)

    diff = diff_sources(open_source(old), open_source(new))

    shown = diff_text(diff) + json.dumps(diff_json(diff))
    assert "    Secret apps/token changed: stringData.token (value not shown)" in diff_text(diff).splitlines()
    assert "secret-value" not in shown


def test_the_diff_json_lists_flux_object_changes_per_fleet(tmp_path):
    old, new = _two_fleets(tmp_path)

    [fleet] = diff_json(diff_sources(open_source(old), open_source(new)))["flux"]

    assert fleet["source"] == "https://git.example/fleet.git" and fleet["path"] == "clusters/prod"
    changes = {(o["kind"], o["change"]): o for o in fleet["objects"]}
    assert set(changes) == {
        ("HelmRelease", "changed"),
        ("OCIRepository", "added"),
        ("GitRepository", "removed"),
        ("Secret", "changed"),
    }
    assert changes[("HelmRelease", "changed")]["fields"] == [
        {"path": "spec.chart.spec.version", "old": "1.0.0", "new": "1.1.0"}
    ]


def test_a_flux_objects_blob_that_does_not_match_its_digest_is_noted_and_its_objects_not_listed(tmp_path):
    bundle = _fleet(tmp_path / "bundle", [_object("GitRepository", "flux-system", "apps", {})])
    [blob] = [p for p in (bundle / "blobs" / "sha256").iterdir() if b"FluxObjects" in p.read_bytes()]
    blob.write_bytes(blob.read_bytes().replace(b"apps", b"evil"))

    [fleet] = review_json(build_review(bundle))["artifacts"]

    assert fleet["objects"] == []
    assert any("does not match its digest" in n for n in fleet["notes"])


def test_the_report_with_a_base_shows_the_flux_object_changes_in_html(tmp_path):
    old, new = _two_fleets(tmp_path)

    page = review_html(build_review(new, base=old))

    assert "HelmRelease" in page and "apps/web" in page
    assert "spec.chart.spec.version" in page and "&quot;1.0.0&quot; -&gt; &quot;1.1.0&quot;" in page
    assert "secret-value" not in page


# --- what changed: added artifacts, removals, supply-chain events --------------------------------------------


def _nights(tmp_path: Path) -> tuple[Path, Path]:
    """Night 1: app:1.0 and old:1.0. Night 2: app:1.0 on another digest (signed by someone else), old:1.0 gone,
    and new:2.0 added through a chart (a 10,000-byte layer)."""
    first = SmallBundle(tmp_path / "night1", bundle_id="night1")
    first.image("registry.example/team/app:1.0", via="listed", signers=[{"key": "aa" * 32}])
    first.image("registry.example/team/old:1.0", via="listed")
    first.finish()
    second = SmallBundle(tmp_path / "night2", bundle_id="night2")
    second.image("registry.example/team/app:1.0", layer=b"moved", via="listed", signers=[{"key": "bb" * 32}])
    second.image("registry.example/team/new:2.0", layer=b"x" * 10_000, via="chart", foundBy=["chart web@1.0.0"])
    second.finish()
    return first.root, second.root


def test_an_added_artifact_shows_its_size_and_how_it_was_found(tmp_path):
    old, new = _nights(tmp_path)

    diff = diff_sources(open_source(old), open_source(new))

    [line] = [x for x in diff_text(diff).splitlines() if "added " in x and "new:2.0" in x]
    assert line.endswith("10.5 KB  found: chart discovery")
    [added] = diff_json(diff)["added"]
    assert added["found"] == "chart" and 10_000 < added["size"] < 11_000


def test_an_added_artifact_of_an_inventory_file_says_its_size_was_not_read(tmp_path):
    old, new = _nights(tmp_path)

    diff = diff_sources(open_source(old / "inventory.json"), open_source(new / "inventory.json"))

    [line] = [x for x in diff_text(diff).splitlines() if "added " in x]
    assert "size not read" in line and "found: chart discovery" in line
    assert diff_json(diff)["added"][0]["size"] is None


def test_removed_artifacts_are_said_to_stay_on_the_targets_after_import(tmp_path):
    old, new = _nights(tmp_path)

    diff = diff_sources(open_source(old), open_source(new))

    assert any("registry.example/team/old:1.0" in x and "removed" in x for x in diff_text(diff).splitlines())
    assert "import never deletes: the 1 removed artifact(s) stay on the targets" in diff_text(diff)
    assert "import never deletes" in review_html(build_review(new, base=old))


def test_a_moved_tag_and_a_changed_signer_come_first_as_supply_chain_events(tmp_path):
    old, new = _nights(tmp_path)

    text = review_text(build_review(new, base=old))

    events = text[text.index("supply-chain events (2)") : text.index("since base")].splitlines()
    assert events[1].startswith("  ALARM  signer changed  registry.example/team/app:1.0")
    assert events[2].startswith("  CHECK  tag moved  registry.example/team/app:1.0")


def test_supply_chain_events_are_listed_in_json_and_marked_in_html(tmp_path):
    old, new = _nights(tmp_path)
    review = build_review(new, base=old)

    events = review_json(review)["sinceBase"]["supplyChainEvents"]
    assert [(e["event"], e["alarm"]) for e in events] == [("signer changed", True), ("tag moved", False)]
    page = review_html(review)
    assert page.index("Supply-chain events") < page.index("Changes since base")
    assert "ALARM" in page[page.index("Supply-chain events") : page.index("Changes since base")]


def test_a_chart_republished_under_the_same_version_is_a_supply_chain_event(tmp_path):
    first = SmallBundle(tmp_path / "night1")
    first.chart("web", "1.0.0", archive=b"first")
    first.finish()
    second = SmallBundle(tmp_path / "night2")
    second.chart("web", "1.0.0", archive=b"second")
    second.finish()

    diff = diff_sources(open_source(first.root), open_source(second.root))

    assert [e.what for e in diff.events] == ["chart republished"]


def test_a_report_without_a_base_says_how_to_see_supply_chain_events(tmp_path):
    _, new = _nights(tmp_path)

    assert "supply-chain events: give --base PREV" in review_text(build_review(new))
