"""docs/scaling.md's "Try it on one machine", run as written against the local services: a MirrorSet split into
two shards, each collected by the nightly script as one pod of the indexed Job would, with a key of its own; each
bundle approved, then imported.

How the section is read: each ```yaml block whose first line is a comment naming a file (`# fleet.yaml`) is
written to that file, and the ```sh blocks run, in order, as one `bash -eu` script in that directory, with the
services' variables (`scripts/services env`), `mirror` and the checkout's Python first on PATH, and MIRROR_REPO
naming the checkout. The page names the services at their default addresses; they are replaced by those of the
services the tests run against.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from tests.conftest import internal_repositories
from tests.integration.test_readme_walkthrough import local_addresses
from tests.support.services import SCRIPT, Services, parse_env

REPO_ROOT = Path(__file__).resolve().parents[2]
PAGE = REPO_ROOT / "docs" / "scaling.md"
_SECTION = re.compile(r"^## Try it on one machine\n(.*?)(?=^## |\Z)", re.MULTILINE | re.DOTALL)
_BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.MULTILINE | re.DOTALL)
_FILE_COMMENT = re.compile(r"#\s*(\S+\.ya?ml)\s*$")


def section() -> tuple[dict[str, str], str]:
    """The files the section writes (name to text) and its shell script."""
    match = _SECTION.search(PAGE.read_text(encoding="utf-8"))
    assert match, "docs/scaling.md has no section '## Try it on one machine'"
    files: dict[str, str] = {}
    script = []
    for language, body in _BLOCK.findall(match.group(1)):
        if language == "yaml":
            named = _FILE_COMMENT.fullmatch(body.splitlines()[0])
            assert named, f"a yaml block of the section does not name its file in its first line: {body[:60]!r}"
            files[named.group(1)] = body
        elif language == "sh":
            script.append(body)
    return files, "\n".join(script)


def test_the_sharded_walkthrough_collects_approves_and_imports_every_shard(
    services: Services, upstream_images: dict[str, object], tmp_path: Path
):
    files, script = section()
    assert {"fleet.yaml", "policy.yaml"} <= files.keys()
    for name, text in files.items():
        (tmp_path / name).write_text(local_addresses(text), encoding="utf-8")
    env = dict(os.environ)
    env.update(parse_env(subprocess.run([str(SCRIPT), "env"], capture_output=True, text=True, check=True).stdout))
    env["PATH"] = f"{REPO_ROOT / '.venv' / 'bin'}:{env['PATH']}"
    env["MIRROR_REPO"] = str(REPO_ROOT)
    done = subprocess.run(
        ["bash", "-eu", "-c", local_addresses(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    assert len(list(tmp_path.glob("shard-*/bundles/*.tar"))) == 2  # one bundle per shard
    imported = internal_repositories(services, "sharded")
    for repository in ("fixtures/app", "fixtures/docker", "fixtures/shared-a"):
        assert f"sharded/{repository}" in imported
