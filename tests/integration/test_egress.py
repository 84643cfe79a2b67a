"""The collector talks only to hosts it was told about, keeps credentials with their hosts, and records every
host it contacted in the run report, the inventory and the officer's review."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mirror.bundle.inventory import parse_inventory
from tests.support.charts import build_chart
from tests.support.hostile import HostileServer
from tests.support.hostile.charts import chart_repository
from tests.support.hostile.redirects import authorization_headers, basic_challenge, redirect_to
from tests.support.mirrorsets import mirrorset
from tests.support.services import CHARTS_ADDRESS, CHARTS_ADDRESS2, GIT_UPSTREAM_URL, UPSTREAM_REGISTRY

GIT_ENV = {"MIRROR_GIT_USERNAME": "robot", "MIRROR_GIT_PASSWORD": "git-S3CRET"}


def write(tmp_path: Path, spec: dict[str, Any], name: str = "m.yaml") -> Path:
    document = mirrorset([])
    document["spec"] = spec
    path = tmp_path / name
    path.write_text(json.dumps(document))
    return path


# -- discovery ------------------------------------------------------------------------------------------------


@pytest.fixture
def parent_repo(services, charts):
    """A chart repository (a HostileServer) with `parent` 0.1.0, which depends on `app` from the seeded repository
    on the local chart server (CHARTS_ADDRESS): a host the MirrorSet below does not name."""
    dependency = {"name": "app", "version": ">=1.0.0 <2.0.0", "repository": charts["repo"]["url"]}
    archive = build_chart("parent", "0.1.0", dependencies=[dependency])
    with HostileServer(chart_repository({"parent-0.1.0.tgz": archive})) as repo:
        yield repo


@pytest.fixture
def charts(services):
    from tests.support.charts import seed_charts

    return seed_charts(services)


def _parent_spec(repo: HostileServer, **extra: Any) -> dict[str, Any]:
    return {"charts": [{"name": "parent", "repo": f"{repo.url}/charts", "version": "0.1.0"}], **extra}


def test_a_chart_dependency_on_a_host_the_mirrorset_does_not_name_is_refused(tmp_path, mirror_cli, parent_repo):
    result = mirror_cli("resolve", write(tmp_path, _parent_spec(parent_repo)), "--json")
    assert result.exit_code == 2, result.stderr
    assert f"{CHARTS_ADDRESS}: not named in the MirrorSet" in result.stderr
    assert "chart parent@0.1.0 dependency app" in result.stderr
    assert "allowedHosts" in result.stderr


def test_a_chart_dependency_on_another_host_is_followed_with_allow_discovered_hosts(tmp_path, mirror_cli, parent_repo):
    result = mirror_cli("resolve", write(tmp_path, _parent_spec(parent_repo)), "--json", "--allow-discovered-hosts")
    assert result.exit_code == 0, result.stderr
    assert {"parent", "app"} <= {a.get("chart") for a in result.json()["artifacts"]}


def test_a_chart_dependency_on_another_host_is_followed_when_allowed_hosts_names_it(tmp_path, mirror_cli, parent_repo):
    spec = _parent_spec(parent_repo, allowedHosts=[CHARTS_ADDRESS])
    result = mirror_cli("resolve", write(tmp_path, spec), "--json")
    assert result.exit_code == 0, result.stderr


def test_images_a_chart_names_on_a_registry_the_mirrorset_does_not_name_are_refused(tmp_path, mirror_cli, charts):
    spec = {"charts": [{"name": "app", "repo": charts["repo"]["url"], "version": "1.0.0", "images": True}]}
    refused = mirror_cli("resolve", write(tmp_path, spec), "--json")
    assert refused.exit_code == 2, refused.stderr
    assert f"{UPSTREAM_REGISTRY}: not named in the MirrorSet" in refused.stderr
    assert "chart app@1.0.0" in refused.stderr


def test_a_collect_refused_by_the_egress_policy_reports_the_hosts_it_did_contact(tmp_path, mirror_cli, parent_repo):
    report = tmp_path / "report.json"
    result = mirror_cli("collect", write(tmp_path, _parent_spec(parent_repo)), "-o", tmp_path / "b", "--report", report)
    assert result.exit_code == 2, result.stderr
    written = json.loads(report.read_text())
    assert written["exitCode"] == 2
    assert written["hosts"] == [{"host": parent_repo.netloc, "how": "named", "plainHTTP": True}]


# -- redirects ------------------------------------------------------------------------------------------------


def test_a_redirect_from_a_named_host_into_another_internal_host_is_refused(tmp_path, mirror_cli, services, charts):
    # The named repository sends the collector to CHARTS_ADDRESS2 (the same seeded files, another loopback host).
    with HostileServer(redirect_to(f"{services.charts_url2}/seed", append_path=False)) as named:
        spec = {"charts": [{"name": "app", "repo": f"{named.url}/charts", "version": "1.0.0"}]}
        refused = mirror_cli("resolve", write(tmp_path, spec), "--json")
    assert refused.exit_code == 2, refused.stderr
    assert CHARTS_ADDRESS2 in refused.stderr and "internal address" in refused.stderr
    assert len(named.requests) == 1


def test_a_redirect_into_another_internal_host_is_followed_when_allowed(tmp_path, mirror_cli, services, charts):
    def route(request):
        name = request.path.rsplit("/", 1)[-1]
        return redirect_to(f"{services.charts_url2}/seed/{name}", append_path=False)(request)

    with HostileServer(route) as named:
        spec = {
            "charts": [{"name": "app", "repo": f"{named.url}/charts", "version": "1.0.0"}],
            "allowedHosts": [CHARTS_ADDRESS2],
        }
        allowed = mirror_cli("resolve", write(tmp_path, spec), "--json")
    assert allowed.exit_code == 0, allowed.stderr


def test_a_registry_redirect_to_file_exits_4_naming_it_after_one_request(tmp_path, mirror_cli):
    with HostileServer(redirect_to("file:///etc/passwd", append_path=False)) as registry:
        spec = {"registries": {registry.netloc: {"plainHTTP": True}}, "images": [f"{registry.netloc}/team/app:1.0"]}
        result = mirror_cli("collect", write(tmp_path, spec), "-o", tmp_path / "b", "--no-cache")
    assert result.exit_code == 4, result.stderr
    assert "file:///etc/passwd" in result.stderr
    assert "transfer from  failed" not in result.stderr
    assert len(registry.requests) == 1, "not retried"


# -- Git credentials ------------------------------------------------------------------------------------------


def test_a_named_git_host_that_redirects_elsewhere_never_hands_over_the_credentials(tmp_path, mirror_cli):
    with (
        HostileServer(basic_challenge, host="127.0.0.2") as elsewhere,
        HostileServer(redirect_to(elsewhere.url)) as named,
    ):
        spec = {"git": [{"name": "fleet", "url": f"{named.url}/fleet.git", "ref": {"branch": "main"}}]}
        result = mirror_cli("collect", write(tmp_path, spec), "-o", tmp_path / "b", env=GIT_ENV)
    assert authorization_headers(elsewhere.requests) == []
    assert result.exit_code == 2, result.stderr
    assert "redirect" in result.stderr and named.url in result.stderr
    assert "git-S3CRET" not in result.stderr


FLEET = """\
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata: {{name: apps, namespace: flux-system}}
spec:
  interval: 5m
  url: {url}
  ref: {{branch: main}}
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {{name: apps, namespace: flux-system}}
spec:
  interval: 10m
  path: ./deploy
  prune: true
  sourceRef: {{kind: GitRepository, name: apps}}
