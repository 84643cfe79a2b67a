"""`spec.rewrite`: Git and HTTP Helm repository URLs fetched through another prefix (a proxy or an internal
mirror), the artifacts keeping their upstream identity; an ssh:// prefix read as an http(s) one."""

from __future__ import annotations

from pathlib import Path

import pytest

from mirror.manifest.load import load_mirrorsets
from mirror.manifest.model import UrlRewrite
from mirror.urlrewrite import fetch_url
from tests.unit.test_manifest_load import refusal, with_spec, write

GITHUB = UrlRewrite("https://github.com/", "https://git-mirror.corp/github/", "m.yaml: spec.rewrite[0]")
CHARTS = UrlRewrite("https://charts.jetstack.io/", "https://nexus.corp/repository/jetstack/", "m.yaml")


def test_rewrite_rules_load_in_order(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "m.yaml",
        with_spec("""
        rewrite:
          - {from: "ssh://git@github.com/", to: "https://github.com/"}
          - {from: "https://github.com/", to: "https://git-mirror.corp/github/"}
        """),
    )
    [mirrorset] = load_mirrorsets([path])
    assert [(r.source, r.target) for r in mirrorset.rewrites] == [
        ("ssh://git@github.com/", "https://github.com/"),
        ("https://github.com/", "https://git-mirror.corp/github/"),
    ]
    assert mirrorset.rewrites[1].origin == f"{path}: spec.rewrite[1]"


@pytest.mark.parametrize(
    ("rule", "problem"),
    [
        ('{from: "https://github.com", to: "https://m.corp/"}', "end with /"),
        ('{from: "https://github.com/", to: "https://m.corp"}', "end with /"),
        ('{from: "https://github.com/", to: "ftp://m.corp/"}', "http"),
        ('{from: "https://github.com/", to: "https://u:p@m.corp/"}', "credentials"),
        ('{from: "ftp://github.com/", to: "https://m.corp/"}', "https://, http:// or ssh://"),
        ('{from: "https://github.com/"}', "spec.rewrite[0].to"),
        ('{from: "https://github.com/", to: "https://m.corp/", extra: 1}', "extra"),
    ],
)
def test_a_bad_rewrite_rule_is_refused_naming_the_field(tmp_path: Path, rule: str, problem: str) -> None:
    path = write(tmp_path, "m.yaml", with_spec(f"rewrite:\n  - {rule}\n"))
    error = refusal(path)
    assert "spec.rewrite[0]" in str(error)
    assert problem in str(error)


def test_a_rewrite_target_with_credentials_is_refused_without_echoing_them(tmp_path: Path) -> None:
    rule = '{from: "https://github.com/", to: "https://mirror:rewrite-pa55@m.corp/"}'
    error = refusal(write(tmp_path, "m.yaml", with_spec(f"rewrite:\n  - {rule}\n")))
    assert "credentials" in str(error)
    assert "rewrite-pa55" not in str(error) + (error.hint or "")


def test_a_url_under_a_rule_is_fetched_through_its_target() -> None:
    assert fetch_url("https://github.com/org/fleet.git", [GITHUB]) == "https://git-mirror.corp/github/org/fleet.git"


def test_a_url_under_no_rule_is_fetched_as_it_is() -> None:
    assert fetch_url("https://gitlab.com/org/fleet.git", [GITHUB]) == "https://gitlab.com/org/fleet.git"


def test_a_rule_matches_whole_path_segments_and_the_host_case_insensitively() -> None:
    rule = UrlRewrite("https://github.com/org/", "https://m.corp/org/", "m.yaml")
    assert fetch_url("https://github.com/org-evil/x.git", [rule]) == "https://github.com/org-evil/x.git"
    assert fetch_url("https://GitHub.com/org/x.git", [rule]) == "https://m.corp/org/x.git"


def test_the_first_matching_rule_wins() -> None:
    narrow = UrlRewrite("https://github.com/org/", "https://other.corp/", "m.yaml")
    assert fetch_url("https://github.com/org/x", [narrow, GITHUB]) == "https://other.corp/x"
    assert fetch_url("https://github.com/org/x", [GITHUB, narrow]) == "https://git-mirror.corp/github/org/x"


def test_ssh_rules_do_not_apply_to_fetching() -> None:
    ssh = UrlRewrite("ssh://git@github.com/", "https://github.com/", "m.yaml")
    assert fetch_url("https://github.com/org/x", [ssh]) == "https://github.com/org/x"


def test_an_ssh_rule_that_would_move_the_repository_path_is_refused(tmp_path: Path) -> None:
    """The ssh:// URL's path is where the GitRepository lands on the high side; the rule's result must land there
    too, so an ssh rule changes scheme, user and host only (a mirror is reached with a second, https rule)."""
    rule = '{from: "ssh://git@github.com/", to: "https://git-mirror.corp/github/"}'
    error = refusal(write(tmp_path, "m.yaml", with_spec(f"rewrite:\n  - {rule}\n")))
    assert "spec.rewrite[0].to" in str(error)
    assert "same path" in str(error)
