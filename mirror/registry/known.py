"""Manifests already held locally, by digest: what lets a collect resolve a tag with HEAD and skip the GET.

The registry client only asks and tells; where the bytes live (the --since base bundle, the blob cache) is the
collector's business (mirror/collector/known.py). Bytes handed back are checked against the digest by the client.
"""

from __future__ import annotations

from typing import Protocol


class ManifestStore(Protocol):
    def get(self, digest: str, max_bytes: int) -> bytes | None:
        """The manifest's bytes if held locally (not yet checked), else None."""
        ...

    def put(self, digest: str, raw: bytes) -> None:
        """Keep a manifest just fetched and checked, for later runs."""
        ...