"""


def _fleet(tmp_path: Path, url: str) -> None:
    (tmp_path / "fleet").mkdir()
    (tmp_path / "fleet" / "sources.yaml").write_text(FLEET.format(url=url))


def test_an_upstream_flux_gitrepository_on_another_host_is_refused_unless_allowed(tmp_path, mirror_cli):
    with HostileServer(basic_challenge) as upstream:
        _fleet(tmp_path, f"{upstream.url}/apps.git")
        result = mirror_cli(
            "collect", write(tmp_path, {"flux": [{"path": "fleet"}]}), "-o", tmp_path / "b", env=GIT_ENV
        )
    assert result.exit_code == 2, result.stderr
    assert f"{upstream.netloc}: not named in the MirrorSet" in result.stderr
    assert "sources.yaml" in result.stderr and "GitRepository flux-system/apps" in result.stderr
    assert upstream.requests == []


def test_an_upstream_flux_gitrepository_on_another_host_never_receives_the_git_credentials(tmp_path, mirror_cli):
    with HostileServer(basic_challenge) as upstream:
        _fleet(tmp_path, f"{upstream.url}/apps.git")
        spec = {"flux": [{"path": "fleet"}], "allowedHosts": [upstream.netloc]}
        # The credentials are bound to another origin of the same host name: the fleet's host must not get them.
        env = {**GIT_ENV, "MIRROR_GIT_HOST": GIT_UPSTREAM_URL}
        result = mirror_cli("collect", write(tmp_path, spec), "-o", tmp_path / "b", env=env)
    assert upstream.requests, "allowed, so contacted"
    assert authorization_headers(upstream.requests) == []
    assert result.exit_code == 4, result.stderr


# -- the record -----------------------------------------------------------------------------------------------


def test_the_run_report_the_inventory_and_inspect_list_every_host_contacted_and_flag_plain_http(
    tmp_path, mirror_cli, services, upstream_images
):
    image = upstream_images["shared_a"]["ref"]
    spec = {"registries": {services.upstream: {"plainHTTP": True}}, "images": [image]}
    bundle, report, html = tmp_path / "b", tmp_path / "report.json", tmp_path / "review.html"
    result = mirror_cli("collect", write(tmp_path, spec), "-o", bundle, "--report", report, "-q")
    assert result.exit_code == 0, result.stderr
    expected = {"host": services.upstream, "how": "named", "plainHTTP": True}  # the registry is plainHTTP
    assert json.loads(report.read_text())["hosts"] == [expected]
    assert [h.to_json() for h in parse_inventory((bundle / "inventory.json").read_bytes()).hosts] == [expected]
    shown = mirror_cli("inspect", bundle, "--json")
    assert shown.exit_code == 0, shown.stderr
    assert shown.json()["hosts"] == [expected]
    text = mirror_cli("inspect", bundle)
    assert f"  {services.upstream}  named  PLAIN HTTP" in text.stdout
    assert mirror_cli("inspect", bundle, "--html", html).exit_code == 0
    assert (
        f"<code>{services.upstream}</code></td><td data-label='How it came to be contacted'>named" in html.read_text()
    )
