"""Git sources land under `--git BASE`, whatever their URL encodes; landing names follow the distribution grammar.

The upstream here is a dumb-HTTP Git server that decodes and resolves `%2e%2e` before it serves a path, as many
servers do: `http://HOST/a/%2e%2e/%2e%2e/escape.git` is its repository `escape.git`. Collect refuses such a URL
(in a MirrorSet or in an upstream Flux GitRepository); a signed bundle whose inventory carries one anyway (a
compromised collector, approved by tired officers) is refused by import before anything is written.
"""

from __future__ import annotations

import json
import re
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from mirror.cli import app
from mirror.trust.keys import PASSWORD_VARIABLE
from tests.conftest import internal_repositories
from tests.support.gitrepos import ls_remote, make_upstream_repo, repo_path
from tests.support.hostile.resolving import ResolvingGitServer, serve_bare_copy
from tests.support.journals import rollback_record
from tests.support.mirrorsets import mirrorset, write_mirrorset
from tests.support.signing import edit_inventory, resign, write_policy

PROBLEM_LINE = re.compile(r"^\s+- \[([A-Z_]+)\] ", re.MULTILINE)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("keys")
    for name in ("collector", "officer"):
        result = CliRunner().invoke(app, ["keygen", str(directory / name)], env={PASSWORD_VARIABLE: None})
        assert result.exit_code == 0, result.stderr
    return directory


@pytest.fixture
def policy(tmp_path: Path, keys: Path) -> Path:
    trust = tmp_path / "trust"
    trust.mkdir()
    return write_policy(trust / "policy.yaml", keys / "collector.pub", [keys / "officer.pub"])


@pytest.fixture
def escape(services, tmp_path: Path) -> Iterator[dict[str, str]]:
    """A repository `escape-<id>.git` on a dumb-HTTP upstream that resolves `%2e%2e`, and the URLs reaching it."""
    name = f"escape-{uuid.uuid4().hex[:8]}"
    upstream = make_upstream_repo(services, f"t{uuid.uuid4().hex[:8]}/{name}")
    root = tmp_path / "dumb"
    root.mkdir()
    serve_bare_copy(repo_path(services, upstream["name"]), root / f"{name}.git")
    with ResolvingGitServer(root) as server:
        yield {
            "name": name,
            "honest": f"{server.url}/{name}.git",
            "hostile": f"{server.url}/a/%2e%2e/%2e%2e/{name}.git",
        }


@pytest.fixture
def git_env(services, internal_env) -> dict[str, str]:
    return {**internal_env, "MIRROR_GIT_USERNAME": services.git_user, "MIRROR_GIT_PASSWORD": services.git_password}


def _manifest(tmp_path: Path, git: list[dict[str, Any]], flux: list[dict[str, Any]] | None = None) -> Path:
    document = mirrorset([])
    document["spec"]["git"] = git
    if flux is not None:
        document["spec"]["flux"] = flux
    path = tmp_path / f"m-{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(json.dumps(document))
    return path


def _landed_anywhere(services, name: str) -> list[str]:
    """Every path of the internal Git server's directory that carries this test's repository name."""
    root = Path(services.git_internal_dir)
    return sorted(str(p.relative_to(root)) for p in root.rglob(f"{name}*"))


def test_the_dumb_upstream_serves_the_repository_through_encoded_dot_segments(escape):
    """The premise: such an upstream really answers the hostile URL with a repository outside the URL's path."""
    assert ls_remote(escape["hostile"])["refs/heads/main"] == ls_remote(escape["honest"])["refs/heads/main"]


def test_collect_refuses_a_mirrorset_git_url_with_encoded_dot_segments(escape, mirror_cli, tmp_path):
    manifest = _manifest(tmp_path, [{"name": "escape", "url": escape["hostile"], "ref": {"branch": "main"}}])
    result = mirror_cli("collect", manifest, "-o", tmp_path / "b", "-q")
    assert result.exit_code == 2, result.stdout + result.stderr
    assert str(manifest) in result.stderr and "spec.git[0].url" in result.stderr
    assert not (tmp_path / "b").exists()


def test_collect_refuses_an_upstream_flux_git_repository_with_encoded_dot_segments(
    services, escape, mirror_cli, tmp_path
):
    fleet = make_upstream_repo(
        services,
        f"t{uuid.uuid4().hex[:8]}/fleet",
        files={
            "clusters/production/kustomization.yaml": None,
            "clusters/production/sources.yaml": f"""\
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata: {{name: apps, namespace: flux-system}}
spec:
  interval: 5m
  url: {escape["hostile"]}
  ref: {{branch: main}}
""",
        },
    )
    manifest = _manifest(
        tmp_path,
        [{"name": "fleet", "url": fleet["url"], "ref": {"branch": "main"}}],
        [{"git": "fleet", "path": "clusters/production"}],
    )
    result = mirror_cli("collect", manifest, "-o", tmp_path / "b", "-q")
    assert result.exit_code == 2, result.stdout + result.stderr
    assert "GitRepository flux-system/apps: spec.url" in result.stderr, result.stderr
    assert "%2e" in result.stderr
    assert not (tmp_path / "b").exists()


