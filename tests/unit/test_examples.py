"""The shipped examples (manifests/examples): Hauler manifests and Zarf packages rewritten by hand as MirrorSets.
Each loads with the real loader, carries something, and names at its top the upstream file it rewrites (repository,
path inside that repository, commit), so a reader can put the two side by side."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mirror.manifest.load import load_mirrorsets

EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "manifests" / "examples"
EXAMPLES = sorted(EXAMPLES_DIR.glob("*.yaml"))
UPSTREAMS = {"hauler": "hauler-dev/hauler", "zarf": "zarf-dev/zarf"}
_REWRITES = re.compile(r"^# Rewrites (?P<repo>[\w.-]+/[\w.-]+) (?P<path>\S+) \(commit (?P<commit>[0-9a-f]{40})\)", re.M)


def header(path: Path) -> str:
    """The comment block at the top of the file, before its first YAML line."""
    lines = []
    for line in path.read_text().splitlines():
        if line and not line.startswith("#"):
            break
        lines.append(line)
    return "\n".join(lines)


def test_there_are_examples_from_both_hauler_and_zarf() -> None:
    tools = {path.name.split("-", 1)[0] for path in EXAMPLES}
    assert tools == set(UPSTREAMS)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_the_example_loads_with_the_real_loader_and_carries_something(path: Path) -> None:
    for mirrorset in load_mirrorsets([path]):
        carried = (mirrorset.images, mirrorset.charts, mirrorset.git, mirrorset.flux, mirrorset.files)
        assert any(carried), f"{path.name}: MirrorSet {mirrorset.name} carries nothing"


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_the_example_names_the_upstream_file_it_rewrites(path: Path) -> None:
    found = _REWRITES.search(header(path))
    assert found, f"{path.name}: no '# Rewrites OWNER/REPO PATH (commit HEX)' line in the comments at its top"
    assert found["repo"] == UPSTREAMS[path.name.split("-", 1)[0]]
    upstream_path = found["path"]
    assert not upstream_path.startswith(("/", "..")) and "realdata" not in upstream_path, (
        f"{path.name}: {upstream_path} must be the path inside {found['repo']}"
    )


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_the_example_says_what_could_not_be_expressed(path: Path) -> None:
    assert "Not expressible" in header(path), f"{path.name}: say what the rewrite leaves out, or 'none'"
