"""scripts/bench runs end to end in a small mode and reports figures for both tools (no timing is asserted)."""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from tests.conftest import REPO_ROOT


@pytest.fixture(scope="module")
def small_bench(services) -> dict:
    done = subprocess.run(
        [str(REPO_ROOT / "scripts" / "bench"), "--small", "--json"], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _row(figures: dict, step: str, what: str = "") -> dict:
    return next(r for r in figures["rows"] if r["step"] == step and what in r["what"])


@pytest.mark.parametrize(
    ("step", "other"), [("collect", "skopeo"), ("import", "skopeo"), ("verify", "x hashlib"), ("big", "skopeo")]
)
def test_bench_times_mirror_beside_the_other_tool(small_bench, step, other):
    row = _row(small_bench, step)
    assert other in row["other"]["tool"]
    assert row["mirror"]["value"] > 0 and row["other"]["value"] > 0
    assert row["ratio"] == pytest.approx(row["mirror"]["value"] / row["other"]["value"])
    assert isinstance(row["met"], bool)


def test_bench_reports_the_peak_memory_of_the_big_single_layer_collect_and_import(small_bench):
    for step in ("collect, one", "import, one"):
        assert _row(small_bench, "peak RSS", step)["mirror"]["value"] > 0


@pytest.mark.parametrize("step", ["collect", "import"])
def test_bench_reports_the_peak_memory_of_both_tools(small_bench, step):
    row = _row(small_bench, "peak RSS", step)
    assert row["unit"] == "MB"
    assert row["mirror"]["value"] > 0 and row["other"]["value"] > 0


def test_bench_counts_the_requests_an_import_sends_per_blob(small_bench):
    row = _row(small_bench, "requests", "import")
    assert "requests/blob" in row["note"] and "again:" in row["note"]
    assert row["target"] == "<= 2.5 per blob" and isinstance(row["met"], bool)


def test_bench_reports_the_nothing_changed_night_or_says_it_cannot(small_bench):
    row = _row(small_bench, "night", "nothing changed")
    if row["mirror"]["value"] is None:
        assert "not available in this build" in row["note"]
    else:
        assert row["mirror"]["value"] > 0 and "bundle" in row["note"]


def test_bench_times_the_audit_of_imported_images_and_finds_them_clean(small_bench):
    row = _row(small_bench, "audit")
    (sample,) = row["mirror"]["samples"]
    assert sample["seconds"] > 0 and row["note"].startswith("exit 0;") and isinstance(row["met"], bool)
    assert row["target"] == "< 10 s"


@pytest.mark.parametrize("what", ["forged", "unlisted tiny blobs", "alias-bomb"])
def test_bench_reports_time_and_memory_to_refuse_hostile_input(small_bench, what):
    row = _row(small_bench, "hostile", what)
    (sample,) = row["mirror"]["samples"]
    assert sample["seconds"] > 0 and sample["peak_rss_mb"] > 0
    assert row["note"] and isinstance(row["met"], bool)
    assert row["target"] == "refused < 2 s, < 150 MB"


@pytest.mark.parametrize("what", ["forged", "unlisted tiny blobs"])
def test_forged_and_stuffed_bundles_are_refused_quickly_in_little_memory(small_bench, what):
    row = _row(small_bench, "hostile", what)
    (sample,) = row["mirror"]["samples"]
    assert row["note"].startswith("exit 3"), row
    assert sample["seconds"] < 10 and sample["peak_rss_mb"] < 150  # targets 2 s and 150 MB; generous on a busy CI


def test_bench_times_collect_with_the_discovery_of_attached_manifests_beside_without(small_bench):
    row = _row(small_bench, "attached", "nothing attached")
    assert row["other"]["tool"] == "no discovery"
    assert row["mirror"]["value"] > 0 and row["other"]["value"] > 0
    assert row["ratio"] == pytest.approx(row["mirror"]["value"] / row["other"]["value"])
    assert row["target"] == "<= 1.10x without discovery" and isinstance(row["met"], bool)


def test_the_attached_step_says_how_many_attached_manifests_each_collect_carried(small_bench):
    # --small: 2 images, each with a cosign signature and an SBOM; the bench checks the bundles carry them.
    note = _row(small_bench, "attached", ".sig + SBOM")["note"]
    assert note.startswith("4 attached manifests carried per run (none without)")


def test_the_cost_of_carrying_signatures_and_sboms_is_shown_without_a_target(small_bench):
    row = _row(small_bench, "attached", ".sig + SBOM")
    assert row["mirror"]["value"] > 0 and row["other"]["value"] > 0 and row["met"] is None


def test_bench_times_skopeo_pulling_one_blob_from_serve_beside_distribution(small_bench):
    row = _row(small_bench, "serve", "blob, skopeo pulls")
    assert row["other"]["tool"] == "distribution"
    assert row["mirror"]["value"] > 0 and row["other"]["value"] > 0
    assert row["ratio"] == pytest.approx(row["mirror"]["value"] / row["other"]["value"])
    assert row["target"] == ">= 80% of distribution's throughput" and isinstance(row["met"], bool)


@pytest.mark.parametrize(("what", "target"), [("mirror --help", "< 0.12 s"), ("mirror --version", "< 0.08 s")])
def test_bench_times_start_up_beside_python_doing_nothing(small_bench, what, target):
    row = _row(small_bench, "startup", what)
    assert row["other"]["tool"] == "python -c pass" and row["target"] == target
    assert row["mirror"]["value"] > 0 and row["other"]["value"] > 0 and isinstance(row["met"], bool)


def test_bench_puts_collect_to_a_tar_beside_collect_to_a_directory_with_the_bytes_each_wrote(small_bench):
    row = _row(small_bench, "tar")
    assert row["other"]["tool"] == "to a dir" and isinstance(row["met"], bool)
    assert all(s["bytes_written"] > 0 for s in row["mirror"]["samples"] + row["other"]["samples"])
    assert "MB (.tar)" in row["note"] and "MB (dir)" in row["note"]


def test_the_scale_step_shows_collect_and_import_at_each_size_and_whether_time_grows_linearly(services):
    command = [str(REPO_ROOT / "scripts" / "bench"), "--small", "--steps", "scale", "--json"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)["rows"]
    sizes = [r["what"] for r in rows if r["step"] == "scale" and "tiny images" in r["what"]]
    assert sizes == [f"{step} {n} tiny images" for step in ("collect", "import") for n in (2, 4)]
    for row in rows:
        if "tiny images" in row["what"]:
            assert row["mirror"]["samples"][0]["peak_rss_mb"] > 0 and "CPU" in row["note"]
    small = next(r for r in rows if r["step"] == "import" and r["what"] == "3 tiny images")
    assert small["other"]["tool"] == "skopeo" and small["ratio"] > 0
    linear = [r for r in rows if "s/image at 4 vs 2" in r["what"]]
    assert len(linear) == 2 and all(r["met"] in (True, False) and "ms/image" in r["note"] for r in linear)


@pytest.mark.parametrize(
    ("step", "what", "floor"),
    [
        ("night", "nothing changed", "the registry's answers alone"),
        ("verify", "bundle", "read and hashed in this process"),
        ("big", "import", "curl streaming the blob alone"),
    ],
)
def test_bench_prints_the_floor_the_services_and_the_machine_set(small_bench, step, what, floor):
    note = _row(small_bench, step, what)["note"]
    seconds = re.search(re.escape(floor) + r"[^:;]*: ([0-9.]+) s", note)
    assert seconds is not None, note
    assert float(seconds[1]) > 0


@pytest.mark.parametrize(("step", "what"), [("night", "nothing changed"), ("big", "import")])
def test_bench_prints_the_registry_cpu_beside_the_rows_the_registry_bounds(small_bench, step, what):
    note = _row(small_bench, step, what)["note"]
    spent = re.search(
        r"registry CPU meanwhile: ([0-9.]+) s; with mirror's, on (\d+) cores, at least: ([0-9.]+) s", note
    )
    assert spent is not None, note
    assert float(spent[1]) > 0 and int(spent[2]) >= 1 and float(spent[3]) > 0
