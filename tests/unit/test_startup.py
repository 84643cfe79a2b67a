"""Start-up stays light: a command that draws no progress bar never imports tqdm, and the CLI never pydantic.

Every mirror command pays its imports before any work; on small nights they are most of the run. These tests
time nothing: they check what makes start-up fast (docs/development.md, "Start-up", has the figures).
"""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
import tomllib
from pathlib import Path

from mirror.cli import app

ROOT = Path(__file__).resolve().parents[2]
# Libraries a command imports only when it does the work that needs them; the command-line client httpx ships
# (click, rich, pygments) is never needed.
NETWORK_AND_CRYPTO = ("httpx", "httpcore", "cryptography", "sigstore", "yaml")
RENDERING = ("rich", "pygments", "click")

_PROBE = """
import atexit, sys
atexit.register(lambda: print(sorted(m for m in ("tqdm", "pydantic") if m in sys.modules)))
from mirror.cli import main
sys.argv = ["mirror", *sys.argv[1:]]
main()
"""


def _heavy_modules_after(*arguments: str) -> str:
    done = subprocess.run([sys.executable, "-c", _PROBE, *arguments], capture_output=True, text=True, timeout=60)
    return done.stdout.strip().splitlines()[-1]


def test_a_collect_without_a_terminal_imports_neither_tqdm_nor_pydantic(tmp_path):
    manifest = tmp_path / "empty.yaml"
    manifest.write_text("apiVersion: mirror/v1\nkind: MirrorSet\nmetadata: {name: x}\nspec: {images: []}\n")
    assert _heavy_modules_after("collect", str(manifest), "-o", str(tmp_path / "out")) == "[]"


def test_an_import_refused_for_usage_imports_neither(tmp_path):
    assert _heavy_modules_after("import", str(tmp_path), "--registry", "https://127.0.0.1:1") == "[]"


def _imported(*command: str) -> set[str]:
    """The top-level packages a run imports, as `python -X importtime` lists them."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", *command], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    names = re.findall(r"^import time:.*\| +(\S+)$", done.stderr, re.MULTILINE)
    return {name.split(".")[0] for name in names}


def _console_script(*arguments: str) -> set[str]:
    """Runs the function pyproject.toml declares as the `mirror` console script, as the installed script does."""
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]["mirror"]
    module, function = declared.split(":")
    probe = f"import sys; sys.argv = ['mirror', *sys.argv[1:]]; from {module} import {function}; {function}()"
    return _imported("-c", probe, *arguments)


def test_version_imports_neither_the_command_line_framework_nor_any_heavy_library():
    for imported in (_console_script("--version"), _imported("-m", "mirror", "--version")):
        assert imported & {"typer", *RENDERING, *NETWORK_AND_CRYPTO} == set()


def test_help_imports_no_network_crypto_or_rendering_library():
    assert _console_script("--help") & {*RENDERING, *NETWORK_AND_CRYPTO} == set()


def test_a_collect_never_imports_the_httpx_command_line_client(tmp_path):
    # httpx imports its own CLI (click, rich, pygments: ~0.1 s) whenever click happens to be installed.
    manifest = tmp_path / "empty.yaml"
    manifest.write_text("apiVersion: mirror/v1\nkind: MirrorSet\nmetadata: {name: x}\nspec: {images: []}\n")
    imported = _console_script("collect", str(manifest), "-o", str(tmp_path / "out"), "--quiet")
    assert "httpx" in imported
    assert imported & set(RENDERING) == set()


def test_command_annotations_are_objects_typer_need_not_evaluate_from_strings():
    # With `from __future__ import annotations` in cli.py typer evaluated ~500 annotation strings on every run.
    callbacks = [command.callback for command in app.registered_commands]
    assert app.registered_callback is not None
    callbacks.append(app.registered_callback.callback)
    as_strings = {
        f"{callback.__name__}.{name}"
        for callback in callbacks
        if callback is not None
        for name, annotation in inspect.get_annotations(callback).items()
        if isinstance(annotation, str)
    }
    assert as_strings == set()


# What a collect of images alone never needs: Git, Helm and Flux machinery, the upstream signature check (cosign,
# cryptography, sigstore: only when a verify rule applies), the review's diff (only for --report), semver and
# RE2 (only when an entry selects tags), and httpx's own transport (httpcore, h11: mirror.httptransport stands in).
NOT_FOR_IMAGES = (
    "mirror.git", "mirror.helm", "mirror.flux", "mirror.review", "mirror.supplychain.check",
    "mirror.supplychain.cosign", "cryptography", "sigstore", "mirror.semver", "re2", "httpcore", "h11",
)  # fmt: skip


def _modules_of(*arguments: str) -> set[str]:
    """Every module (full dotted name) the console script imports for this command line."""
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]["mirror"]
    module, function = declared.split(":")
    probe = f"import sys; sys.argv = ['mirror', *sys.argv[1:]]; from {module} import {function}; {function}()"
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", probe, *arguments], capture_output=True, text=True, timeout=60,
        cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return set(re.findall(r"^import time:.*\| +(\S+)$", done.stderr, re.MULTILINE))


def test_an_incremental_collect_of_images_imports_no_git_helm_flux_review_or_signature_check(tmp_path):
    manifest = tmp_path / "images.yaml"
    manifest.write_text("apiVersion: mirror/v1\nkind: MirrorSet\nmetadata: {name: x}\nspec: {images: []}\n")
    _modules_of("collect", str(manifest), "-o", str(tmp_path / "base"), "--quiet")
    imported = _modules_of("collect", str(manifest), "-o", str(tmp_path / "next"), "--since", str(tmp_path / "base"))
    assert "mirror.collector.run" in imported
    assert {m for m in imported if m.startswith(NOT_FOR_IMAGES)} == set()


def _modules_after_importing(module: str) -> set[str]:
    """Every module loaded once the command line and `module` are imported: cli.py imports a command's module
    inside the command, before it does any work."""
    loaded = "sorted(n for n, m in sys.modules.items() if m is not None)"
    probe = f"import sys, mirror.cli, {module}; print(' '.join({loaded}))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    return set(done.stdout.split())


def _under(imported: set[str], prefixes: tuple[str, ...]) -> set[str]:
    return {m for m in imported if any(m == p or m.startswith(p + ".") for p in prefixes)}


# Git, Flux and semver: only for a bundle that carries Git repositories or a fleet; the upstream signature check
# (cosign, sigstore) only when the trust policy requires signatures.
NOT_AT_IMPORT_START = (
    "mirror.git", "mirror.flux", "mirror.helm", "mirror.semver", "re2", "mirror.supplychain.check",
    "mirror.supplychain.cosign", "sigstore", "mirror.collector", "mirror.review",
)  # fmt: skip
# verify reads files and checks signatures: no network client at all, and the rest as for import.
NOT_AT_VERIFY_START = (*NOT_AT_IMPORT_START, "httpx", "httpcore", "mirror.registry", "mirror.importer")


def test_the_import_command_starts_without_git_flux_semver_or_upstream_signature_check():
    assert _under(_modules_after_importing("mirror.importer.run"), NOT_AT_IMPORT_START) == set()


def test_the_verify_command_starts_without_network_git_flux_or_upstream_signature_check():
    assert _under(_modules_after_importing("mirror.trust.check"), NOT_AT_VERIFY_START) == set()
