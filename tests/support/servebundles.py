"""Bundles for tests of `mirror serve`, written in-process, and the server run on a free loopback port.

`ChainBundle` is a `SmallBundle` that can also be incremental: `based_on(previous)` names the bundle before it as
its base, and `expect_image(source, digest)` lists an image whose graph the base carries (as `collect --since`
leaves an unchanged image to its base). `image_with_layer` writes an image whose layer the test chooses (large,
to stream in several chunks). `serving(...)` verifies the bundles and serves them in a thread, yielding the URL.
"""

from __future__ import annotations

import hashlib
import json
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from mirror.bundle.inventory import ArtifactRecord, BaseRecord, ExpectedBlob, Inventory
from mirror.limits import DEFAULT_LIMITS, Limits
from mirror.oci import mediatypes as mt
from mirror.progress import Progress
from mirror.serve.run import prepare
from mirror.serve.server import RegistryServer, RequestLog
from tests.support.attachedcraft import Crafted, attach
from tests.support.signedbundles import OCI_CONFIG, OCI_LAYER, SmallBundle


@dataclass
class ChainBundle(SmallBundle):
    base: BaseRecord | None = None
    expected: dict[str, int] = field(default_factory=dict)  # digest → size the base chain carries

    def based_on(self, previous: Path) -> None:
        raw = (previous / "inventory.json").read_bytes()
        body = json.loads(raw)
        self.base = BaseRecord("sha256:" + hashlib.sha256(raw).hexdigest(), body["bundleId"], body["created"])

    def image_with_layer(self, source: str, layer: bytes) -> str:
        """An image whose one layer is `layer`; the manifest's digest."""
        config = json.dumps({"os": "linux", "architecture": "amd64", "note": source}).encode()
        digest, size = self._manifest(config, OCI_CONFIG, layer, OCI_LAYER)
        self.artifacts.append(ArtifactRecord("image", source, digest, mt.OCI_MANIFEST, size, {}))
        return digest

    def attach(self, source: str, crafted: Crafted, *, found: str) -> str:
        """`crafted` attached to the artifact `source`, listed in index.json as collect lists it; its digest."""
        digest = attach(self, source, crafted, found=found)
        self.index.append({"mediaType": mt.OCI_MANIFEST, "digest": digest, "size": len(crafted.manifest)})
        return digest

    def expect_image(self, source: str, digest: str, size: int) -> None:
        """`source` at `digest`, a manifest of `size` bytes that the base chain carries with its whole graph."""
        self.expected[digest] = size
        self.artifacts.append(ArtifactRecord("image", source, digest, mt.OCI_MANIFEST, size, {}))

    def finish(self) -> bytes:
        self._file("index.json", json.dumps({"schemaVersion": 2, "manifests": self.index}).encode())
        expected = tuple(ExpectedBlob(d, s) for d, s in sorted(self.expected.items()))
        inventory = Inventory(
            self.bundle_id,
            "2026-01-01T00:00:00Z",
            "test",
            tuple(self.artifacts),
            tuple(self.files.values()),
            base=self.base,
            expected=expected if self.base is not None else (),
        )
        raw = inventory.to_bytes()
        (self.root / "inventory.json").write_bytes(raw)
        return raw


def manifest_of(bundle: SmallBundle, source: str) -> tuple[str, bytes]:
    """The digest and bytes of the manifest of artifact `source`."""
    digest = next(a.digest for a in bundle.artifacts if a.source == source)
    return digest, (bundle.root / "blobs" / "sha256" / digest.removeprefix("sha256:")).read_bytes()


def layer_of(bundle: SmallBundle, source: str) -> tuple[str, Path]:
    """The digest of the (one) layer of `source`'s image, and its file in the bundle."""
    _, raw = manifest_of(bundle, source)
    digest = json.loads(raw)["layers"][0]["digest"]
    return digest, bundle.root / "blobs" / "sha256" / digest.removeprefix("sha256:")


@dataclass
class Served:
    url: str
    log: list[str]

    def logged(self, wanted: Callable[[str], bool], timeout: float = 5.0) -> str:
        """The last log line `wanted` accepts, waited for: the server logs a request after its answer is sent,
        so a client may read the answer before the line is written."""
        deadline = time.monotonic() + timeout
        while True:
            found = [line for line in self.log if wanted(line)]
            if found or time.monotonic() > deadline:
                assert found, f"no such line in the request log: {self.log}"
                return found[-1]
            time.sleep(0.01)


class _Lines:
    """A text stream keeping each line written, for tests of the request log."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def write(self, text: str) -> int:
        self.lines += [line for line in text.splitlines() if line]
        return len(text)

    def flush(self) -> None:
        pass


@contextmanager
def serving(
    bundles: Sequence[Path],
    *,
    trust: Path | None = None,
    limits: Limits = DEFAULT_LIMITS,
    log_format: str = "text",
    tls: ssl.SSLContext | None = None,
) -> Iterator[Served]:
    """Verify `bundles` (with the policy `trust`, else on checksums alone) and serve them on 127.0.0.1, port 0."""
    registry = prepare(
        bundles, trust=trust, allow_unsigned=trust is None, jobs=2, progress=Progress(quiet=True), limits=limits
    )
    lines = _Lines()
    log = RequestLog(stream=lines, log_format=log_format)  # type: ignore[arg-type]
    server = RegistryServer(registry, ("127.0.0.1", 0), limits=limits, log=log, tls=tls)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    scheme = "https" if tls is not None else "http"
    try:
        yield Served(f"{scheme}://127.0.0.1:{server.server_port}", lines.lines)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
