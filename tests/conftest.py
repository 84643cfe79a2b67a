"""Shared fixtures. Integration tests use the real registries that scripts/services starts on loopback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from mirror.cli import app
from tests.support.mirrorsets import write_mirrorset as write_mirrorset_file
from tests.support.seed import seed_upstream
from tests.support.services import Services, ensure_services

REPO_ROOT = Path(__file__).resolve().parents[1]
MIRROR = REPO_ROOT / ".venv" / "bin" / "mirror"

# Variables that would let the environment steer TLS, proxies or credentials (threat 29).
_ENVIRONMENT_HIJACK = (
    "HTTPS_PROXY",
    "HTTP_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "https_proxy",
    "http_proxy",
    "all_proxy",
    "no_proxy",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "REGISTRY_AUTH_FILE",
    "MIRROR_REGISTRY_USERNAME",
    "MIRROR_REGISTRY_PASSWORD",
    "MIRROR_DEBUG",
    "MIRROR_LOG_FORMAT",
    "MIRROR_CHARTS_USERNAME",
    "MIRROR_CHARTS_PASSWORD",
    "MIRROR_CHARTS_HOST",
    "MIRROR_GIT_USERNAME",
    "MIRROR_GIT_PASSWORD",
    "MIRROR_GIT_HOST",
    "MIRROR_USE_ENV_PROXY",
    "MIRROR_HELM",
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    for name in _ENVIRONMENT_HIJACK:
        monkeypatch.delenv(name, raising=False)
    # Never read the developer's own registry credentials.
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path_factory.mktemp("docker-config")))
    # ...nor the other places containers-auth.json(5) and .netrc are looked up (a missing NETRC file is no .netrc).
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path_factory.mktemp("runtime-dir")))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("config-home")))
    monkeypatch.setenv("NETRC", str(tmp_path_factory.mktemp("netrc") / "absent"))
    # oras-py reads ~/.docker/config.json whatever DOCKER_CONFIG says, and its entries replace the credentials a
    # test gives it: a developer's own login would make the oras checks fail (or pass) for the wrong reason.
    if "oras.utils" in sys.modules:
        monkeypatch.setattr(sys.modules["oras.utils"], "find_docker_config", lambda exists=True: None)
    # Each test starts with an empty blob cache, never the developer's own.
    monkeypatch.setenv("MIRROR_CACHE_DIR", str(tmp_path_factory.mktemp("blob-cache")))


@pytest.fixture(scope="session")
def services() -> Services:
    return ensure_services()


@pytest.fixture(scope="session")
def upstream_images(services: Services) -> dict[str, dict[str, Any]]:
    return seed_upstream(services.upstream)


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


Run = Callable[..., CliResult]


@pytest.fixture
def mirror_cli() -> Run:
    """Run the mirror command in-process, as the console script would, with separate stdout and stderr."""

    def run(*args: str, env: dict[str, str] | None = None) -> CliResult:
        result = CliRunner().invoke(app, [str(a) for a in args], env=env, catch_exceptions=False)
        return CliResult(result.exit_code, result.stdout, result.stderr)

    return run


@pytest.fixture
def mirror_process() -> Run:
    """Run the installed console script in a subprocess: the real exit code and output of `mirror`."""

    def run(*args: str, env: dict[str, str] | None = None) -> CliResult:
        full_env = {**os.environ, **(env or {})}
        done = subprocess.run([str(MIRROR), *map(str, args)], capture_output=True, text=True, env=full_env, timeout=300)
        return CliResult(done.returncode, done.stdout, done.stderr)

    return run


@pytest.fixture
def write_mirrorset(tmp_path: Path) -> Callable[..., Path]:
    """Write a MirrorSet listing `images`, with the upstream registry as plain HTTP."""

    def write(images: list[Any], **options: Any) -> Path:
        name = f"{options.get('name', 'test')}-{uuid.uuid4().hex[:6]}.yaml"
        return write_mirrorset_file(tmp_path / name, images, **options)

    return write


@pytest.fixture
def internal_env(services: Services) -> dict[str, str]:
    """Credentials for the internal registry, the way an operator passes them."""
    return {
        "MIRROR_REGISTRY_USERNAME": services.internal_user,
        "MIRROR_REGISTRY_PASSWORD": services.internal_password,
    }


@pytest.fixture
def target_prefix() -> str:
    """A fresh prefix per test, so every test starts with an empty namespace on the internal registry."""
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def internal_url(services: Services, target_prefix: str) -> str:
    return f"https://{services.internal}/{target_prefix}"


def internal_repositories(services: Services, prefix: str) -> list[str]:
    """Repositories under `prefix/` on the internal registry, read with curl (an independent client).

    The catalogue is sorted, so asking for the entries after `prefix` finds them all within one page.
    """
    done = subprocess.run(
        [
            "curl",
            "-sf",
            "--cacert",
            str(services.ca_file),
            "-u",
            f"{services.internal_user}:{services.internal_password}",
            f"https://{services.internal}/v2/_catalog?n=1000&last={prefix}",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return [r for r in json.loads(done.stdout).get("repositories") or [] if r.startswith(f"{prefix}/")]


@pytest.fixture
def written_repositories(services: Services, target_prefix: str) -> Callable[[], list[str]]:
    """What the test's import wrote to the internal registry, to prove that a refusal wrote nothing."""
    return lambda: internal_repositories(services, target_prefix)


@pytest.fixture
def skopeo_internal(services: Services) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run skopeo against the internal registry with its CA and credentials."""

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["skopeo", "--insecure-policy", *args],
            capture_output=True,
            text=True,
            check=True,
            timeout=300,
        )

    return run


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "services" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.services)


@pytest.fixture
def no_leftovers() -> Iterator[Callable[[Path], list[str]]]:
    yield lambda directory: sorted(p.name for p in directory.iterdir() if ".partial" in p.name)
