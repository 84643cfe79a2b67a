"""Every `--help` renders: the top level and every command, as `mirror` and as `python -m mirror`.

The commands are enumerated from the Typer app itself, groups included, so that a command added later is
covered without touching this file. Help texts are plain text: a `[/PREFIX]` is shown as written, never read
as markup (it once crashed `mirror import --help`).
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from mirror.cli import app


def _command_paths() -> list[tuple[str, ...]]:
    """Every command and group below the top level, as the words that name it on the command line."""
    found: list[tuple[str, ...]] = []

    def walk(command: Any, path: tuple[str, ...]) -> None:
        if path:
            found.append(path)
        for name, sub in getattr(command, "commands", {}).items():  # a group (Typer vendors its own click)
            walk(sub, (*path, name))

    walk(typer.main.get_command(app), ())
    return sorted(found)


def _command(path: tuple[str, ...]) -> Any:
    command: Any = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]
    return command


def _words(text: str) -> str:
    return " ".join(text.split())


COMMANDS = _command_paths()


def test_the_commands_are_found_in_the_app() -> None:
    assert {("collect",), ("import",), ("verify",), ("approve",), ("keygen",)} <= set(COMMANDS)


def test_the_top_level_help_renders_and_lists_every_command() -> None:
    result = CliRunner().invoke(app, ["--help"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    for (name,) in [path for path in COMMANDS if len(path) == 1]:
        assert name in result.stdout


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_every_command_help_renders(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(app, [*path, "--help"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("Usage:")


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_every_help_text_is_shown_as_written(path: tuple[str, ...]) -> None:
    # Brackets, braces and backslashes included: `https://HOST[:PORT][/PREFIX]`, `Image{Digest,Tag}MirrorSets`.
    shown = _words(CliRunner().invoke(app, [*path, "--help"], catch_exceptions=False).stdout)
    for parameter in _command(path).params:
        text = getattr(parameter, "help", None)
        if text and not getattr(parameter, "hidden", False):
            assert _words(text) in shown, (parameter.name, text)


def test_python_dash_m_mirror_top_level_help_renders() -> None:
    done = subprocess.run([sys.executable, "-m", "mirror", "--help"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Usage:")


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_python_dash_m_mirror_command_help_renders(path: tuple[str, ...]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mirror", *path, "--help"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Usage:") and not done.stderr


def _option_help(path: tuple[str, ...], flag: str) -> str:
    [option] = [p for p in _command(path).params if flag in getattr(p, "opts", [])]
    return str(option.help)


def test_prune_s_importer_key_signs_the_prune_s_journal_entry() -> None:
    assert "prune" in _option_help(("prune",), "--importer-key")


def test_serve_s_jobs_bound_the_hashing_of_its_verification_not_network_transfers() -> None:
    assert _option_help(("serve",), "--jobs") == "Parallel hashing while the bundles are verified."


def test_audit_s_registry_takes_a_port_as_every_other_registry_flag() -> None:
    assert "https://HOST[:PORT][/PREFIX]" in _option_help(("audit",), "--registry")
