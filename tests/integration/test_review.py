"""Officer review on real bundles: `mirror inspect` (text, JSON, HTML in headless Chromium) and `mirror diff`
across three nights of one upstream (an image tag that moves, a chart that gets a new version, a branch that
gains commits, an image that is added)."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.browser import Browser, png_size
from tests.support.charts import ChartRepo, build_chart
from tests.support.gitrepos import add_commit, make_upstream_repo
from tests.support.images import Image, Layer, Layout, push
from tests.support.mirrorsets import mirrorset
from tests.support.services import UPSTREAM_REGISTRY

UPSTREAM = {UPSTREAM_REGISTRY: {"plainHTTP": True}}
HOSTILE_LABEL = "<script>alert('x')</script>"


@dataclass
class Night:
    bundle: Path
    image_digest: str  # web:1.0 that night
    chart_version: str
    branch_tip: str


@dataclass
class Nights:
    prefix: str
    web: str  # the image reference, web:1.0
    added: str  # web:1.1, listed from the third night on
    subjects: list[str]  # the commit subjects added between night 1 and night 2
    nights: list[Night]
    policy: Path
    collector_key_id: str
    officer_key_id: str


def _push_image(services, layout_dir: Path, reference: str, seed: str) -> str:
    image = Image(
        [Layer.from_seed(seed)],
        labels={"org.opencontainers.image.title": f"web {seed}", "review.test/note": HOSTILE_LABEL},
    )
    Layout(layout_dir).add(seed, image)
    push(layout_dir, seed, reference)
    return image.digest


def _manifest(work: Path, web: str, extra: list[str], repo_url: str, git_url: str) -> Path:
    document = mirrorset([web, *extra], registries=UPSTREAM)
    document["spec"]["charts"] = [{"name": "review", "repo": repo_url}]
    document["spec"]["git"] = [{"name": "fleet", "url": git_url, "ref": {"branch": "main"}}]
    path = work / f"night-{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(json.dumps(document))
    return path


def _run(mirror_cli, *args: str) -> None:
    result = mirror_cli(*args)
    assert result.exit_code == 0, result.stderr


@pytest.fixture(scope="module")
def nights(services, tmp_path_factory) -> Nights:
    """Three full collects of three successive states of an upstream of this module's own, signed and approved."""
    from typer.testing import CliRunner

    from mirror.cli import app

    def mirror_cli(*args):
        result = CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)
        return result

    work = tmp_path_factory.mktemp("review")
    prefix = f"t{uuid.uuid4().hex[:8]}"
    web = f"{services.upstream}/{prefix}/web:1.0"
    added = f"{services.upstream}/{prefix}/web:1.1"
    charts = ChartRepo(services.charts_dir / prefix, f"{services.charts_url}/{prefix}")
    repo = make_upstream_repo(services, f"{prefix}/fleet")
    for name in ("collector", "officer"):
        _run(mirror_cli, "keygen", str(work / name))
    key_ids = {}
    for name in ("collector", "officer"):
        from mirror.trust.keys import load_public_key

        key_ids[name] = load_public_key(work / f"{name}.pub").key_id
    policy = work / "policy.yaml"
    policy.write_text(
        "apiVersion: mirror/v1\nkind: TrustPolicy\n"
        f"collectors: {{keys: [{work / 'collector.pub'}], threshold: 1}}\n"
        f"approvers: {{keys: [{work / 'officer.pub'}], threshold: 1}}\n"
        f"stateFile: {work / 'state.json'}\n"
    )
    subjects = ["review: pin the web image", "review: raise the replica count"]
    result: list[Night] = []
    with tempfile.TemporaryDirectory() as layouts:
        for night in (1, 2, 3):
            extra: list[str] = []
            if night == 1:
                digest = _push_image(services, Path(layouts) / "n1", web, f"{prefix}-web-1")
                charts.add(build_chart("review", "1.0.0", description="Review test chart"))
                charts.write_index()
                version = "1.0.0"
            elif night == 2:
                digest = _push_image(services, Path(layouts) / "n2", web, f"{prefix}-web-2")
                charts.add(build_chart("review", "1.1.0", app_version="2.0.0", description="Review test chart"))
                charts.write_index()
                version = "1.1.0"
                for subject in subjects:
                    add_commit(services, repo["name"], "main", {"values.yaml": subject}, message=subject + "\n")
            else:
                _push_image(services, Path(layouts) / "n3", added, f"{prefix}-web-3")
                extra = [added]
                add_commit(services, repo["name"], "main", {"values.yaml": "three"}, message="review: third night\n")
            suffix = ".tar" if night == 2 else ""
            bundle = work / f"night{night}{suffix}"
            manifest = _manifest(work, web, extra, charts.base_url, repo["url"])
            _run(mirror_cli, "collect", manifest, "-o", bundle, "-q", "--key", work / "collector.key")
            _run(mirror_cli, "approve", bundle, "--key", work / "officer.key", "--trust", policy)
            from tests.support.gitrepos import repo_info

            tip = repo_info(services, repo["name"])["heads"]["main"]
            result.append(Night(bundle, digest, version, tip))
    return Nights(prefix, web, added, subjects, result, policy, key_ids["collector"], key_ids["officer"])


