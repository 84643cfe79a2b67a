"""Git credentials from a `.netrc`, against the internal git server (basic auth on every URL): the MirrorSet's own
Git source on the host a `machine` line names is fetched with them; nothing else ever receives them."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.support.gitrepos import git_env, internal_url, make_upstream_repo, run_git
from tests.support.hostile import HostileServer
from tests.support.hostile.redirects import authorization_headers, basic_challenge
from tests.support.mirrorsets import mirrorset

FLEET = """\
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata: {{name: apps, namespace: flux-system}}
spec:
  interval: 5m
  url: {url}
  ref: {{branch: main}}
"""


@pytest.fixture
def private_repo(services) -> str:
    """A repository on the internal git server, which asks for credentials on every URL."""
    name = f"netrc-{uuid.uuid4().hex[:8]}"
    upstream = make_upstream_repo(services, name)
    url = internal_url(services, name)
    run_git(
        ["push", url, "refs/heads/main:refs/heads/main"],
        git_dir=Path(upstream["path"]),
        env=git_env(services, auth=True),
    )
    return url


def write(tmp_path: Path, spec: dict[str, Any]) -> Path:
    document = mirrorset([])
    document["spec"] = spec
    path = tmp_path / f"m-{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(json.dumps(document))
    return path


def git_spec(url: str) -> dict[str, Any]:
    return {"git": [{"name": "private", "url": url, "ref": {"branch": "main"}}]}


def netrc_env(tmp_path: Path, machine: str, login: str, password: str) -> dict[str, str]:
    path = tmp_path / "netrc"
    path.write_text(f"machine {machine}\n  login {login}\n  password {password}\n")
    return {"NETRC": str(path)}


def test_a_private_git_source_is_collected_with_the_netrc_entry_for_its_host(
    tmp_path, services, mirror_process, private_repo
):
    env = netrc_env(tmp_path, "127.0.0.1", services.git_user, services.git_password)
    result = mirror_process("collect", write(tmp_path, git_spec(private_repo)), "-o", tmp_path / "b", env=env)
    assert result.exit_code == 0, result.stderr
    assert services.git_password not in result.stdout + result.stderr


def test_without_a_netrc_entry_the_private_git_source_exits_4_asking_for_credentials(
    tmp_path, mirror_process, private_repo
):
    env = netrc_env(tmp_path, "git.example.com", "robot", "unused-password")
    result = mirror_process("collect", write(tmp_path, git_spec(private_repo)), "-o", tmp_path / "b", env=env)
    assert result.exit_code == 4
    assert "credentials" in result.stderr


def test_a_flux_repository_on_another_port_of_the_netrc_host_never_receives_the_netrc_credentials(
    tmp_path, services, mirror_cli, private_repo
):
    # The netrc names the host 127.0.0.1; the MirrorSet names the internal git server's origin on it; the fleet's
    # GitRepository is on another port of the same host: another origin, which gets nothing.
    with HostileServer(basic_challenge) as upstream:
        (tmp_path / "fleet").mkdir()
        (tmp_path / "fleet" / "sources.yaml").write_text(FLEET.format(url=f"{upstream.url}/apps.git"))
        spec = {**git_spec(private_repo), "flux": [{"path": "fleet"}], "allowedHosts": [upstream.netloc]}
        env = netrc_env(tmp_path, "127.0.0.1", services.git_user, services.git_password)
        result = mirror_cli("collect", write(tmp_path, spec), "-o", tmp_path / "b", env=env)
    assert upstream.requests, "the private source was fetched, then the fleet's repository was asked"
    assert authorization_headers(upstream.requests) == []
    assert result.exit_code == 4, result.stderr
    assert services.git_password not in result.stdout + result.stderr
