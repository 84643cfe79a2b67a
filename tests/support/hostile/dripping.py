"""Upstreams that answer, but too slowly: a distribution registry, its token service and a dumb-HTTP Git server
whose parts can each be switched to a drip (a few bytes, then a pause) or a stall.

``DripRegistry`` serves one image (a config and ``layers`` random layers) under ``repository:tag`` and takes
uploads (an import target). ``drip`` names the parts that drip: ``manifest``, ``blob``, ``token``, and
``upload`` (every upload request is answered only after ``stall_s``). With ``token_auth`` every registry
request needs a Bearer token from ``/token``.

``DumbGitServer`` serves a bare repository's files as they lie (git's dumb HTTP protocol); ``drip_packs``
makes pack files drip.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

from tests.support.hostile import Answer, HostileServer, Request, drip, not_found

MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar"


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def slow(data: bytes, piece: int) -> Iterator[bytes]:
    """`data` in pieces of `piece` bytes; the server waits `piece_delay_s` between them."""
    return drip(data, piece)


class DripRegistry(HostileServer):
    def __init__(
        self,
        *,
        repository: str = "app",
        tag: str = "1.0",
        layers: int = 2,
        layer_size: int = 64 * 1024,
        piece: int = 1,
        piece_delay_s: float = 0.1,
        stall_s: float = 600.0,
    ) -> None:
        super().__init__(self._answer)
        self.repository = repository
        self.tag = tag
        self.piece = piece
        self.piece_delay_s = piece_delay_s
        self.stall_s = stall_s
        self.drip: set[str] = set()
        self.prompt_uploads = 0  # this many upload requests are answered at once, stalled or not
        self._prompt_lock = threading.Lock()
        self.token_auth = False
        self.config = json.dumps(
            {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}
        ).encode()
        self.layers = [os.urandom(layer_size) for _ in range(layers)]
        self.blobs = {_digest(b): b for b in [self.config, *self.layers]}
        self.manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": MANIFEST_TYPE,
                "config": {"mediaType": CONFIG_TYPE, "digest": _digest(self.config), "size": len(self.config)},
                "layers": [{"mediaType": LAYER_TYPE, "digest": _digest(b), "size": len(b)} for b in self.layers],
            }
        ).encode()
        self.manifest_digest = _digest(self.manifest)

    @property
    def image(self) -> str:
        return f"{self.netloc}/{self.repository}:{self.tag}"

    def layer_digests(self) -> list[str]:
        return [_digest(b) for b in self.layers]

    def _body(self, part: str, data: bytes, headers: dict[str, str], status: int = 200) -> Answer:
        if part in self.drip:
            return Answer(status, headers, slow(data, self.piece), piece_delay_s=self.piece_delay_s)
        return Answer(status, headers, data)

    def _answer(self, request: Request) -> Answer:
        path = request.path.split("?", 1)[0]
        if path == "/token":
            return self._body("token", json.dumps({"token": "drip-token", "expires_in": 300}).encode(), {})
        if self.token_auth and request.headers.get("authorization") != "Bearer drip-token":
            challenge = f'Bearer realm="{self.url}/token",service="drip"'
            return Answer(401, {"WWW-Authenticate": challenge, "Content-Type": "application/json"}, b"{}")
        if path == "/v2/":
            return Answer(200, {"Content-Type": "application/json"}, b"{}")
        match = re.fullmatch(r"/v2/(.+)/(manifests|blobs)/(.+)", path)
        if match is None:
            return not_found(request)
        _, kind, reference = match.groups()
        if kind == "blobs" and reference.startswith("uploads"):
            return self._upload(request)
        if kind == "manifests":
            if request.method == "PUT":
                return self._stalled(Answer(201, {"Docker-Content-Digest": _digest(request.body)}))
            if reference not in (self.tag, self.manifest_digest) or self.uploading:
                return not_found(request)
            headers = {"Content-Type": MANIFEST_TYPE, "Docker-Content-Digest": self.manifest_digest}
            if request.method == "HEAD":
                return Answer(200, {**headers, "Content-Length": str(len(self.manifest))}, self.manifest)
            return self._body("manifest", self.manifest, headers)
        blob = self.blobs.get(reference)
        if blob is None or self.uploading:
            return not_found(request)
        if request.method == "HEAD":
            return Answer(200, {"Content-Length": str(len(blob))}, b"")
        return self._body("blob", blob, {"Content-Type": "application/octet-stream"})

    @property
    def uploading(self) -> bool:
        """As an import target (upload drips), the registry holds nothing yet."""
        return "upload" in self.drip

    def _stalled(self, answer: Answer) -> Answer:
        if "upload" in self.drip:
            answer.delay_s = self.stall_s
        return answer

    def _upload(self, request: Request) -> Answer:
        location = f"/v2/{self.repository}/blobs/uploads/{uuid.uuid4().hex}"
        if request.method == "POST":
            answer = Answer(202, {"Location": location, "Content-Length": "0"})
        elif request.method == "DELETE":
            answer = Answer(204, {})
        else:
            answer = Answer(201, {"Docker-Content-Digest": _digest(request.body)})
        with self._prompt_lock:
            if self.prompt_uploads > 0:
                self.prompt_uploads -= 1
                return answer
        return self._stalled(answer)

    def uploads_seen(self) -> int:
        return len(self.seen(lambda r: "/blobs/uploads" in r.path))

    def blob_gets_seen(self) -> int:
        return len(self.seen(lambda r: r.method == "GET" and "/blobs/sha256:" in r.path))


def _git(*args: str, cwd: Path) -> None:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(cwd),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True)


def make_dumb_repository(root: Path, *, payload_size: int = 256 * 1024) -> Path:
    """A bare repository `root/repo.git` with one commit on main (an incompressible file), packed and with
    the info files that git's dumb HTTP protocol reads."""
    work = root / "work"
    work.mkdir(parents=True)
    _git("init", "--quiet", "--initial-branch=main", ".", cwd=work)
    (work / "data.bin").write_bytes(os.urandom(payload_size))
    _git("add", "data.bin", cwd=work)
    _git("commit", "--quiet", "-m", "data", cwd=work)
    bare = root / "repo.git"
    _git("clone", "--quiet", "--bare", str(work), str(bare), cwd=root)
    _git("repack", "-a", "-d", "--quiet", cwd=bare)
    _git("update-server-info", cwd=bare)
    return bare


class DumbGitServer(HostileServer):
    """Serves the files of the bare repository `bare` under /repo.git/ as plain files (dumb HTTP)."""

    def __init__(self, bare: Path, *, piece: int = 16, piece_delay_s: float = 0.2) -> None:
        super().__init__(self._answer)
        self.bare = bare
        self.piece = piece
        self.piece_delay_s = piece_delay_s
        self.drip_packs = False

    @property
    def repo_url(self) -> str:
        return f"{self.url}/repo.git"

    def _answer(self, request: Request) -> Answer:
        path = request.path.split("?", 1)[0]
        if not path.startswith("/repo.git/") or ".." in path:
            return not_found(request)
        file = self.bare / path.removeprefix("/repo.git/")
        if not file.is_file():
            return not_found(request)
        data = file.read_bytes()
        headers = {"Content-Type": "application/octet-stream"}
        if self.drip_packs and file.suffix == ".pack":
            return Answer(200, headers, slow(data, self.piece), piece_delay_s=self.piece_delay_s)
        return Answer(200, headers, data)

    def pack_requests(self) -> int:
        return len(self.seen(lambda r: r.path.endswith(".pack")))
