"""The containers auth files, searched as containers/image (podman, skopeo, buildah) searches them.

containers-auth.json(5) and containers/image's pkg/docker/config: REGISTRY_AUTH_FILE alone when set; else
`$XDG_RUNTIME_DIR/containers/auth.json` (podman's own), `$XDG_CONFIG_HOME/containers/auth.json` (default
`~/.config`), `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`, `~/.dockercfg` (legacy format). The first
file with credentials for the key wins, not the first file that exists. Keys may name a repository or a
namespace: the most specific one wins.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest

from mirror.credentials import Credentials, auth_file_paths, credentials_from_auth_file


def entry(user: str, password: str) -> dict[str, str]:
    return {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}


def write(path: Path, config: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config))
    return path


@pytest.fixture
def home(tmp_path: Path) -> Path:
    (tmp_path / "home").mkdir()
    (tmp_path / "run").mkdir()
    return tmp_path


def env_for(base: Path, **extra: str) -> dict[str, str]:
    return {"HOME": str(base / "home"), "XDG_RUNTIME_DIR": str(base / "run"), **extra}


def test_podmans_default_auth_file_under_xdg_runtime_dir_is_read(home):
    write(home / "run" / "containers" / "auth.json", {"auths": {"reg.test": entry("podman", "p")}})
    assert credentials_from_auth_file("reg.test", env_for(home)) == Credentials("podman", "p")


def test_the_runtime_dir_file_wins_over_the_xdg_config_home_file(home):
    write(home / "run" / "containers" / "auth.json", {"auths": {"reg.test": entry("runtime", "p")}})
    write(home / "home" / ".config" / "containers" / "auth.json", {"auths": {"reg.test": entry("config", "p")}})
    assert credentials_from_auth_file("reg.test", env_for(home)) == Credentials("runtime", "p")


def test_the_xdg_config_home_file_defaults_to_home_dot_config(home):
    write(home / "home" / ".config" / "containers" / "auth.json", {"auths": {"reg.test": entry("config", "p")}})
    assert credentials_from_auth_file("reg.test", env_for(home)) == Credentials("config", "p")


def test_xdg_config_home_names_the_config_directory(home):
    write(home / "xdg" / "containers" / "auth.json", {"auths": {"reg.test": entry("xdg", "p")}})
    write(home / "home" / ".config" / "containers" / "auth.json", {"auths": {"reg.test": entry("dotconfig", "p")}})
    env = env_for(home, XDG_CONFIG_HOME=str(home / "xdg"))
    assert credentials_from_auth_file("reg.test", env) == Credentials("xdg", "p")


def test_the_xdg_config_home_file_wins_over_dockers_config(home):
    write(home / "home" / ".config" / "containers" / "auth.json", {"auths": {"reg.test": entry("config", "p")}})
    write(home / "home" / ".docker" / "config.json", {"auths": {"reg.test": entry("docker", "p")}})
    assert credentials_from_auth_file("reg.test", env_for(home)) == Credentials("config", "p")


def test_dockers_config_json_in_home_is_read(home):
    write(home / "home" / ".docker" / "config.json", {"auths": {"reg.test": entry("docker", "p")}})
    assert credentials_from_auth_file("reg.test", env_for(home)) == Credentials("docker", "p")


def test_docker_config_replaces_home_dot_docker(home):
    write(home / "dc" / "config.json", {"auths": {"other.test": entry("dc", "p")}})
    write(home / "home" / ".docker" / "config.json", {"auths": {"reg.test": entry("docker", "p")}})
    assert credentials_from_auth_file("reg.test", env_for(home, DOCKER_CONFIG=str(home / "dc"))) is None
    write(home / "dc" / "config.json", {"auths": {"reg.test": entry("dc", "p")}})
    assert credentials_from_auth_file("reg.test", env_for(home, DOCKER_CONFIG=str(home / "dc"))) == Credentials(
        "dc", "p"
    )


def test_the_legacy_dockercfg_is_read_last(home):
    legacy = {"https://reg.test/v1/": {"auth": entry("legacy", "p")["auth"], "email": "x@example.com"}}
    write(home / "home" / ".dockercfg", legacy)
    assert credentials_from_auth_file("reg.test", env_for(home)) == Credentials("legacy", "p")
    write(home / "home" / ".docker" / "config.json", {"auths": {"reg.test": entry("docker", "p")}})
    assert credentials_from_auth_file("reg.test", env_for(home)) == Credentials("docker", "p")


def test_the_first_file_with_an_entry_for_the_host_wins_not_the_first_file_that_exists(home):
    write(home / "run" / "containers" / "auth.json", {"auths": {"other.test": entry("runtime", "p")}})
    write(home / "home" / ".docker" / "config.json", {"auths": {"reg.test": entry("docker", "p")}})
    assert credentials_from_auth_file("reg.test", env_for(home)) == Credentials("docker", "p")


def test_an_empty_entry_a_credential_helper_left_moves_on_to_the_next_file(home):
    write(home / "run" / "containers" / "auth.json", {"auths": {"reg.test": {}}})
    write(home / "home" / ".docker" / "config.json", {"auths": {"reg.test": entry("docker", "p")}})
    assert credentials_from_auth_file("reg.test", env_for(home)) == Credentials("docker", "p")


def test_registry_auth_file_is_the_only_file_read_when_set(home):
    chosen = write(home / "chosen.json", {"auths": {"other.test": entry("chosen", "p")}})
    write(home / "run" / "containers" / "auth.json", {"auths": {"reg.test": entry("runtime", "p")}})
    write(home / "home" / ".docker" / "config.json", {"auths": {"reg.test": entry("docker", "p")}})
    env = env_for(home, REGISTRY_AUTH_FILE=str(chosen))
    assert [p.path for p in auth_file_paths(env)] == [chosen]
    assert credentials_from_auth_file("reg.test", env) is None


def test_the_search_order_in_full(home):
    env = env_for(home, DOCKER_CONFIG="/dc")
    assert [(str(p.path), p.legacy) for p in auth_file_paths(env)] == [
        (f"{home}/run/containers/auth.json", False),
        (f"{home}/home/.config/containers/auth.json", False),
        ("/dc/config.json", False),
        (f"{home}/home/.dockercfg", True),
    ]


def test_without_xdg_runtime_dir_the_per_uid_file_under_run_containers_is_first(home):
    env = {"HOME": str(home / "home")}
    assert auth_file_paths(env)[0].path == Path(f"/run/containers/{os.getuid()}/auth.json")


def test_an_xdg_runtime_dir_that_does_not_exist_is_skipped(home):
    write(home / "home" / ".docker" / "config.json", {"auths": {"reg.test": entry("docker", "p")}})
    env = env_for(home, XDG_RUNTIME_DIR=str(home / "no-such-dir"))
    assert all("no-such-dir" not in str(p.path) for p in auth_file_paths(env))
    assert credentials_from_auth_file("reg.test", env) == Credentials("docker", "p")


# -- keys naming a repository or a namespace ---------------------------------------------------------------------


def test_a_repository_key_wins_over_its_namespace_and_its_host(home):
    auths = {
        "reg.test": entry("host", "p"),
        "reg.test/team": entry("namespace", "p"),
        "reg.test/team/app": entry("repository", "p"),
    }
    env = env_for(home, REGISTRY_AUTH_FILE=str(write(home / "a.json", {"auths": auths})))
    assert credentials_from_auth_file("reg.test", env, repository="team/app") == Credentials("repository", "p")
    assert credentials_from_auth_file("reg.test", env, repository="team/other") == Credentials("namespace", "p")
    assert credentials_from_auth_file("reg.test", env, repository="elsewhere/app") == Credentials("host", "p")
    assert credentials_from_auth_file("reg.test", env) == Credentials("host", "p")


def test_a_repository_key_never_answers_for_a_name_it_only_prefixes(home):
    auths = {"reg.test/team/app": entry("repository", "p")}
    env = env_for(home, REGISTRY_AUTH_FILE=str(write(home / "a.json", {"auths": auths})))
    assert credentials_from_auth_file("reg.test", env, repository="team/application") is None
    assert credentials_from_auth_file("reg.test", env, repository="team") is None
    assert credentials_from_auth_file("reg.test", env) is None


def test_a_repository_key_in_a_later_file_loses_to_a_host_key_in_an_earlier_one(home):
    write(home / "run" / "containers" / "auth.json", {"auths": {"reg.test": entry("runtime-host", "p")}})
    write(home / "home" / ".docker" / "config.json", {"auths": {"reg.test/team/app": entry("docker-repo", "p")}})
    assert credentials_from_auth_file("reg.test", env_for(home), repository="team/app") == Credentials(
        "runtime-host", "p"
    )


def test_the_legacy_dockercfg_knows_hosts_only_and_reads_a_keys_path_as_its_host(home):
    write(home / "home" / ".dockercfg", {"https://reg.test/team/app": entry("legacy", "p")})
    assert credentials_from_auth_file("reg.test", env_for(home), repository="other/repo") == Credentials("legacy", "p")


def test_a_docker_hub_repository_key_is_found_under_docker_io(home):
    auths = {"docker.io/library/nginx": entry("nginx", "p"), "https://index.docker.io/v1/": entry("hub", "p")}
    env = env_for(home, REGISTRY_AUTH_FILE=str(write(home / "a.json", {"auths": auths})))
    assert credentials_from_auth_file("docker.io", env, repository="library/nginx") == Credentials("nginx", "p")
    assert credentials_from_auth_file("docker.io", env, repository="library/redis") == Credentials("hub", "p")


# -- identity tokens -----------------------------------------------------------------------------------------------


def test_an_identitytoken_entry_gives_the_refresh_token_and_never_shows_it(home):
    token_entry = {**entry("00000000-0000-0000-0000-000000000000", ""), "identitytoken": "refresh-SECRET"}
    env = env_for(home, REGISTRY_AUTH_FILE=str(write(home / "a.json", {"auths": {"reg.test": token_entry}})))
    found = credentials_from_auth_file("reg.test", env)
    assert found is not None and found.identity_token == "refresh-SECRET"
    assert "refresh-SECRET" not in repr(found) and "refresh-SECRET" not in str(found)


def test_an_identitytoken_entry_without_auth_is_used(home):
    env = env_for(home, REGISTRY_AUTH_FILE=str(write(home / "a.json", {"auths": {"reg.test": {"identitytoken": "t"}}})))
    found = credentials_from_auth_file("reg.test", env)
    assert found is not None and found.identity_token == "t" and found.password == ""


def test_a_credential_helpers_identity_token_is_used_as_one(home, monkeypatch):
    bindir = home / "bin"
    bindir.mkdir()
    helper = bindir / "docker-credential-tokens"
    helper.write_text(
        '#!/bin/sh\ncat >/dev/null\necho \'{"ServerURL":"reg.test","Username":"<token>","Secret":"t0k"}\'\n'
    )
    helper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}")
    env = env_for(home, REGISTRY_AUTH_FILE=str(write(home / "a.json", {"credHelpers": {"reg.test": "tokens"}})))
    found = credentials_from_auth_file("reg.test", env)
    assert found is not None and found.identity_token == "t0k" and not (found.username or found.password)
