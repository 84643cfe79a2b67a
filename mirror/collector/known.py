"""The manifests a collect already holds locally, by digest: those the --since base bundle carries, and those
the blob cache kept from earlier runs. With them, a tag whose digest did not move costs a HEAD and no GET, and
so do the children of its index and what is attached to it. See docs/collector.md ("Pull quotas").

Every byte handed out is hashed again by the registry client before it is used (mirror.registry.client).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import BinaryIO

from mirror.bundle.inventory import blob_path
from mirror.bundle.opening import open_bundle
from mirror.bundle.reader import BundleReader, TarBundle, open_regular, read_small
from mirror.collector.cache import BlobCache
from mirror.errors import MirrorError
from mirror.limits import Limits


class KnownManifests:
    """Thread-safe. `base`: the --since path when it is a bundle (an inventory file holds no manifest); `reader`:
    that bundle already opened (load_base opens it), so that a tar's headers are not walked again."""

    def __init__(
        self, cache: BlobCache | None, base: Path | None, limits: Limits, reader: BundleReader | None = None
    ) -> None:
        self._cache = cache
        self._reader: BundleReader | None = reader
        self._lock = threading.Lock()
        self.reused = 0  # manifests taken from here instead of the network
        if reader is None and base is not None and not (base.is_file() and base.name.endswith(".json")):
            try:
                self._reader = open_bundle(base, limits)
            except MirrorError:
                self._reader = None  # load_base has read its inventory; a base unreadable here only costs GETs
        # A tar base opened once, its manifests read in place: a file opened per manifest cost ten times more.
        self._tar: BinaryIO | None = None
        if isinstance(self._reader, TarBundle):
            try:
                self._tar = open_regular(self._reader.location)
            except (OSError, MirrorError):
                self._tar = None  # read through the reader instead

    def close(self) -> None:
        with self._lock:
            if self._tar is not None:
                self._tar.close()
                self._tar = None

    def get(self, digest: str, max_bytes: int) -> bytes | None:
        raw = self.peek(digest, max_bytes)
        if raw is not None:
            with self._lock:
                self.reused += 1
        return raw

    def peek(self, digest: str, max_bytes: int) -> bytes | None:
        """The bytes held for `digest`, not counted as a manifest reused instead of a GET, nor checked."""
        raw = self._from_base(digest, max_bytes)
        if raw is None and self._cache is not None:
            raw = self._cache.read_small(digest, max_bytes)
        return raw

    def _from_base(self, digest: str, max_bytes: int) -> bytes | None:
        if self._reader is None:
            return None
        path = blob_path(digest)
        with self._lock:  # a tar reader is one file position
            size = self._reader.files().get(path)
            if size is None or size > max_bytes:
                return None
            if self._tar is not None and isinstance(self._reader, TarBundle):
                return self._in_place(self._tar, self._reader, path)
            try:
                # Its own size as the limit: a read of max_bytes (4 MiB) would allocate that much for each one.
                return read_small(self._reader, path, size)
            except MirrorError:
                return None

    @staticmethod
    def _in_place(tar: BinaryIO, reader: TarBundle, path: str) -> bytes | None:
        span = reader.span(path)
        if span is None:
            return None
        offset, size = span
        try:
            raw = os.pread(tar.fileno(), size, offset)  # positional: the handle's own position is never used
        except OSError:
            return None
        return raw if len(raw) == size else None  # the tar shortened since: not these bytes

    def put(self, digest: str, raw: bytes) -> None:
        if self._cache is not None:
            self._cache.keep_small(digest, raw)
