"""A dumb-HTTP Git upstream that resolves `%2e%2e` the way many real servers do.

`http.server.SimpleHTTPRequestHandler` percent-decodes the request path and then resolves its dot segments, so
`/a/%2e%2e/%2e%2e/escape.git/info/refs` is served from `ROOT/escape.git/info/refs`. A bare repository there, made
ready for dumb HTTP with `git update-server-info`, can be cloned through such a URL.
"""

from __future__ import annotations

import functools
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests.support.gitrepos import git_env, run_git


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        return


class ResolvingGitServer:
    """``with ResolvingGitServer(root) as server:`` serves the files under ROOT at ``server.url``; ``paths`` is what
    was asked for, raw."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.paths: list[str] = []
        owner = self

        class Handler(_Quiet):
            def do_GET(self) -> None:
                owner.paths.append(self.path)
                super().do_GET()

        handler = functools.partial(Handler, directory=str(root))
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="dumb-git", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> ResolvingGitServer:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def serve_bare_copy(source_git_dir: Path, target: Path) -> Path:
    """A bare clone of SOURCE at TARGET, with the files dumb HTTP needs (info/refs, objects/info/packs)."""
    run_git(["clone", "--quiet", "--bare", "--mirror", str(source_git_dir), str(target)], env=git_env())
    run_git(["update-server-info"], git_dir=target)
    return target
