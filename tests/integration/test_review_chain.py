"""Officer review of a real chain of nightly bundles: night 1 full (a directory), night 2 `--since night1` (a
.tar), night 3 `--since night2` split into volumes (`night3.tar.000`). Between nights upstream moves a tag,
publishes a new chart version, gains Git commits and gains an image. inspect and diff read the bundles, the
head volume of the split one, and the inventory files collect writes beside them.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from mirror.cli import app
from tests.support.charts import ChartRepo, build_chart
from tests.support.gitrepos import add_commit, make_upstream_repo, repo_info
from tests.support.images import Image, Layer, Layout, push
from tests.support.mirrorsets import mirrorset
from tests.support.services import UPSTREAM_REGISTRY

UPSTREAM = {UPSTREAM_REGISTRY: {"plainHTTP": True}}
BIG_LAYER_BYTES = 8 * 1024 * 1024  # the added image's layer: far more than inspect may read of the volumes


@dataclass
class Chain:
    work: Path
    web: str  # web:1.0, whose tag moves between night 1 and night 2
    big: str  # big:1, added on night 3
    digests: list[str]  # web:1.0 on each night
    tips: list[str]  # the branch's tip on each night
    subjects: list[str]  # the commit subjects of night 2, then of night 3
    bundles: list[Path]  # night1 (directory), night2.tar, night3.tar.000

    def beside(self, night: int) -> Path:
        """The inventory copy collect wrote beside night N: OUT's whole name plus .inventory.json."""
        out = {1: "night1", 2: "night2.tar", 3: "night3.tar"}[night]
        return self.work / f"{out}.inventory.json"


def cli(*args: object) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)


def must(*args: object) -> str:
    result = cli(*args)
    assert result.exit_code == 0, result.stderr
    return result.stdout


def must_json(*args: object) -> dict:
    return json.loads(must(*args, "--json"))


def _push(layouts: Path, reference: str, image: Image, name: str) -> str:
    Layout(layouts).add(name, image)
    push(layouts, name, reference)
    return image.digest


def _manifest(work: Path, images: list[str], charts_url: str, git_url: str) -> Path:
    document = mirrorset(images, registries=UPSTREAM)
    document["spec"]["charts"] = [{"name": "chain", "repo": charts_url}]
    document["spec"]["git"] = [{"name": "fleet", "url": git_url, "ref": {"branch": "main"}}]
    path = work / f"chain-{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(json.dumps(document))
    return path


@pytest.fixture(scope="module")
def chain(services, tmp_path_factory) -> Chain:
    work = tmp_path_factory.mktemp("chain")
    prefix = f"t{uuid.uuid4().hex[:8]}"
    web, big = f"{services.upstream}/{prefix}/web:1.0", f"{services.upstream}/{prefix}/big:1"
    charts = ChartRepo(services.charts_dir / prefix, f"{services.charts_url}/{prefix}")
    repo = make_upstream_repo(services, f"{prefix}/fleet")
    subjects = ["chain: second night one", "chain: second night two", "chain: third night"]
    digests, tips, bundles = [], [], []
    with tempfile.TemporaryDirectory() as layouts:
        # night 1: everything, as a directory
        digests.append(_push(Path(layouts), web, Image([Layer.from_seed(f"{prefix}-web-1")]), "web1"))
        charts.add(build_chart("chain", "1.0.0", description="Chain test chart"))
        charts.write_index()
        manifest = _manifest(work, [web], charts.base_url, repo["url"])
        bundles.append(work / "night1")
        must("collect", manifest, "-o", bundles[0], "-q")
        tips.append(repo_info(services, repo["name"])["heads"]["main"])
        # night 2: the tag moves, the chart gets 1.1.0, the branch two commits; a .tar since night 1
        digests.append(_push(Path(layouts), web, Image([Layer.from_seed(f"{prefix}-web-2")]), "web2"))
        charts.add(build_chart("chain", "1.1.0", app_version="2.0.0", description="Chain test chart"))
        charts.write_index()
        for subject in subjects[:2]:
            add_commit(services, repo["name"], "main", {"values.yaml": subject}, message=subject + "\n")
        bundles.append(work / "night2.tar")
        must("collect", manifest, "-o", bundles[1], "-q", "--since", bundles[0])
        tips.append(repo_info(services, repo["name"])["heads"]["main"])
        # night 3: an image is added and the branch gains a commit; split volumes since night 2
        layer = Layer.from_files({"big.bin": os.urandom(BIG_LAYER_BYTES)}, compress=False)
        _push(Path(layouts), big, Image([layer]), "big")
        digests.append(digests[-1])
        add_commit(services, repo["name"], "main", {"values.yaml": "three"}, message=subjects[2] + "\n")
        manifest = _manifest(work, [web, big], charts.base_url, repo["url"])
        must("collect", manifest, "-o", work / "night3.tar", "-q", "--since", bundles[1], "--split-size", "1M")
        bundles.append(work / "night3.tar.000")
        tips.append(repo_info(services, repo["name"])["heads"]["main"])
    return Chain(work, web, big, digests, tips, subjects, bundles)


