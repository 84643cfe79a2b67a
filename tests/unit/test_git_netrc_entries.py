"""Git credentials from a `.netrc` (`$NETRC`, else `~/.netrc`): for the MirrorSet's own http(s) Git sources on the
host a `machine` line names, bound to each such origin; never a `default` entry, never another host."""

from __future__ import annotations

from pathlib import Path

import pytest

from mirror.credentials import BoundCredentials, git_credential_set, netrc_path
from mirror.errors import UsageError

SOURCE = "https://git.example.com/org/fleet.git"
SECRET = "netrc-S3CRET"


def netrc(tmp_path: Path, text: str) -> dict[str, str]:
    path = tmp_path / "netrc"
    path.write_text(text)
    return {"NETRC": str(path), "HOME": str(tmp_path / "home")}


def test_netrc_names_the_file_else_home_dot_netrc(tmp_path):
    assert netrc_path({"NETRC": "/etc/n", "HOME": "/h"}) == Path("/etc/n")
    assert netrc_path({"HOME": "/h"}) == Path("/h/.netrc")
    assert netrc_path({}) is None


def test_a_netrc_machine_gives_the_named_git_source_on_that_host_its_credentials(tmp_path):
    env = netrc(tmp_path, f"machine git.example.com login robot password {SECRET}\n")
    found = git_credential_set(env, named=[SOURCE]).for_url(SOURCE)
    assert found == BoundCredentials("robot", SECRET, origins=("https://git.example.com",))


def test_netrc_credentials_are_bound_to_the_named_origin_not_to_other_ports_or_hosts(tmp_path):
    env = netrc(tmp_path, f"machine git.example.com login robot password {SECRET}\n")
    found = git_credential_set(env, named=[SOURCE])
    assert found.for_url("https://git.example.com:8443/org/other.git") is None
    assert found.for_url("https://elsewhere.example.com/org/fleet.git") is None


def test_netrc_entries_for_hosts_the_mirrorset_does_not_name_are_unused(tmp_path):
    env = netrc(tmp_path, f"machine other.example.com login robot password {SECRET}\n")
    assert git_credential_set(env, named=[SOURCE]).for_url(SOURCE) is None


def test_a_netrc_default_entry_is_never_used(tmp_path):
    env = netrc(tmp_path, f"default login anyone password {SECRET}\n")
    assert git_credential_set(env, named=[SOURCE]).for_url(SOURCE) is None


def test_each_named_git_host_gets_its_own_netrc_entry(tmp_path):
    other = "https://code.example.org/team/apps.git"
    env = netrc(
        tmp_path,
        "machine git.example.com login robot password one\nmachine code.example.org login builder password two\n",
    )
    found = git_credential_set(env, named=[SOURCE, other])
    assert found.for_url(SOURCE) == BoundCredentials("robot", "one", origins=("https://git.example.com",))
    assert found.for_url(other) == BoundCredentials("builder", "two", origins=("https://code.example.org",))


def test_mirror_git_variables_win_over_netrc_for_their_origin(tmp_path):
    env = {
        **netrc(tmp_path, f"machine git.example.com login robot password {SECRET}\n"),
        "MIRROR_GIT_USERNAME": "env-user",
        "MIRROR_GIT_PASSWORD": "env-pass",
    }
    found = git_credential_set(env, named=[SOURCE]).for_url(SOURCE)
    assert found is not None and found.username == "env-user"


def test_the_mirror_git_variables_still_go_with_a_source_they_are_not_for(tmp_path):
    # So that an auth failure there says they are kept to their own origin (git is never told to answer them).
    env = {"MIRROR_GIT_USERNAME": "u", "MIRROR_GIT_PASSWORD": "p", "MIRROR_GIT_HOST": "https://git.example.com"}
    found = git_credential_set(env, named=[SOURCE]).for_url("https://elsewhere.example.com/x.git")
    assert found == BoundCredentials("u", "p", origins=("https://git.example.com",))


def test_a_missing_netrc_means_no_credentials(tmp_path):
    env = {"NETRC": str(tmp_path / "absent"), "HOME": str(tmp_path)}
    assert git_credential_set(env, named=[SOURCE]).for_url(SOURCE) is None


def test_a_malformed_netrc_is_a_usage_error_that_shows_no_secret(tmp_path):
    # A password with a space, unquoted: the parser stumbles on its second half, which it would quote back.
    env = netrc(tmp_path, f"machine git.example.com login robot password half {SECRET}\n")
    with pytest.raises(UsageError) as caught:
        git_credential_set(env, named=[SOURCE])
    assert caught.value.exit_code == 2
    shown = caught.value.message + (caught.value.hint or "")
    assert env["NETRC"] in shown and SECRET not in shown
