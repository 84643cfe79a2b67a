"""Git credentials stay with the origin (scheme, host, port) they are given for; git follows no redirect."""

from __future__ import annotations

import pytest

from mirror.credentials import BoundCredentials, Credentials, git_credentials
from mirror.errors import TransferError, UsageError
from mirror.git.refs import remote_refs
from tests.support.hostile import HostileServer
from tests.support.hostile.redirects import authorization_headers, basic_challenge, redirect_to

USER, PASSWORD = "robot", "git-S3CRET"


def bound(*origins: str) -> BoundCredentials:
    return BoundCredentials(USER, PASSWORD, origins=origins)


def test_bound_git_credentials_are_answered_for_their_own_origin() -> None:
    with HostileServer(basic_challenge) as own, pytest.raises(TransferError):
        remote_refs(f"{own.url}/repo.git", bound(own.url))
    assert authorization_headers(own.requests), "the credentials' own origin must still receive them"


def test_bound_git_credentials_are_not_answered_for_another_port_of_the_same_host() -> None:
    with (
        HostileServer(basic_challenge) as own,
        HostileServer(basic_challenge) as other,
        pytest.raises(TransferError) as caught,
    ):
        remote_refs(f"{other.url}/repo.git", bound(own.url))
    assert other.requests, "the other host was asked"
    assert authorization_headers(other.requests) == []
    assert "own origin only" in (caught.value.hint or "")


def test_a_git_host_that_redirects_to_another_host_never_hands_it_the_credentials() -> None:
    with (
        HostileServer(basic_challenge, host="127.0.0.2") as elsewhere,
        HostileServer(redirect_to(elsewhere.url)) as named,
        pytest.raises(UsageError) as caught,
    ):
        remote_refs(f"{named.url}/repo.git", bound(named.url))
    assert authorization_headers(elsewhere.requests) == []
    assert elsewhere.requests == [], "git follows no redirect (http.followRedirects=false)"
    assert "redirect" in caught.value.message
    assert named.url in caught.value.message


def test_unbound_credentials_go_only_to_the_url_the_command_names() -> None:
    # remote_refs(url, Credentials) as the tests and older callers use it: bound to that URL's origin.
    with (
        HostileServer(basic_challenge, host="127.0.0.2") as elsewhere,
        HostileServer(redirect_to(elsewhere.url)) as named,
        pytest.raises(UsageError),
    ):
        remote_refs(f"{named.url}/repo.git", Credentials(USER, PASSWORD))
    assert authorization_headers(elsewhere.requests) == []


def test_git_credentials_are_bound_to_the_one_git_host_the_mirrorset_names() -> None:
    env = {"MIRROR_GIT_USERNAME": USER, "MIRROR_GIT_PASSWORD": PASSWORD}
    creds = git_credentials(env, named=["https://git.example.com/org/fleet.git", "https://git.example.com/org/b.git"])
    assert isinstance(creds, BoundCredentials)
    assert creds.origins == ("https://git.example.com",)


def test_git_credentials_with_two_named_git_hosts_need_mirror_git_host() -> None:
    env = {"MIRROR_GIT_USERNAME": USER, "MIRROR_GIT_PASSWORD": PASSWORD}
    named = ["https://git.example.com/a.git", "http://127.0.0.1:8090/b.git"]
    with pytest.raises(UsageError) as caught:
        git_credentials(env, named=named)
    assert "MIRROR_GIT_HOST" in caught.value.message + (caught.value.hint or "")
    chosen = git_credentials({**env, "MIRROR_GIT_HOST": "http://127.0.0.1:8090"}, named=named)
    assert chosen is not None and chosen.origins == ("http://127.0.0.1:8090",)


def test_mirror_git_host_without_a_scheme_means_https() -> None:
    env = {"MIRROR_GIT_USERNAME": USER, "MIRROR_GIT_PASSWORD": PASSWORD, "MIRROR_GIT_HOST": "Git.Example.com:8443"}
    creds = git_credentials(env)
    assert creds is not None and creds.origins == ("https://git.example.com:8443",)


def test_git_credentials_are_not_used_when_no_git_host_is_named() -> None:
    env = {"MIRROR_GIT_USERNAME": USER, "MIRROR_GIT_PASSWORD": PASSWORD}
    assert git_credentials(env, named=[]) is None
