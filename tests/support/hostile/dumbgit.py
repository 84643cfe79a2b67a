"""A dumb-HTTP Git upstream (static files of a bare repository) whose advertised refs a test may rewrite."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote, urlsplit

from tests.support.hostile import Answer, Request, Route


def bare_repository(root: Path, tags: tuple[str, ...] = ("v1.0.0",)) -> Path:
    """A bare repository with one commit on main and `tags` on it, prepared for dumb HTTP."""
    work = root / "work"
    git = ["git", "-c", "user.email=t@example.com", "-c", "user.name=t", "-c", "init.defaultBranch=main"]
    subprocess.run([*git, "init", "-q", str(work)], check=True)
    subprocess.run([*git, "-C", str(work), "commit", "-q", "--allow-empty", "-m", "one"], check=True)
    for tag in tags:
        subprocess.run([*git, "-C", str(work), "tag", tag], check=True)
    bare = root / "repo.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(bare)], check=True)
    subprocess.run(["git", "-C", str(bare), "update-server-info"], check=True)
    return bare


def head_commit(bare: Path) -> str:
    return subprocess.run(
        ["git", "-C", str(bare), "rev-parse", "main"], check=True, capture_output=True, text=True
    ).stdout.strip()


def dumb_git(bare: Path, refs: Callable[[str], str] = lambda text: text) -> Route:
    """Serve `bare` at /repo.git as static files; `refs` rewrites the text of info/refs before it is sent."""

    def route(request: Request) -> Answer:
        path = unquote(urlsplit(request.path).path)
        if not path.startswith("/repo.git/"):
            return Answer(404)
        relative = path.removeprefix("/repo.git/")
        if relative == "info/refs":
            return Answer(200, {"Content-Type": "text/plain"}, refs((bare / "info" / "refs").read_text()).encode())
        target = (bare / relative).resolve()
        if not target.is_relative_to(bare.resolve()) or not target.is_file():
            return Answer(404)
        return Answer(200, {"Content-Type": "application/octet-stream"}, target.read_bytes())

    return route