def _inventory_file(bundle: Path, work: Path) -> Path:
    """The inventory alone, as collect will write it beside the bundle (night.inventory.json)."""
    from mirror.bundle.opening import open_bundle
    from mirror.bundle.reader import read_small

    target = work / f"{bundle.name.removesuffix('.tar')}.inventory.json"
    target.write_bytes(read_small(open_bundle(bundle), "inventory.json", 64 * 1024 * 1024))
    return target


# --- inspect ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("night", [0, 1], ids=["directory", "tar"])
def test_inspect_lists_every_artifact_by_kind_with_digest_version_and_how_it_was_found(mirror_cli, nights, night):
    tonight = nights.nights[night]
    result = mirror_cli("inspect", tonight.bundle)
    assert result.exit_code == 0, result.stderr
    text = result.stdout
    sections = [line for line in text.splitlines() if re.fullmatch(r"(Images|Charts|Git sources) \(\d+\)", line)]
    assert sections == ["Images (1)", "Charts (1)", "Git sources (1)"]
    assert nights.web in text and tonight.image_digest in text
    assert f"{tonight.chart_version}  sha256:" in text
    assert "found: listed" in text
    assert "linux/amd64" in text
    assert f"Chart.yaml: review {tonight.chart_version}" in text
    assert f"commit {tonight.branch_tip}" in text
    assert "sequence " in text and "expires " in text
    assert nights.collector_key_id in text and nights.officer_key_id in text
    assert "not verified (no --trust policy given)" in text


@pytest.mark.parametrize("night", [0, 1], ids=["directory", "tar"])
def test_inspect_json_has_the_documented_schema(mirror_cli, nights, night):
    tonight = nights.nights[night]
    result = mirror_cli("inspect", tonight.bundle, "--json")
    assert result.exit_code == 0, result.stderr
    review = result.json()
    assert review["schemaVersion"] == 1 and review["kind"] == "BundleReview"
    assert set(review) == {
        "schemaVersion", "kind", "bundle", "totals", "signing", "base", "sinceBase", "volumes", "hosts",
        "plainHTTPHosts", "supplyChain", "artifacts", "notes",
    }  # fmt: skip
    assert review["totals"]["byKind"] == {"image": 1, "chart": 1, "git": 1, "flux": 0}
    assert review["base"] is None and review["sinceBase"] is None
    by_kind = {a["kind"]: a for a in review["artifacts"]}
    image = by_kind["image"]
    assert (image["source"], image["version"], image["digest"]) == (nights.web, "1.0", tonight.image_digest)
    assert image["found"] == "listed" and image["inBundle"] is True
    [platform] = image["platforms"]
    assert (platform["os"], platform["architecture"]) == ("linux", "amd64")
    assert platform["labels"]["review.test/note"] == HOSTILE_LABEL
    assert image["contentSize"] > image["size"]  # manifest, config and layer, as the descriptors state them
    chart = by_kind["chart"]
    assert chart["version"] == tonight.chart_version and chart["chart"]["description"] == "Review test chart"
    assert by_kind["git"]["details"]["commit"] == tonight.branch_tip
    signing = review["signing"]
    assert signing["sequence"] >= 1 and signing["expires"] and signing["verified"] is False
    assert sorted(s["kind"] for s in signing["signatures"]) == ["approval", "collection"]
    assert {s["status"] for s in signing["signatures"]} == {"unverified"}


def test_inspect_with_a_trust_policy_verifies_each_signature_and_names_its_role(mirror_cli, nights):
    result = mirror_cli("inspect", nights.nights[1].bundle, "--trust", nights.policy, "--json")
    assert result.exit_code == 0, result.stderr
    signing = result.json()["signing"]
    roles = {s["role"]: (s["status"], s["verified"], s["keyIds"]) for s in signing["signatures"]}
    assert roles == {
        "collector": ("counted", True, [nights.collector_key_id]),
        "approver": ("counted", True, [nights.officer_key_id]),
    }
    assert signing["problems"] == [] and signing["verdict"] == "signatures satisfy the policy"
    assert signing["verified"] is True


