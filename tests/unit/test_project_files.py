"""The project's own supply chain: one version source, and lock files that pin and hash every dependency.

scripts/setup installs requirements/test.txt with --require-hashes and mirror itself with --no-deps, so a
dependency declared in pyproject.toml but missing from a lock would simply not be installed.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import mirror

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
_PIN = re.compile(r"^(?P<name>[A-Za-z0-9._-]+)==(?P<version>\S+)$")


def _locked(name: str) -> dict[str, tuple[str, list[str]]]:
    """Package -> (version, hashes) from a lock file; fails on any line that is not a hashed pin."""
    text = (ROOT / "requirements" / name).read_text()
    entries: dict[str, tuple[str, list[str]]] = {}
    for logical in re.sub(r"\\\n", " ", text).splitlines():
        line = logical.split("#", 1)[0].strip()
        if not line:
            continue
        pin, *options = line.split()
        match = _PIN.match(pin)
        assert match, f"{name}: not an exact pin: {line!r}"
        hashes = [option.removeprefix("--hash=") for option in options if option.startswith("--hash=sha256:")]
        assert hashes and len(hashes) == len(options), f"{name}: {pin} needs sha256 hashes and nothing else"
        entries[canonicalize_name(match["name"])] = (match["version"], hashes)
    return entries


def _declared(*extras: str) -> list[Requirement]:
    wanted = [*PYPROJECT["project"]["dependencies"], *PYPROJECT["build-system"]["requires"]]
    for extra in extras:
        wanted += PYPROJECT["project"]["optional-dependencies"][extra]
    return [Requirement(text) for text in wanted]


def test_the_version_is_written_only_in_mirror_init():
    assert "version" not in PYPROJECT["project"]
    assert "version" in PYPROJECT["project"]["dynamic"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "mirror.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+", mirror.__version__)


@pytest.mark.parametrize(("lock", "extras"), [("runtime.txt", ()), ("test.txt", ("test",))])
def test_a_lock_pins_every_declared_dependency_within_its_range(lock, extras):
    locked = _locked(lock)
    for requirement in _declared(*extras):
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{lock} lacks {requirement}: run scripts/lock"
        assert requirement.specifier.contains(locked[name][0], prereleases=True), (
            f"{lock} pins {name}=={locked[name][0]}, outside {requirement}: run scripts/lock"
        )


def test_the_test_lock_holds_the_runtime_lock_unchanged():
    runtime, test = _locked("runtime.txt"), _locked("test.txt")
    assert {name: test.get(name) for name in runtime} == runtime


def test_version_reads_no_installed_package_metadata():
    # importlib.metadata costs tens of milliseconds to import and scan on every run; --version must not pay it.
    probe = (
        "import atexit, sys\n"
        "atexit.register(lambda: print('importlib.metadata' in sys.modules))\n"
        "from mirror.cli import main\n"
        "sys.argv = ['mirror', '--version']\n"
        "main()\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.stdout.split() == ["mirror", mirror.__version__, "False"]


def test_no_tracked_file_is_a_link_out_of_the_repository():
    # A worktree's tests/schemas/node_modules link was committed once and replaced the real directory on checkout.
    listed = subprocess.run(
        ["git", "ls-files", "-s"], cwd=ROOT, capture_output=True, text=True, check=False
    ).stdout.splitlines()
    links = [line.split("\t", 1)[1] for line in listed if line.startswith("120000 ")]
    assert links == []


def test_no_two_test_modules_share_a_file_name():
    # The test folders have no __init__.py, so pytest imports each module under its bare name: two files of one
    # name (tests/unit/test_x.py and tests/integration/test_x.py) stop the whole suite at collection.
    seen: dict[str, list[str]] = {}
    for path in sorted((ROOT / "tests").rglob("test_*.py")):
        seen.setdefault(path.name, []).append(str(path.relative_to(ROOT)))
    assert {name: paths for name, paths in seen.items() if len(paths) > 1} == {}