def _moved_ref(diff: dict) -> dict:
    [ref] = [r for r in diff["movedRefs"] if r["ref"] == "refs/heads/main"]
    return ref


# --- the split bundle, by its head volume -----------------------------------------------------------------


def test_night_three_is_split_into_a_head_and_several_data_volumes(chain):
    volumes = sorted(p.name for p in chain.work.glob("night3.tar.*"))
    assert volumes[0] == "night3.tar.000" and len(volumes) > 2


def test_inspect_of_a_head_volume_lists_every_artifact_with_image_configs_and_chart_yaml(chain):
    text = must("inspect", chain.bundles[2])
    sections = [line for line in text.splitlines() if re.fullmatch(r"(Images|Charts|Git sources) \(\d+\)", line)]
    assert sections == ["Images (2)", "Charts (1)", "Git sources (1)"]
    assert chain.big in text and "linux/amd64" in text
    assert f"commit {chain.tips[2]}" in text
    assert re.search(r"\d+ data volume\(s\)", text)


def test_inspect_json_of_a_head_volume_lists_its_volumes_and_the_added_image_config(chain):
    review = must_json("inspect", chain.bundles[2])
    assert review["totals"]["byKind"] == {"image": 2, "chart": 1, "git": 1, "flux": 0}
    names = [v["name"] for v in review["volumes"]]
    assert names == [f"night3.tar.{n:03d}" for n in range(1, len(names) + 1)] and len(names) > 1
    by_source = {a["source"]: a for a in review["artifacts"]}
    big = by_source[chain.big]
    assert big["inBundle"] is True and [(p["os"], p["architecture"]) for p in big["platforms"]] == [("linux", "amd64")]
    assert big["contentSize"] > BIG_LAYER_BYTES


def _bytes_read() -> int:
    """Bytes this process has read through read() so far (Linux), whatever file they came from."""
    match = re.search(r"^rchar: (\d+)$", Path("/proc/self/io").read_text(), re.M)
    assert match is not None
    return int(match.group(1))


def test_inspect_of_a_head_volume_never_reads_the_data_volumes_through(chain):
    data = sum(p.stat().st_size for p in chain.work.glob("night3.tar.0*") if not p.name.endswith(".000"))
    assert data > BIG_LAYER_BYTES
    must("inspect", chain.bundles[2], "--json")  # imports and caches warmed: measure the next run only
    before = _bytes_read()
    review = must_json("inspect", chain.bundles[2])
    assert review["artifacts"]
    assert _bytes_read() - before < data // 4


def test_html_report_of_a_head_volume_names_the_added_image_and_the_changes_since_its_base(chain, tmp_path):
    report = tmp_path / "night3.html"
    must("inspect", chain.bundles[2], "--base", chain.bundles[1], "--html", report)
    page = report.read_text()
    assert chain.big in page and "Chain test chart" in page
    assert "Changes since base" in page and page.index("Changes since base") < page.index("Contents")
    assert chain.tips[2] in page  # the moved branch


# --- diff along the chain ----------------------------------------------------------------------------------


def test_diff_of_night_one_and_two_names_the_moved_tag_the_chart_bump_and_the_commits_from_both_bundles(chain):
    diff = must_json("diff", chain.bundles[0], chain.bundles[1])
    changes = {c["change"]: c for c in diff["changed"]}
    assert set(changes) == {"tag moved", "version bump", "ref moved"}
    assert (changes["tag moved"]["oldDigest"], changes["tag moved"]["newDigest"]) == tuple(chain.digests[:2])
    assert (changes["version bump"]["oldVersion"], changes["version bump"]["newVersion"]) == ("1.0.0", "1.1.0")
    ref = _moved_ref(diff)
    assert (ref["old"], ref["new"]) == tuple(chain.tips[:2])
    # night 2's git bundle holds only the two new commits; night 1's holds the rest
    assert [c["subject"] for c in ref["commits"]] == list(reversed(chain.subjects[:2]))
    assert ref["commitCount"] == 2 and ref["note"] == ""
    # night 2's record lists the tags that did not move as unchanged: they did not move, nor vanish
    assert [r["ref"] for r in diff["movedRefs"]] == ["refs/heads/main"]
    assert diff["added"] == [] and diff["removed"] == [] and diff["notes"] == []