def test_inspect_reports_a_signature_the_policy_does_not_trust_and_the_missing_approval(mirror_cli, nights, tmp_path):
    policy = tmp_path / "only-collector.yaml"
    mirror_cli("keygen", str(tmp_path / "stranger"))
    policy.write_text(
        nights.policy.read_text().replace(str(nights.policy.parent / "officer.pub"), str(tmp_path / "stranger.pub"))
    )
    result = mirror_cli("inspect", nights.nights[0].bundle, "--trust", policy)
    assert result.exit_code == 0, result.stderr
    assert "signatures: awaiting 1 of 1 approvals (0 given)" in result.stdout  # the stranger's does not count
    assert "untrusted" in result.stdout and "signed by a key the policy does not list" in result.stdout
    assert "APPROVER_THRESHOLD" in result.stdout


# --- diff -------------------------------------------------------------------------------------------------


def test_diff_of_consecutive_nights_names_the_moved_tag_the_chart_bump_and_the_commits(mirror_cli, nights):
    first, second, _ = nights.nights
    result = mirror_cli("diff", first.bundle, second.bundle, "--json")
    assert result.exit_code == 0, result.stderr
    diff = result.json()
    assert diff["kind"] == "BundleDiff" and diff["schemaVersion"] == 1
    changes = {c["change"]: c for c in diff["changed"]}
    assert set(changes) == {"tag moved", "version bump", "ref moved"}
    moved = changes["tag moved"]
    assert (moved["source"], moved["oldDigest"], moved["newDigest"]) == (
        nights.web,
        first.image_digest,
        second.image_digest,
    )
    bump = changes["version bump"]
    assert (bump["oldVersion"], bump["newVersion"]) == ("1.0.0", "1.1.0")
    [ref] = [r for r in diff["movedRefs"] if r["ref"] == "refs/heads/main"]
    assert (ref["old"], ref["new"]) == (first.branch_tip, second.branch_tip)
    assert [c["subject"] for c in ref["commits"]] == list(reversed(nights.subjects))
    assert ref["commitCount"] == 2 and ref["droppedCount"] == 0
    assert diff["added"] == [] and diff["removed"] == []
    assert diff["newBlobs"]["count"] > 0 and diff["newBlobs"]["bytes"] > 0


def test_diff_of_the_next_night_lists_the_added_image_and_one_commit(mirror_cli, nights):
    _, second, third = nights.nights
    result = mirror_cli("diff", second.bundle, third.bundle)
    assert result.exit_code == 0, result.stderr
    assert f"added          image {nights.added}" in result.stdout
    assert "tag moved" not in result.stdout and "chart bumped" not in result.stdout
    assert "review: third night" in result.stdout
    assert "1 added, 0 removed, 1 changed, 2 unchanged" in result.stdout


def test_diff_of_two_inventory_files_lists_the_same_changes_but_no_commits(mirror_cli, nights, tmp_path):
    first, second, _ = nights.nights
    old, new = _inventory_file(first.bundle, tmp_path), _inventory_file(second.bundle, tmp_path)
    from_files = mirror_cli("diff", old, new, "--json").json()
    from_bundles = mirror_cli("diff", first.bundle, second.bundle, "--json").json()
    assert from_files["changed"] == from_bundles["changed"]
    assert from_files["newBlobs"] == from_bundles["newBlobs"]
    [ref] = [r for r in from_files["movedRefs"] if r["ref"] == "refs/heads/main"]
    assert ref["commits"] == [] and "inventory file carries no git objects" in ref["note"]


def test_inspect_with_base_puts_the_changes_since_the_base_first(mirror_cli, nights):
    first, second, _ = nights.nights
    result = mirror_cli("inspect", second.bundle, "--base", first.bundle)
    assert result.exit_code == 0, result.stderr
    text = result.stdout
    assert text.index("since base") < text.index("Images (1)")
    assert f"tag moved      {nights.web}" in text
    assert "chart bumped" in text and "1.0.0 -> 1.1.0" in text
    assert nights.subjects[0] in text
    review = mirror_cli("inspect", second.bundle, "--base", first.bundle, "--json").json()
    assert review["sinceBase"]["summary"]["movedTags"] == 1


# --- the HTML report, in a real browser -------------------------------------------------------------------


def _chromium(*args: str, profile: Path) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("chromium")
    if binary is None:
        pytest.fail("chromium is not installed; scripts/setup installs it")
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
    ]
    return subprocess.run([binary, *flags, *args], capture_output=True, text=True, timeout=120, check=True)


