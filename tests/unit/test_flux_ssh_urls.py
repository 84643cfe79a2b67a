"""A GitRepository's ssh:// URL (every `flux bootstrap` fleet's root) is read through a listed Git source of the
same repository, or a rewrite rule; otherwise it is a problem that names the object and says what to do."""

from __future__ import annotations

from pathlib import Path

from mirror.flux.giturls import SshUrlMap
from mirror.flux.kustomize import read_tree
from mirror.flux.objects import FluxObject
from mirror.flux.plan import SourceKey
from mirror.flux.walk import FluxWalker
from mirror.manifest.model import GitSource, UrlRewrite
from tests.support.realdata import realdata
from tests.unit.test_flux_plan import Trees, git_repo, objects

FLEET_SSH = "ssh://git@github.com/org/fleet"
FLUX_SYSTEM = SourceKey("GitRepository", "flux-system", "flux-system")


def _plan(text: str, ssh_urls: SshUrlMap, trees: Trees | None = None):  # type: ignore[no-untyped-def]
    return FluxWalker(trees or Trees(), ssh_urls=ssh_urls).walk(objects(text))


def test_an_ssh_git_repository_is_read_through_the_listed_source_of_the_same_repository() -> None:
    plan = _plan(
        git_repo("flux-system", "ref: {branch: main}", url=FLEET_SSH), SshUrlMap(["https://github.com/org/fleet.git"])
    )
    assert not plan.problems
    assert [(g.url, dict(g.ref)) for g in plan.git] == [("https://github.com/org/fleet.git", {"branch": "main"})]


def test_an_ssh_git_repository_is_read_through_a_rewrite_rule() -> None:
    rule = UrlRewrite("ssh://git@github.com/", "https://github.com/", "platform.yaml: spec.rewrite[0]")
    plan = _plan(git_repo("flux-system", url=FLEET_SSH), SshUrlMap([], [rule]))
    assert not plan.problems
    assert [g.url for g in plan.git] == ["https://github.com/org/fleet"]


def test_a_listed_source_of_another_repository_on_the_same_host_is_not_taken() -> None:
    plan = _plan(git_repo("flux-system", url=FLEET_SSH), SshUrlMap(["https://github.com/org/fleet-other.git"]))
    assert not plan.git
    [problem] = plan.problems
    assert problem.startswith(
        "fleet.yaml: GitRepository flux-system/flux-system: spec.url: ssh://git@github.com/org/fleet"
    )
    assert "spec.git" in problem and "spec.rewrite" in problem


def test_a_rewrite_rule_to_something_that_is_no_git_url_is_a_problem() -> None:
    rule = UrlRewrite("ssh://git@github.com/", "ftp://mirror/", "platform.yaml: spec.rewrite[0]")
    plan = _plan(git_repo("flux-system", url=FLEET_SSH), SshUrlMap([], [rule]))
    assert not plan.git
    assert ["ftp://mirror/org/fleet" in p for p in plan.problems] == [True]


def test_the_real_bootstrap_sync_of_flux2_kustomize_helm_example_is_followed_over_https() -> None:
    """_pr114 is real `flux bootstrap` output (v2.3.0): its gotk-sync GitRepository is ssh://git@github.com/…"""
    repo = realdata("fluxcd__flux2-kustomize-helm-example", "_pr114-flux-v2.3.0")
    https = "https://github.com/poornima-krishnasamy/flux2-kustomize-helm-example.git"
    read: list[tuple[GitSource | None, str]] = []
    walker: FluxWalker

    def tree(key: SourceKey, path: str) -> list[FluxObject] | None:
        source = walker.source(key)
        read.append((source if isinstance(source, GitSource) else None, path))
        return read_tree(Path(repo), path)

    walker = FluxWalker(tree, ssh_urls=SshUrlMap([https]))
    plan = walker.walk(read_tree(repo, "clusters/staging/flux-system/gotk-sync.yaml"))
    assert not plan.problems
    assert [g.url for g in plan.git] == [https]
    assert [(s.url if s else None, path) for s, path in read] == [(https, "clusters/staging")]
