"""A repository with many tags on the local upstream registry, cheaply: one tiny image (an empty config, no
layer) pushed once, then its manifest PUT under each tag. Tags that must tell apart get a manifest of their own
(a salt in an annotation). Does not use the `mirror` package: the content must not depend on the tool that reads it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

import httpx

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
EMPTY = b"{}"


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def tiny_manifest(salt: str = "") -> bytes:
    body: dict[str, object] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_EMPTY, "digest": _digest(EMPTY), "size": len(EMPTY)},
        "layers": [],
    }
    if salt:
        body["annotations"] = {"test.salt": salt}
    return json.dumps(body, separators=(",", ":")).encode()


class TagPusher:
    """Pushes the tiny image under tags of one repository of an anonymous plain-HTTP registry."""

    def __init__(self, registry: str, repository: str) -> None:
        self.repository = repository
        self._http = httpx.Client(base_url=f"http://{registry}", timeout=60)
        started = self._http.post(f"/v2/{repository}/blobs/uploads/")
        started.raise_for_status()
        location = httpx.URL(started.headers["location"])
        self._http.put(location.copy_merge_params({"digest": _digest(EMPTY)}), content=EMPTY).raise_for_status()

    def __enter__(self) -> TagPusher:
        return self

    def __exit__(self, *_: object) -> None:
        self._http.close()

    def tag(self, tag: str, manifest: bytes) -> str:
        answer = self._http.put(
            f"/v2/{self.repository}/manifests/{tag}", content=manifest, headers={"Content-Type": OCI_MANIFEST}
        )
        answer.raise_for_status()
        return _digest(manifest)

    def tag_all(self, tags: Iterable[str], manifest: bytes | None = None) -> str:
        """The same manifest under every tag, eight PUTs at a time; returns its digest."""
        raw = manifest or tiny_manifest()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda t: self.tag(t, raw), tags))
        return _digest(raw)
