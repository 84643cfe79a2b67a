"""The README's five-minute walk-through, run as written against the local services.

How the README's section "A five-minute walk-through" is read (a change to it that breaks these rules fails here):

- each ```yaml block whose first line is a comment naming a file (`# platform.yaml`) is written to that file;
- the ```sh blocks are read line by line: `eval "$(scripts/services env)"` takes the running services' variables
  (the real script's output), `export NAME=VALUE ...` sets variables, `mkdir`/`cd` lines are where a reader
  makes a directory of their own (the test runs in an empty temporary directory instead), and every line that
  starts with `mirror` runs the installed command there, in order; `# exit N` in its comment is the exit code it
  must end with (0 when none). Any other line fails the test, so the walk-through stays plain commands;
- the blocks name the services at their default addresses (port base 15000, as `manifests/example.yaml` does);
  each is replaced by the address of the services the tests run against (`scripts/lib/services/ports.py`).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path

from tests.conftest import MIRROR, internal_repositories
from tests.support.services import SCRIPT, Services, parse_env, ports

README = Path(__file__).resolve().parents[2] / "README.md"
_SECTION = re.compile(r"^## A five-minute walk-through\n(.*?)(?=^## |\Z)", re.MULTILINE | re.DOTALL)
_BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.MULTILINE | re.DOTALL)
_FILE_COMMENT = re.compile(r"#\s*(\S+\.ya?ml)\s*$")
_EXIT = re.compile(r"#\s*exit (\d+)\b")
_VARIABLE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")


def walkthrough() -> tuple[dict[str, str], list[str]]:
    """The files the walk-through writes (name to text) and its shell lines, in order."""
    match = _SECTION.search(README.read_text(encoding="utf-8"))
    assert match, "README.md has no section '## A five-minute walk-through'"
    files: dict[str, str] = {}
    lines: list[str] = []
    for language, body in _BLOCK.findall(match.group(1)):
        if language == "yaml":
            named = _FILE_COMMENT.fullmatch(body.splitlines()[0])
            assert named, f"a yaml block of the walk-through does not name its file in its first line: {body[:60]!r}"
            files[named.group(1)] = body
        elif language == "sh":
            lines += [line.strip() for line in body.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return files, lines


def local_addresses(text: str) -> str:
    """The services' default addresses in `text` replaced by those of the services the tests use."""
    default, running = ports.Ports.from_base(ports.DEFAULT_BASE), ports.configured()
    for name in ports.OFFSETS:
        text = text.replace(default.address(name), running.address(name))
    return text


def expand(line: str, env: dict[str, str]) -> str:
    return _VARIABLE.sub(lambda m: env.get(m.group(1) or m.group(2), ""), line)


def test_the_walkthrough_writes_files_and_runs_the_steps_it_promises():
    files, lines = walkthrough()
    assert {"platform.yaml", "policy.yaml"} <= files.keys()
    commands = [shlex.split(line, comments=True)[1] for line in lines if line.startswith("mirror ")]
    for step in ("keygen", "collect", "inspect", "approve", "verify", "import"):
        assert step in commands, f"the walk-through has no `mirror {step}`"


def test_every_mirror_line_of_the_walkthrough_runs_against_the_local_services(
    services: Services, upstream_images: dict[str, object], tmp_path: Path
):
    files, lines = walkthrough()
    for name, text in files.items():
        (tmp_path / name).write_text(local_addresses(text), encoding="utf-8")
    env = dict(os.environ)
    ran = []
    for line in lines:
        words = shlex.split(local_addresses(line), comments=True)
        if line == 'eval "$(scripts/services env)"':
            done = subprocess.run([str(SCRIPT), "env"], capture_output=True, text=True, check=True, timeout=120)
            env.update(parse_env(done.stdout))
        elif words[0] == "export":
            for assignment in words[1:]:
                name, _, value = assignment.partition("=")
                env[name] = expand(value, env)
        elif words[0] in ("mkdir", "cd"):
            continue  # the reader's own directory: here, tmp_path
        elif words[0] == "mirror":
            expected = _EXIT.search(line)
            args = [expand(word, env) for word in words[1:]]
            done = subprocess.run(
                [str(MIRROR), *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
            )
            wanted = int(expected.group(1)) if expected else 0
            assert done.returncode == wanted, f"{line}\nexit {done.returncode}\n{done.stdout}\n{done.stderr}"
            ran.append(words[1])
        else:
            raise AssertionError(f"the walk-through holds a line the test does not know how to run: {line}")
    assert "import" in ran
    assert (tmp_path / "review.html").is_file()
    assert "walkthrough/fixtures/app" in internal_repositories(services, "walkthrough")