def test_import_refuses_a_signed_git_source_that_would_land_outside_base(
    services, escape, mirror_cli, tmp_path, keys, policy, git_env, internal_url, target_prefix
):
    """A compromised collector signs the hostile URL into the inventory; officers approve; import refuses (3)."""
    bundle = tmp_path / "bundle"
    manifest = _manifest(tmp_path, [{"name": "escape", "url": escape["honest"], "ref": {"branch": "main"}}])
    assert mirror_cli("collect", manifest, "-o", bundle, "-q").exit_code == 0

    def plant(body: dict[str, Any]) -> None:
        [git] = [a for a in body["artifacts"] if a["kind"] == "git"]
        git["source"] = escape["hostile"]

    edit_inventory(bundle, plant)
    resign(bundle, keys / "collector.key", [keys / "officer.key"])
    before = _landed_anywhere(services, escape["name"])
    base = f"{services.git_internal}/{target_prefix}"
    result = mirror_cli(
        "import",
        bundle,
        "--trust",
        policy,
        "--registry",
        internal_url,
        "--git",
        base,
        "--ca-file",
        services.ca_file,
        "-q",
        env=git_env,
    )
    assert result.exit_code == 3, result.stdout + result.stderr
    assert "GIT_TARGET_OUTSIDE_BASE" in PROBLEM_LINE.findall(result.stderr), result.stderr
    assert before == _landed_anywhere(services, escape["name"]) == []
    assert not (Path(services.git_internal_dir) / target_prefix).exists()
    assert internal_repositories(services, target_prefix) == []
    assert rollback_record(policy.parent / "state.json") is None


def _catalog_names(services, token: str) -> list[str]:
    """Every repository of the whole internal registry whose name starts with this test's token (read with curl;
    the catalogue is sorted, so the page after `token[:-1]` holds them all)."""
    done = subprocess.run(
        [
            "curl",
            "-sf",
            "--cacert",
            str(services.ca_file),
            "-u",
            f"{services.internal_user}:{services.internal_password}",
            f"https://{services.internal}/v2/_catalog?n=1000&last={token[:-1]}",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return [r for r in json.loads(done.stdout).get("repositories") or [] if r.startswith(token)]


def test_import_refuses_signed_artifacts_whose_landing_names_break_the_grammar(
    services, upstream_images, mirror_cli, tmp_path, keys, policy, internal_env, internal_url, target_prefix
):
    """A chart version that climbs out of its repository, a repository path with uppercase or '..': each is
    listed (LANDING_NAME_INVALID, exit 3) and nothing reaches the registry, inside the prefix or outside it."""
    token = f"escape{uuid.uuid4().hex[:8]}"
    bundle = tmp_path / "bundle"
    manifest = write_mirrorset(
        tmp_path / "m.yaml", [upstream_images["app_1"]["ref"]], registries={services.upstream: {"plainHTTP": True}}
    )
    assert mirror_cli("collect", manifest, "-o", bundle, "-q").exit_code == 0
    hostile = {
        "chart": f"{services.charts_url}/{token}/app",
        "upper": f"{services.upstream}/fixtures/App:1.0",
        "dots": f"{services.upstream}/fixtures/../{token}:1.0",
    }

    def plant(body: dict[str, Any]) -> None:
        [image] = body["artifacts"]
        chart = {
            **image,
            "kind": "chart",
            "source": hostile["chart"],
            "chart": "app",
            "version": f"../../../../{token}/manifests/x",
            "repo": f"{services.charts_url}/{token}",
        }
        body["artifacts"] = [chart, {**image, "source": hostile["upper"]}, {**image, "source": hostile["dots"]}]

    edit_inventory(bundle, plant)
    resign(bundle, keys / "collector.key", [keys / "officer.key"])
    assert _catalog_names(services, token) == []
    result = mirror_cli(
        "import",
        bundle,
        "--trust",
        policy,
        "--registry",
        internal_url,
        "--ca-file",
        services.ca_file,
        "-q",
        env=internal_env,
    )
    assert result.exit_code == 3, result.stdout + result.stderr
    assert PROBLEM_LINE.findall(result.stderr) == ["LANDING_NAME_INVALID"] * 3, result.stderr
    for source in hostile.values():
        assert source in result.stderr
    assert internal_repositories(services, target_prefix) == []
    assert _catalog_names(services, token) == []
    assert rollback_record(policy.parent / "state.json") is None