def _page_text(dom: str) -> str:
    body = re.sub(r"<style.*?</style>", " ", dom, flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", body)))


def test_html_report_renders_in_headless_chromium_with_the_key_facts(mirror_cli, nights, tmp_path, monkeypatch):
    first, second, _ = nights.nights
    report = tmp_path / "review.html"
    monkeypatch.chdir(second.bundle.parent)  # the report names the bundles as the officer typed them
    result = mirror_cli(
        "inspect", second.bundle.name, "--base", first.bundle.name, "--trust", "policy.yaml", "--html", report
    )
    assert result.exit_code == 0, result.stderr
    source = report.read_text()
    assert "<script" not in source.lower()  # the hostile label is text, not markup
    assert html.escape(HOSTILE_LABEL, quote=True) in source
    assert not re.search(r"(src|href)\s*=", source)  # nothing to fetch

    dom = _chromium("--dump-dom", report.as_uri(), profile=tmp_path / "profile").stdout
    assert "<script" not in dom.lower()
    text = _page_text(dom)
    assert second.image_digest in text
    assert "version bump" in text and "1.1.0" in text
    assert "tag moved" in text and first.image_digest in text
    assert nights.subjects[1] in text
    assert "signatures satisfy the policy" in text and "counted" in text
    assert HOSTILE_LABEL in text  # shown, as text
    assert "linux/amd64" in text and "Review test chart" in text
    assert text.index("Changes since base") < text.index("Contents")

    screenshot = tmp_path / "review.png"
    _chromium(
        f"--screenshot={screenshot}",
        "--window-size=1100,1250",
        "--hide-scrollbars",
        report.as_uri(),
        profile=tmp_path / "profile",
    )
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get("MIRROR_REVIEW_SCREENSHOT"):  # refreshes docs/review-report.png for the README
        shutil.copyfile(screenshot, os.environ["MIRROR_REVIEW_SCREENSHOT"])


def _artifacts_dir(tmp_path: Path) -> Path:
    """Where screenshots go: $MIRROR_TEST_ARTIFACTS when set (kept for people to look at), else tmp_path."""
    directory = Path(os.environ.get("MIRROR_TEST_ARTIFACTS") or tmp_path)
    directory.mkdir(parents=True, exist_ok=True)
    return directory


@pytest.mark.parametrize(("width", "mobile"), [(1280, False), (390, True)], ids=["desktop-1280", "phone-390"])
def test_html_report_fits_the_screen_without_sideways_scrolling(mirror_cli, nights, tmp_path, width, mobile):
    first, second, _ = nights.nights
    report = tmp_path / "review.html"
    result = mirror_cli("inspect", second.bundle, "--base", first.bundle, "--trust", nights.policy, "--html", report)
    assert result.exit_code == 0, result.stderr

    with Browser(tmp_path / "profile") as browser:
        shot = browser.shot(report.as_uri(), width, mobile=mobile)

    picture = _artifacts_dir(tmp_path) / f"review-report-{width}.png"
    picture.write_bytes(shot.png)
    print(f"screenshot: {picture}")
    assert shot.scroll_width <= width, f"the page is {shot.scroll_width} px wide at {width} px: see {picture}"
    assert png_size(shot.png) == (width, shot.height) and shot.height > 1500
    assert len(shot.png) > 50_000  # a page of text, not a blank one


def test_diff_warns_when_a_branch_was_rewritten_and_counts_the_commits_it_lost(mirror_cli, services, tmp_path):
    from tests.support.gitrepos import rewrite_branch

    repo = make_upstream_repo(services, f"t{uuid.uuid4().hex[:8]}/rewritten")
    document = mirrorset([])
    document["spec"]["git"] = [{"name": "fleet", "url": repo["url"], "ref": {"branch": "main"}}]
    manifest = tmp_path / "git.yaml"
    manifest.write_text(json.dumps(document))
    _run(mirror_cli, "collect", manifest, "-o", tmp_path / "before", "-q")
    rewritten = rewrite_branch(services, repo["name"], "main", drop=2, message="review: history rewritten\n")
    _run(mirror_cli, "collect", manifest, "-o", tmp_path / "after", "-q")

    result = mirror_cli("diff", tmp_path / "before", tmp_path / "after", "--json")
    assert result.exit_code == 0, result.stderr
    [ref] = [r for r in result.json()["movedRefs"] if r["ref"] == "refs/heads/main"]
    assert (ref["old"], ref["new"]) == (rewritten["old"], rewritten["new"])
    assert ref["droppedCount"] == 2
    assert [c["subject"] for c in ref["commits"]] == ["review: history rewritten"]
    text = mirror_cli("diff", tmp_path / "before", tmp_path / "after").stdout
    assert "not a fast-forward: 2 commit(s) of the old state are gone" in text
