"""Where each Git source lands under `--git BASE`: planned for every source before anything is written, every
problem listed."""

from __future__ import annotations

import pytest

from mirror.bundle.inventory import ArtifactRecord
from mirror.errors import UsageError, VerificationError
from mirror.landing import OUTSIDE_BASE, TARGET_CLASH, check_git_targets, git_target_url, plan_git_targets

BASE = "https://git.internal/mirror"
DIGEST = "sha256:" + "b" * 64


def _git(source: str) -> ArtifactRecord:
    return ArtifactRecord(
        "git", source, DIGEST, "application/x-git-bundle", 1, {"heads": {"refs/heads/main": "c" * 40}}
    )


@pytest.mark.parametrize(
    ("source", "target"),
    [
        ("https://github.com/fluxcd/flux2-kustomize-helm-example", f"{BASE}/fluxcd/flux2-kustomize-helm-example.git"),
        ("https://git.example.com/fleet/infra.git", f"{BASE}/fleet/infra.git"),
        ("https://git.example.com/fleet/infra.git/", f"{BASE}/fleet/infra.git"),
        ("ssh://git@git.example.com:2222/team/app.git", f"{BASE}/team/app.git"),
        ("http://127.0.0.1:8080/t1/fleet.git", f"{BASE}/t1/fleet.git"),
        ("https://git.example.com/~user/repo.git", f"{BASE}/~user/repo.git"),
        ("https://git.example.com/a/%2e%2e/b.git", f"{BASE}/b.git"),  # resolved inside: lands where it resolves
    ],
)
def test_a_source_lands_at_its_path_under_base(source, target):
    assert git_target_url(BASE, source) == target


def test_every_source_outside_base_and_every_clash_is_listed():
    sources = [
        _git("https://a.example/fleet/infra.git"),
        _git("http://h/a/%2e%2e/%2e%2e/escape.git"),
        _git("https://b.example/fleet/infra.git"),
        _git("http://h/x/..%2f..%2fescape.git"),
    ]
    targets, problems = plan_git_targets(BASE, sources)
    assert targets == {"https://a.example/fleet/infra.git": f"{BASE}/fleet/infra.git"}
    assert [p.code for p in problems] == [OUTSIDE_BASE, TARGET_CLASH, OUTSIDE_BASE]
    assert "http://h/a/%2e%2e/%2e%2e/escape.git" in problems[0].message
    assert "https://b.example/fleet/infra.git and https://a.example/fleet/infra.git" in problems[1].message


def test_a_source_outside_base_is_a_verification_failure():
    with pytest.raises(VerificationError) as refused:
        check_git_targets(BASE, [_git("http://h/a/%2e%2e/%2e%2e/escape.git")], "bundle")
    assert refused.value.exit_code == 3
    assert [p.code for p in refused.value.problems] == [OUTSIDE_BASE]


def test_two_honest_sources_landing_on_one_repository_stay_a_usage_error():
    with pytest.raises(UsageError, match="would land on the same repository"):
        check_git_targets(BASE, [_git("https://a.example/x.git"), _git("https://b.example/x.git")], "bundle")


def test_the_same_source_twice_is_no_clash():
    targets, problems = plan_git_targets(BASE, [_git("https://a.example/x.git"), _git("https://a.example/x.git")])
    assert (targets, problems) == ({"https://a.example/x.git": f"{BASE}/x.git"}, [])


def test_a_refused_source_is_shown_without_its_control_characters():
    [problem] = plan_git_targets(BASE, [_git("http://h/x.git\n  - [OK] verified\x1b[2J")])[1]
    assert problem.code == OUTSIDE_BASE
    assert "\n" not in problem.message and "\x1b" not in problem.message
    assert "\\x0a" in problem.message