def test_diff_of_night_two_and_three_names_the_added_image_and_the_moved_branch(chain):
    diff = must_json("diff", chain.bundles[1], chain.bundles[2])
    assert [(a["kind"], a["source"]) for a in diff["added"]] == [("image", chain.big)]
    assert [c["change"] for c in diff["changed"]] == ["ref moved"]
    ref = _moved_ref(diff)
    assert (ref["old"], ref["new"]) == tuple(chain.tips[1:])
    assert [r["ref"] for r in diff["movedRefs"]] == ["refs/heads/main"]
    assert diff["newBlobs"]["bytes"] > BIG_LAYER_BYTES and diff["notes"] == []
    # both git bundles are incremental and night 2's cannot be fetched without night 1's commits; night 3's
    # carries exactly the range (its prerequisite is night 2's tip), so its commits are read from it alone
    assert [c["subject"] for c in ref["commits"]] == [chain.subjects[2]]
    assert ref["commits"][0]["id"] == chain.tips[2]
    assert ref["commitCount"] == 1 and ref["droppedCount"] == 0 and ref["note"] == ""


def test_diff_of_night_two_and_three_in_text_lists_the_commit_of_night_three(chain):
    text = must("diff", chain.bundles[1], chain.bundles[2])
    assert f"{chain.tips[2][:12]}" in text and chain.subjects[2] in text


def test_diff_of_night_one_and_three_spans_the_chain(chain):
    diff = must_json("diff", chain.bundles[0], chain.bundles[2])
    changes = {c["change"]: c for c in diff["changed"]}
    assert set(changes) == {"tag moved", "version bump", "ref moved"}
    assert [a["source"] for a in diff["added"]] == [chain.big]
    assert (_moved_ref(diff)["old"], _moved_ref(diff)["new"]) == (chain.tips[0], chain.tips[2])
    # night 3 names night 2 as its base, not night 1: said, not hidden
    assert len(diff["notes"]) == 1 and "names base" in diff["notes"][0]


def test_diff_of_night_one_and_three_lists_what_night_three_carries_and_says_the_rest_is_in_night_two(chain):
    night2 = must_json("inspect", chain.bundles[1])
    ref = _moved_ref(must_json("diff", chain.bundles[0], chain.bundles[2]))
    # night 1's git bundle is whole, but night 3's needs night 2's tip: only night 3's own commit is readable
    assert [c["subject"] for c in ref["commits"]] == [chain.subjects[2]] and ref["commitCount"] == 1
    assert "only the 1 commit(s)" in ref["note"]
    assert f"stopped at 1 prerequisite commit(s) (first {chain.tips[1]})" in ref["note"]
    assert f"bundle {night2['bundle']['bundleId']}" in ref["note"]


@pytest.mark.parametrize("pair", [(0, 1), (1, 2), (0, 2)], ids=["1-2", "2-3", "1-3"])
def test_diff_of_the_inventory_files_beside_the_bundles_matches_the_bundles(chain, pair):
    old, new = pair
    from_files = must_json("diff", chain.beside(old + 1), chain.beside(new + 1))
    from_bundles = must_json("diff", chain.bundles[old], chain.bundles[new])
    for key in ("changed", "unchanged", "newBlobs"):
        assert from_files[key] == from_bundles[key], key
    for key in ("added", "removed"):  # an inventory file has no manifests to add up an artifact's size from
        assert [{**a, "size": None} for a in from_bundles[key]] == from_files[key], key
    assert [(r["ref"], r["old"], r["new"]) for r in from_files["movedRefs"]] == [
        (r["ref"], r["old"], r["new"]) for r in from_bundles["movedRefs"]
    ]


# --- inspect with and without its base ---------------------------------------------------------------------


def test_inspect_of_night_two_with_its_base_lists_the_commits_the_incremental_git_bundle_adds(chain):
    text = must("inspect", chain.bundles[1], "--base", chain.bundles[0])
    assert text.index("since base") < text.index("Images (1)")
    assert f"tag moved      {chain.web}" in text
    assert "chart bumped" in text and "1.0.0 -> 1.1.0" in text
    assert chain.subjects[0] in text and chain.subjects[1] in text


