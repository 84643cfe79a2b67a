"""`mirror --help` prints a stored copy of typer's rendering without importing the command line.

The copy is regenerated from typer here and must be equal, so it cannot drift from the commands
(`python -m tests.support.helptext` rewrites it). No timing: what is imported, and what is printed.
"""

from __future__ import annotations

import os
import subprocess
import sys

from mirror.helptext import MAIN_HELP
from tests.support.helptext import ROOT, module_text, render


def _run(*arguments: str, columns: str = "120") -> subprocess.CompletedProcess[str]:
    probe = "import sys; sys.argv = ['mirror', *sys.argv[1:]]; from mirror.__main__ import main; main()"
    env = {**os.environ, "COLUMNS": columns}
    return subprocess.run(
        [sys.executable, "-X", "importtime", "-c", probe, *arguments],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=60,
    )  # fmt: skip


def _modules(done: subprocess.CompletedProcess[str]) -> set[str]:
    return {line.rsplit("|", 1)[1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}


def test_the_stored_help_is_what_typer_renders():
    assert render() == MAIN_HELP, "run `python -m tests.support.helptext` to regenerate mirror/helptext.py"


def test_typer_renders_the_same_help_on_a_wider_terminal():
    assert render(columns=250) == MAIN_HELP


def test_the_stored_help_module_is_what_the_generator_writes():
    assert (ROOT / "mirror" / "helptext.py").read_text() == module_text(MAIN_HELP)


def test_mirror_help_prints_the_stored_help_without_importing_typer_or_the_command_line():
    done = _run("--help")
    assert (done.returncode, done.stdout) == (0, MAIN_HELP)
    assert {"typer", "click", "mirror.cli"} & _modules(done) == set()


def test_on_a_terminal_narrower_than_80_columns_typer_renders_the_help():
    done = _run("--help", columns="60")
    assert done.returncode == 0 and done.stdout.startswith("Usage: mirror")
    assert "typer" in _modules(done)


def test_a_command_help_is_rendered_by_typer():
    done = _run("collect", "--help")
    assert done.returncode == 0 and "--since" in done.stdout
    assert "typer" in _modules(done)
