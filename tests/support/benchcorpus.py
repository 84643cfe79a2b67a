"""The bench's corpus: images pushed straight to the upstream registry over its HTTP API, fast and fresh.

Every layer is random, so every run's blobs are new to every tool: skopeo's blob-info cache (and any registry)
would otherwise reuse or mount blobs seen in an earlier run instead of copying them, and win by not working.
Layers are uncompressed tars holding one random file, so they are real layers any tool can unpack. The shared
base layer is uploaded once and mounted into every other repository, as a registry holding many images from
one base would be. This module does not use the `mirror` package: the corpus must not depend on the tool
being measured.
"""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def tar_layer(size: int, name: str = "random.bin") -> bytes:
    """An uncompressed tar holding one file of `size` random bytes (held in memory: corpus layers are small)."""
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = 0
    padding = -size % tarfile.BLOCKSIZE
    body = info.tobuf(format=tarfile.USTAR_FORMAT) + os.urandom(size) + b"\0" * (padding + 2 * tarfile.BLOCKSIZE)
    return body + b"\0" * (-len(body) % tarfile.RECORDSIZE)


@dataclass(frozen=True)
class Pushed:
    reference: str  # host:port/repository:tag
    digest: str  # manifest digest
    size: int  # bytes of every blob and the manifest


class Pusher:
    """A minimal distribution client for an anonymous plain-HTTP registry: monolithic uploads, mounts, PUTs."""

    def __init__(self, registry: str, connections: int = 8) -> None:
        self.registry = registry
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        self._http = httpx.Client(base_url=f"http://{registry}", timeout=120, limits=limits)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Pusher:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _check(self, response: httpx.Response, expected: int, what: str) -> httpx.Response:
        if response.status_code != expected:
            raise RuntimeError(f"bench corpus: {what} answered {response.status_code}: {response.text[:300]}")
        return response

    def upload(self, repository: str, data: bytes, *, mount_from: str | None = None) -> dict[str, object]:
        digest = _digest(data)
        descriptor = {"mediaType": OCI_LAYER_TAR, "digest": digest, "size": len(data)}
        params = {"mount": digest, "from": mount_from} if mount_from else None
        started = self._http.post(f"/v2/{repository}/blobs/uploads/", params=params)
        if started.status_code == 201:
            return descriptor
        location = self._check(started, 202, f"upload to {repository}").headers["location"]
        url = httpx.URL(self._http.base_url).join(location).copy_merge_params({"digest": digest})
        self._check(
            self._http.put(url, content=data, headers={"Content-Type": "application/octet-stream"}),
            201,
            f"upload of {digest} to {repository}",
        )
        return descriptor

    def image(
        self, repository: str, tag: str, layers: Iterable[bytes], *, base: tuple[str, bytes] | None = None
    ) -> Pushed:
        """Push an image of `layers` (after the shared `base`, mounted from the repository that holds it).

        `layers` may be a generator: each layer is uploaded before the next is made, so memory holds one.
        """
        descriptors = []
        if base is not None:
            holder, base_layer = base
            descriptors.append(self.upload(repository, base_layer, mount_from=holder))
        descriptors += [self.upload(repository, layer) for layer in layers]
        config = json.dumps(
            {
                "architecture": "amd64",
                "os": "linux",
                "config": {"Labels": {"bench": repository}},
                "rootfs": {"type": "layers", "diff_ids": [d["digest"] for d in descriptors]},
            }
        ).encode()
        config_descriptor = {**self.upload(repository, config), "mediaType": OCI_CONFIG}
        manifest = json.dumps(
            {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config_descriptor, "layers": descriptors}
        ).encode()
        self._check(
            self._http.put(
                f"/v2/{repository}/manifests/{tag}", content=manifest, headers={"Content-Type": OCI_MANIFEST}
            ),
            201,
            f"manifest {repository}:{tag}",
        )
        size = sum(int(d["size"]) for d in descriptors) + len(config) + len(manifest)  # type: ignore[call-overload]
        return Pushed(f"{self.registry}/{repository}:{tag}", _digest(manifest), size)


def push_family(
    pusher: Pusher, prefix: str, count: int, base_bytes: int, unique_bytes: int, *, workers: int = 4
) -> list[Pushed]:
    """`count` images PREFIX/imgN:1 sharing one random base layer, each with its own random layer."""
    base = tar_layer(base_bytes, "base.bin") if base_bytes else b""
    # The first image uploads the base itself; the others mount it from there.
    first = pusher.image(f"{prefix}/img0", "1", [layer for layer in (base, tar_layer(unique_bytes)) if layer])

    def one(index: int) -> Pushed:
        shared = (f"{prefix}/img0", base) if base_bytes else None
        return pusher.image(f"{prefix}/img{index}", "1", [tar_layer(unique_bytes)], base=shared)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return [first, *pool.map(one, range(1, count))]
