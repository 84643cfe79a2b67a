"""What an import costs the registry in requests: each request a counting proxy saw, named by its kind
("HEAD blob", "POST upload", "PUT manifest"...), and the import of a bundle through such a proxy, counted.

Used by tests/integration/test_import_requests.py and by the bench (scripts/bench, step copy).
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from tests.support.hostile import HostileServer, Request
from tests.support.hostile.forwarding import forward_to

TARGET_REQUESTS_PER_BLOB = 2.5  # issue 19: each request costs an authenticating registry CPU (bcrypt, TLS)


def request_kind(request: Request) -> str:
    """The method and what the path names: blob, upload, manifest, tags, referrers, base (GET /v2/)."""
    path = urlsplit(request.path).path
    if path.rstrip("/") == "/v2":
        return f"{request.method} base"
    for marker, kind in (("/blobs/uploads", "upload"), ("/blobs/", "blob"), ("/manifests/", "manifest")):
        if marker in path:
            return f"{request.method} {kind}"
    return f"{request.method} {path.rsplit('/', 1)[-1] or 'other'}"


@dataclass(frozen=True)
class CountedImport:
    blobs: int  # (repository, blob) pairs the import placed: uploaded, mounted or found
    first: Counter[str]  # the requests of a first import into an empty namespace, by kind
    again: Counter[str]  # those of a second import of the same bundle into the same namespace

    def per_blob(self, kinds: Counter[str]) -> float:
        return sum(kinds.values()) / max(self.blobs, 1)

    def describe(self) -> str:
        kinds = ", ".join(f"{n} {kind}" for kind, n in self.first.most_common())
        return (
            f"{self.per_blob(self.first):.2f} requests/blob ({sum(self.first.values())} for {self.blobs} blobs: "
            f"{kinds}; again: {sum(self.again.values())})"
        )


def count_import(mirror: str, bundle: Path, plain_http_registry: str) -> CountedImport:
    """Import `bundle` twice through a counting proxy in front of `plain_http_registry` (host:port), into a fresh
    namespace; the registry's own auth and TLS do not change the count."""
    prefix = f"count-{uuid.uuid4().hex[:8]}"
    with HostileServer(forward_to(f"http://{plain_http_registry}"), max_body_bytes=1024 * 1024 * 1024) as proxy:
        command = [mirror, "import", str(bundle), "--registry", f"{proxy.url}/{prefix}", "--allow-unsigned"]
        done = subprocess.run([*command, "--json", "-q"], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)}: exit {done.returncode}\n{done.stderr}")
        first = Counter(request_kind(r) for r in proxy.requests)
        seen = len(proxy.requests)
        subprocess.run([*command, "-q"], capture_output=True, check=True)
        again = Counter(request_kind(r) for r in proxy.requests[seen:])
    counts = json.loads(done.stdout)
    return CountedImport(counts["blobsUploaded"] + counts["blobsMounted"] + counts["blobsPresent"], first, again)
