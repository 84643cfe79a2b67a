"""`mirror restore` on the real services: a signed chain (a full bundle and two incrementals, images and a Git
source) imported into one prefix and Git base, then restored into empty ones; every tag names the same digest
and every ref the same commit (docs/day-two.md, "Restore")."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.support.gitrepos import add_commit, ls_remote, make_upstream_repo
from tests.support.images import Image, Layer, Layout, push
from tests.support.journals import lines
from tests.support.mirrorsets import mirrorset
from tests.support.services import UPSTREAM_REGISTRY
from tests.support.targetstate import tagged


class Upstream:
    """This test's own images on the upstream registry, sharing one base layer."""

    def __init__(self, services: Any, tmp_path: Path) -> None:
        self.namespace = f"restore{uuid.uuid4().hex[:8]}"
        self.host = services.upstream
        self.layout = Layout(tmp_path / "upstream-layout")
        self.base = Layer.from_seed(f"{self.namespace}/base", files=2, file_size=4096)

    def ref(self, name: str) -> str:
        return f"{self.host}/{self.namespace}/{name}"

    def publish(self, name: str, seed: str) -> None:
        image = Image([self.base, Layer.from_seed(f"{self.namespace}/{seed}")], labels={"seed": seed})
        self.layout.add(name, image)
        push(self.layout.path, name, self.ref(name))


def write_set(tmp_path: Path, images: list[str], git: dict[str, Any]) -> Path:
    document = mirrorset(images, registries={UPSTREAM_REGISTRY: {"plainHTTP": True}})
    document["spec"]["git"] = [git]
    path = tmp_path / f"night-{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(json.dumps(document))
    return path


@pytest.fixture
def chain(tmp_path, mirror_cli, services) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """Three signed, approved nights: app:1 and the fleet; then app:2 and a new commit; then app:1 rebuilt."""
    for name in ("collector", "officer"):
        assert mirror_cli("keygen", tmp_path / name).exit_code == 0
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        json.dumps(
            {
                "apiVersion": "mirror/v1",
                "kind": "TrustPolicy",
                "collectors": {"keys": [str(tmp_path / "collector.pub")], "threshold": 1},
                "approvers": {"keys": [str(tmp_path / "officer.pub")], "threshold": 1},
                "stateFile": "state.json",
            }
        )
    )
    upstream = Upstream(services, tmp_path)
    repo = make_upstream_repo(services, f"{upstream.namespace}/fleet")
    git = {"name": "fleet", "url": repo["url"], "ref": {"branch": "main"}}
    bundles = [tmp_path / f"n{n}.tar" for n in (1, 2, 3)]

    def collect(images: list[str], out: Path, since: Path | None) -> None:
        extra = ("--since", since) if since else ()
        manifest = write_set(tmp_path, [upstream.ref(i) for i in images], git)
        result = mirror_cli("collect", manifest, "-o", out, "-q", "--key", tmp_path / "collector.key", *extra)
        assert result.exit_code == 0, result.stderr
        approved = mirror_cli("approve", out, "--key", tmp_path / "officer.key", "--trust", policy)
        assert approved.exit_code == 0, approved.stderr

    upstream.publish("app:1", "app-1")
    collect(["app:1"], bundles[0], None)
    upstream.publish("app:2", "app-2")
    add_commit(services, repo["name"], "main", {"night-2.txt": "new\n"})
    collect(["app:1", "app:2"], bundles[1], bundles[0])
    upstream.publish("app:1", "app-1-rebuilt")
    collect(["app:1", "app:2"], bundles[2], bundles[1])
    return {"policy": policy, "bundles": bundles, "repo": repo}


@pytest.fixture
def git_env(services, internal_env) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {**internal_env, "MIRROR_GIT_USERNAME": services.git_user, "MIRROR_GIT_PASSWORD": services.git_password}


def refs(services: Any, git_base: str, repo: dict[str, Any]) -> dict[str, str]:
    return ls_remote(f"{git_base}/{repo['name']}.git", services, auth=True)


