"""`mirror audit` on the real services: clean after real imports, then drift injected with the tools an operator
(or an intruder) would use, skopeo and `git push --force`, and a truncated journal (docs/audit.md)."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from mirror.trust.dsse import parse_envelope
from mirror.trust.keys import load_public_key
from tests.support.gitrepos import git_env, make_upstream_repo, run_git
from tests.support.journals import lines, rewrite
from tests.support.mirrorsets import mirrorset
from tests.support.signedbundles import SmallBundle, Trust, make_trust, sign

APP, WEB = "upstream.example/team/app:1.0", "upstream.example/team/web:2.0"


@pytest.fixture
def trust(tmp_path: Path) -> Trust:
    return make_trust(tmp_path / "trust")


@pytest.fixture
def run_audit(mirror_cli, services, internal_env, internal_url, trust):  # type: ignore[no-untyped-def]
    def run(*extra: object, env: dict[str, str] | None = None) -> Any:
        return mirror_cli(
            "audit", "--trust", trust.policy, "--registry", internal_url, "--ca-file", services.ca_file,
            *extra, env={**internal_env, **(env or {})},
        )  # fmt: skip

    return run


@pytest.fixture
def imported(tmp_path, mirror_cli, services, internal_env, internal_url, trust) -> None:  # type: ignore[no-untyped-def]
    """team/app:1.0 and team/web:2.0 imported from a signed, approved bundle."""
    bundle = SmallBundle(tmp_path / "night-1", bundle_id="night-1")
    bundle.image(APP)
    bundle.image(WEB)
    bundle.finish()
    sign(bundle.root, trust, sequence=1)
    result = mirror_cli(
        "import", bundle.root, "--trust", trust.policy, "--registry", internal_url, "--ca-file", services.ca_file,
        "-q", env=internal_env,
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr


def skopeo_copy(services: Any, source: str, destination: str) -> None:
    """Another client writing to the internal registry behind the journal's back."""
    creds = f"{services.internal_user}:{services.internal_password}"
    subprocess.run(
        [
            "skopeo", "--insecure-policy", "copy", "-q", "--src-cert-dir", str(services.cert_dir),
            "--dest-cert-dir", str(services.cert_dir), "--src-creds", creds, "--dest-creds", creds,
            f"docker://{services.internal}/{source}", f"docker://{services.internal}/{destination}",
        ],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip


def drift(result: Any) -> list[tuple[str, str]]:
    return [(d["code"], d["subject"]) for d in json.loads(result.stdout)["drift"]]


def test_an_audit_right_after_a_real_import_is_clean_and_writes_a_statement(
    imported, run_audit, trust, tmp_path
) -> None:
    statement = tmp_path / "audit.intoto.json"
    result = run_audit("--statement", statement, "--key", trust.policy.parent / "officer.key")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "clean: the targets hold what the 1 bundle(s) put there (sequences 1)" in result.stdout
    envelope = parse_envelope(statement.read_bytes(), str(statement))
    public = load_public_key(trust.policy.parent / "officer.pub")
    assert envelope.signed_by([public]) == [public]
    assert json.loads(envelope.payload)["predicate"]["clean"] is True


def test_skopeo_copying_another_image_onto_an_imported_tag_is_exit_5_naming_the_tag(
    imported, run_audit, services, target_prefix
) -> None:
    skopeo_copy(services, f"{target_prefix}/team/web:2.0", f"{target_prefix}/team/app:1.0")
    result = run_audit("--json")
    assert result.exit_code == 5, result.stdout + result.stderr
    assert drift(result) == [("TAG_MOVED", f"{target_prefix}/team/app:1.0")]
    text = run_audit()
    assert text.exit_code == 5
    assert f"DRIFT [TAG_MOVED] {target_prefix}/team/app:1.0" in text.stdout
    assert "no statement" not in text.stderr and "1 drift(s)" in text.stderr


def test_skopeo_copying_a_new_tag_into_an_imported_repository_is_exit_5_tag_unexpected(
    imported, run_audit, services, target_prefix
) -> None:
    skopeo_copy(services, f"{target_prefix}/team/app:1.0", f"{target_prefix}/team/app:side-loaded")
    result = run_audit("--json")
    assert result.exit_code == 5, result.stdout + result.stderr
    assert drift(result) == [("TAG_UNEXPECTED", f"{target_prefix}/team/app:side-loaded")]


def test_a_repository_side_loaded_under_the_prefix_is_exit_5_and_only_journaled_skips_it(
    imported, run_audit, services, target_prefix, trust, tmp_path
) -> None:
    skopeo_copy(services, f"{target_prefix}/team/app:1.0", f"{target_prefix}/side/loaded:1")
    result = run_audit("--json", "--statement", tmp_path / "s.json", "--key", trust.policy.parent / "officer.key")
    assert result.exit_code == 5, result.stdout + result.stderr
    assert drift(result) == [("REPOSITORY_UNEXPECTED", f"{target_prefix}/side/loaded")]
    assert not (tmp_path / "s.json").exists() and "no statement written" in result.stderr
    assert run_audit("--only-journaled").exit_code == 0


def test_a_truncated_journal_is_exit_3_with_the_journals_code(imported, run_audit, trust) -> None:
    state_file = trust.policy.parent / "state.json"
    rewrite(state_file, lines(state_file)[:0])
    result = run_audit()
    assert result.exit_code == 3, result.stdout + result.stderr
    assert "JOURNAL_TRUNCATED" in result.stderr and result.stdout == ""


def test_a_force_push_to_the_internal_git_server_is_exit_5_naming_the_ref(
    tmp_path, mirror_cli, services, internal_env, internal_url, target_prefix, trust, run_audit
) -> None:
    repo = make_upstream_repo(services, f"t{uuid.uuid4().hex[:8]}/fleet")
    manifest = tmp_path / "git.yaml"
    document = mirrorset([])
    document["spec"]["git"] = [{"name": "fleet", "url": repo["url"], "ref": {"branch": "main"}}]
    manifest.write_text(json.dumps(document))
    bundle = tmp_path / "git-bundle"
    assert mirror_cli("collect", manifest, "-o", bundle, "-q").exit_code == 0
    sign(bundle, trust, sequence=1)
    base = f"{services.git_internal}/{target_prefix}"
    git_creds = {"MIRROR_GIT_USERNAME": services.git_user, "MIRROR_GIT_PASSWORD": services.git_password}
    imported = mirror_cli(
        "import", bundle, "--trust", trust.policy, "--registry", internal_url, "--git", base,
        "--ca-file", services.ca_file, "-q", env={**internal_env, **git_creds},
    )  # fmt: skip
    assert imported.exit_code == 0, imported.stderr
    assert run_audit("--git", base, env=git_creds).exit_code == 0

    target = f"{base}/{repo['name']}.git"
    work = tmp_path / "clone"
    env = git_env(services, auth=True)
    run_git(["clone", "-q", target, work], env=env)
    run_git(["commit", "-q", "--allow-empty", "-m", "rewritten on the high side"], cwd=work, env=env)
    run_git(["reset", "-q", "--hard", "HEAD~2"], cwd=work, env=env, check=False)
    run_git(["commit", "-q", "--allow-empty", "-m", "history rewritten"], cwd=work, env=env)
    run_git(["push", "-q", "--force", "origin", "HEAD:refs/heads/main"], cwd=work, env=env)

    result = run_audit("--git", base, "--json", env=git_creds)
    assert result.exit_code == 5, result.stdout + result.stderr
    assert drift(result) == [("REF_MOVED", f"{target} refs/heads/main")]