def test_inspect_of_night_three_with_its_base_names_the_added_image_the_commits_and_the_new_blobs(chain):
    review = must_json("inspect", chain.bundles[2], "--base", chain.bundles[1])
    since = review["sinceBase"]
    assert [a["source"] for a in since["added"]] == [chain.big]
    assert since["summary"]["newBlobBytes"] > BIG_LAYER_BYTES and since["notes"] == []
    assert review["notes"] == []
    [ref] = since["movedRefs"]
    assert [(c["id"], c["subject"]) for c in ref["commits"]] == [(chain.tips[2], chain.subjects[2])]
    assert ref["note"] == ""


def test_inspect_of_night_three_without_its_base_names_the_base_and_what_it_expects_from_it(chain):
    text = must("inspect", chain.bundles[2])
    review = must_json("inspect", chain.bundles[2])
    night2 = must_json("inspect", chain.bundles[1])
    assert review["base"]["bundleId"] == night2["bundle"]["bundleId"]
    assert review["base"]["inventory"] == "sha256:" + night2["bundle"]["inventorySha256"]
    assert review["totals"]["expectedBlobs"] > 0 and review["totals"]["expectedBytes"] > 0
    assert review["sinceBase"] is None
    assert f"(bundle {night2['bundle']['bundleId']}," in text
    assert f"{review['totals']['expectedBlobs']} blob(s)" in text and "expected from the base chain" in text


# --- the collect report's changes since the base ------------------------------------------------------------


@pytest.fixture(scope="module")
def reports(services, tmp_path_factory) -> dict:
    """Three nights with --report: full; nothing changed; web:1 moved and extra:1 added."""
    work = tmp_path_factory.mktemp("reports")
    prefix = f"t{uuid.uuid4().hex[:8]}"
    web, extra = f"{services.upstream}/{prefix}/web:1", f"{services.upstream}/{prefix}/extra:1"
    found = {}
    with tempfile.TemporaryDirectory() as layouts:
        old = _push(Path(layouts), web, Image([Layer.from_seed(f"{prefix}-web-1")]), "web1")
        first = work / "first.yaml"
        first.write_text(json.dumps(mirrorset([web], registries=UPSTREAM)))
        must("collect", first, "-o", work / "r1", "-q", "--report", work / "r1.json")
        must("collect", first, "-o", work / "r2", "-q", "--since", work / "r1", "--report", work / "r2.json")
        new = _push(Path(layouts), web, Image([Layer.from_seed(f"{prefix}-web-2")]), "web2")
        added = _push(Path(layouts), extra, Image([Layer.from_seed(f"{prefix}-extra")]), "extra")
        third = work / "third.yaml"
        third.write_text(json.dumps(mirrorset([web, extra], registries=UPSTREAM)))
        must("collect", third, "-o", work / "r3", "-q", "--since", work / "r2", "--report", work / "r3.json")
    for night in (1, 2, 3):
        found[night] = json.loads((work / f"r{night}.json").read_text())
    return {"reports": found, "web": web, "extra": extra, "old": old, "new": new, "added": added}


def test_the_report_of_a_full_collect_has_no_changes(reports):
    assert reports["reports"][1]["changes"] is None


def test_the_report_of_a_nothing_changed_night_says_nothing_changed(reports):
    changes = reports["reports"][2]["changes"]
    assert changes["base"]["bundleId"] == reports["reports"][1]["bundleId"]
    assert changes["summary"] == {
        "added": 0, "removed": 0, "changed": 0, "movedTags": 0, "versionBumps": 0, "movedRefs": 0,
        "newBlobs": 0, "newBlobBytes": 0, "signerChanges": 0, "signerAlarms": 0, "attachedAdded": 0,
        "attachedRemoved": 0, "fluxObjectChanges": None, "supplyChainEvents": 0,
    }  # fmt: skip
    assert changes["added"] == changes["removed"] == changes["changed"] == changes["movedTags"] == []
    assert changes["unchanged"] == 1


def test_the_report_of_the_next_night_lists_the_added_image_and_the_moved_tag(reports):
    changes = reports["reports"][3]["changes"]
    assert changes["base"]["bundleId"] == reports["reports"][2]["bundleId"]
    assert [(a["kind"], a["source"], a["digest"]) for a in changes["added"]] == [
        ("image", reports["extra"], reports["added"])
    ]
    assert [(c["change"], c["source"], c["oldDigest"], c["newDigest"]) for c in changes["changed"]] == [
        ("tag moved", reports["web"], reports["old"], reports["new"])
    ]
    assert changes["movedTags"] == [
        {"kind": "image", "source": reports["web"], "old": reports["old"], "new": reports["new"]}
    ]
    assert changes["summary"]["newBlobs"] == changes["newBlobs"]["count"] > 0
    assert changes["newBlobs"]["bytes"] > 0 and changes["unchanged"] == 0