def import_then_restore(
    chain: dict[str, Any], mirror_cli: Any, services: Any, internal_url: str, git_base: str, git_env: dict[str, str]
) -> tuple[str, str, str, Any]:
    """The chain imported into `internal_url` and `git_base`, then restored (bundles given newest first) into a new,
    empty prefix and Git base: (that prefix, its registry URL, its Git base, the restore's result)."""
    for bundle in chain["bundles"]:
        imported = mirror_cli(
            "import", bundle, "--trust", chain["policy"], "--registry", internal_url, "--git", git_base,
            "--ca-file", services.ca_file, "-q", env=git_env,
        )  # fmt: skip
        assert imported.exit_code == 0, imported.stderr
    other = f"r{uuid.uuid4().hex[:10]}"
    other_url, other_git = f"https://{services.internal}/{other}", f"{services.git_internal}/{other}"
    restored = mirror_cli(
        "restore", *reversed(chain["bundles"]), "--trust", chain["policy"], "--registry", other_url,
        "--git", other_git, "--ca-file", services.ca_file, "-q", env=git_env,
    )  # fmt: skip
    assert restored.exit_code == 0, restored.stderr
    return other, other_url, other_git, restored


def test_a_chain_restored_into_an_empty_prefix_and_git_base_lands_every_tag_and_ref_as_imported(
    chain, mirror_cli, services, internal_url, target_prefix, git_env
):
    git_base = f"{services.git_internal}/{target_prefix}"
    other, other_url, other_git, restored = import_then_restore(
        chain, mirror_cli, services, internal_url, git_base, git_env
    )
    assert f"restored 3 bundle(s) into {other_url}" in restored.stdout and "mirror audit" in restored.stdout

    original = tagged(services, target_prefix)
    assert len(original) == 2 and tagged(services, other) == original
    assert refs(services, other_git, chain["repo"]) == refs(services, git_base, chain["repo"])

    entries = [json.loads(line) for line in lines(chain["policy"].parent / "state.json")]
    assert [(e["kind"], e["result"]) for e in entries] == [("import", "imported")] * 3 + [("restore", "restored")] * 3
    assert [e["restores"] for e in entries[3:]] == [1, 2, 3]
    assert [e["inventory"] for e in entries[3:]] == [e["inventory"] for e in entries[:3]]


def test_after_a_restore_into_an_empty_prefix_mirror_audit_finds_it_clean(
    chain, mirror_cli, services, internal_url, target_prefix, git_env
):
    git_base = f"{services.git_internal}/{target_prefix}"
    _, other_url, other_git, _ = import_then_restore(chain, mirror_cli, services, internal_url, git_base, git_env)

    audited = mirror_cli(
        "audit", "--trust", chain["policy"], "--registry", other_url, "--git", other_git,
        "--ca-file", services.ca_file, "--json", env=git_env,
    )  # fmt: skip

    assert audited.exit_code == 0, audited.stdout + audited.stderr
    assert audited.json()["drift"] == []


def test_a_chain_given_without_its_last_night_is_refused_and_nothing_is_written(
    chain, mirror_cli, services, internal_url, target_prefix, git_env
):
    git_base = f"{services.git_internal}/{target_prefix}"
    for bundle in chain["bundles"]:
        imported = mirror_cli(
            "import", bundle, "--trust", chain["policy"], "--registry", internal_url, "--git", git_base,
            "--ca-file", services.ca_file, "-q", env=git_env,
        )  # fmt: skip
        assert imported.exit_code == 0, imported.stderr
    other = f"r{uuid.uuid4().hex[:10]}"
    refused = mirror_cli(
        "restore", *chain["bundles"][:2], "--trust", chain["policy"], "--registry",
        f"https://{services.internal}/{other}", "--git", f"{services.git_internal}/{other}",
        "--ca-file", services.ca_file, "-q", env=git_env,
    )  # fmt: skip
    assert refused.exit_code == 2, refused.stderr
    assert "RESTORE_INCOMPLETE" in refused.stderr
    assert tagged(services, other) == {}
