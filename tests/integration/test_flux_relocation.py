"""The relocation Flux sees: the fleet's Git content on the internal server, on `mirror/<branch>`, points inside.

The cluster is played for real: the bootstrap objects of --flux-out, then every Kustomization they lead to,
cloned from the internal Git server at the branch its GitRepository follows, built with `kubectl kustomize` and
postBuild substitution, as kustomize-controller does.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from tests.integration.test_flux import _apps_files, _fleet_files, _import_fleet
from tests.support.charts import seed_charts
from tests.support.fluxcluster import outside, play
from tests.support.gitrepos import add_commit, git_env, ls_remote, make_upstream_repo, run_git


@pytest.fixture
def fleet(services, upstream_images) -> dict:
    """The example fleet of test_flux.py, served by the local Git server: a cluster path and an apps repository."""
    charts = seed_charts(services)
    prefix = f"t{uuid.uuid4().hex[:8]}"
    apps = make_upstream_repo(services, f"{prefix}/apps", files=_apps_files(services))
    fleet = make_upstream_repo(
        services, f"{prefix}/fleet", files=_fleet_files(services, apps["url"], charts["repo"]["url"])
    )
    return {"fleet": fleet, "apps": apps, "charts": charts}


def _bare_clone(url: str, services, dest: Path) -> Path:
    run_git(["clone", "-q", "--bare", url, dest], env=git_env(services, auth=True))
    return dest


def test_the_cluster_built_from_the_internal_git_server_points_only_inside_two_nights_in_a_row(
    tmp_path, mirror_cli, services, fleet, internal_env, internal_url, target_prefix
):
    git_base = f"{services.git_internal}/{target_prefix}"
    for night in (1, 2):
        out = _import_fleet(tmp_path, mirror_cli, services, fleet, internal_env, internal_url, git_base, night=night)
        objects = play(out, services, tmp_path / f"cluster{night}")
        kinds = {o["kind"] for o in objects}
        assert {"GitRepository", "HelmRepository", "OCIRepository", "Kustomization", "Deployment"} <= kinds
        assert outside(objects, (f"{git_base}/", f"oci://{services.internal}/")) == []
        git = [o for o in objects if o["kind"] == "GitRepository"]
        assert {o["spec"]["ref"]["branch"] for o in git} == {"mirror/main"}


def test_the_relocation_commit_id_is_the_same_when_the_same_upstream_commit_is_imported_again(
    tmp_path, mirror_cli, services, fleet, internal_env, internal_url, target_prefix
):
    git_base = f"{services.git_internal}/{target_prefix}"
    landed = f"{git_base}/{fleet['fleet']['name']}.git"
    _import_fleet(tmp_path, mirror_cli, services, fleet, internal_env, internal_url, git_base)
    first = ls_remote(landed, services, auth=True)["refs/heads/mirror/main"]
    _import_fleet(tmp_path, mirror_cli, services, fleet, internal_env, internal_url, git_base, night=2)
    assert ls_remote(landed, services, auth=True)["refs/heads/mirror/main"] == first


def test_the_upstream_refs_on_the_internal_server_keep_the_upstream_commit_ids(
    tmp_path, mirror_cli, services, fleet, internal_env, internal_url, target_prefix
):
    git_base = f"{services.git_internal}/{target_prefix}"
    _import_fleet(tmp_path, mirror_cli, services, fleet, internal_env, internal_url, git_base)
    for repo in (fleet["fleet"], fleet["apps"]):
        landed = ls_remote(f"{git_base}/{repo['name']}.git", services, auth=True)
        assert landed["refs/heads/main"] == repo["heads"]["main"]
        clone = _bare_clone(f"{git_base}/{repo['name']}.git", services, tmp_path / repo["name"].replace("/", "-"))
        parent = run_git(["rev-parse", "refs/heads/mirror/main^"], git_dir=clone).stdout.decode().strip()
        assert parent == repo["heads"]["main"]


def test_the_relocation_diff_holds_only_the_endpoint_lines(
    tmp_path, mirror_cli, services, fleet, internal_env, internal_url, target_prefix
):
    git_base = f"{services.git_internal}/{target_prefix}"
    _import_fleet(tmp_path, mirror_cli, services, fleet, internal_env, internal_url, git_base)
    clone = tmp_path / "fleet.git"
    run_git(
        ["clone", "-q", "--bare", f"{git_base}/{fleet['fleet']['name']}.git", clone], env=git_env(services, auth=True)
    )
    diff = run_git(["diff", "--unified=0", "main", "mirror/main"], git_dir=clone).stdout.decode()
    files = [line[6:] for line in diff.splitlines() if line.startswith("+++ b/")]
    assert files == ["clusters/production/sources.yaml"]
    removed = [line[1:].strip() for line in diff.splitlines() if line.startswith("-") and not line.startswith("---")]
    assert all(line.startswith(("url:", "ref:")) for line in removed), removed


def test_when_upstream_moves_the_relocation_branch_moves_onto_the_new_upstream_commit(
    tmp_path, mirror_cli, services, fleet, internal_env, internal_url, target_prefix
):
    git_base = f"{services.git_internal}/{target_prefix}"
    landed = f"{git_base}/{fleet['fleet']['name']}.git"
    _import_fleet(tmp_path, mirror_cli, services, fleet, internal_env, internal_url, git_base)
    moved = add_commit(services, fleet["fleet"]["name"], "main", {"clusters/production/notes.yaml": "a: 1\n"})
    _import_fleet(tmp_path, mirror_cli, services, fleet, internal_env, internal_url, git_base, night=2)
    clone = _bare_clone(landed, services, tmp_path / "fleet.git")
    assert run_git(["rev-parse", "main", "mirror/main^"], git_dir=clone).stdout.decode().split() == [moved, moved]


def test_the_import_report_names_each_relocation_commit_its_upstream_commit_and_the_files_edited(
    tmp_path, mirror_cli, services, fleet, internal_env, internal_url, target_prefix
):
    git_base = f"{services.git_internal}/{target_prefix}"
    report = tmp_path / "import.json"
    _import_fleet(tmp_path, mirror_cli, services, fleet, internal_env, internal_url, git_base, report=report)
    by_target = {entry["target"]: entry for entry in json.loads(report.read_text())["git"]}
    [relocation] = by_target[f"{git_base}/{fleet['fleet']['name']}.git"]["relocations"]
    landed = ls_remote(f"{git_base}/{fleet['fleet']['name']}.git", services, auth=True)
    assert relocation == {
        "ref": "refs/heads/mirror/main",
        "upstream": fleet["fleet"]["heads"]["main"],
        "commit": landed["refs/heads/mirror/main"],
        "edited": ["clusters/production/sources.yaml"],
    }
