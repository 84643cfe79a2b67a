"""The real fleets and charts in `../shared/realdata` (beside the clone, here and in CI), read where they are.

They are never copied into the project. In a `git worktree` the clone's parent is the worktree's, so the main
checkout's parent is tried too. Tests that need them skip cleanly when they are absent.
"""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


def _main_checkout(root: Path) -> Path | None:
    """The main checkout of a worktree, whose `.git` is a file naming `<main>/.git/worktrees/<name>`."""
    dot_git = root / ".git"
    if not dot_git.is_file():
        return None
    text = dot_git.read_text(encoding="utf-8", errors="replace").strip()
    if not text.startswith("gitdir:"):
        return None
    gitdir = Path(text.removeprefix("gitdir:").strip())
    return gitdir.parent.parent.parent if gitdir.parent.name == "worktrees" else None


def realdata_dir() -> Path | None:
    candidates = [REPO_ROOT.parent / "shared" / "realdata"]
    main = _main_checkout(REPO_ROOT)
    if main is not None:
        candidates.append(main.parent / "shared" / "realdata")
    return next((c for c in candidates if c.is_dir()), None)


def realdata(*parts: str) -> Path:
    """A path inside the real data; skips the test when the real data (or that path) is absent."""
    root = realdata_dir()
    if root is None:
        pytest.skip("../shared/realdata is not beside the clone")
    path = root.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"../shared/realdata/{'/'.join(parts)} is absent")
    return path
