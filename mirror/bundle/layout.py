"""Writing an OCI image layout: blobs named by their digest, written under temporary names, renamed when whole."""

from __future__ import annotations

import hashlib
import io
import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from mirror.bundle.inventory import INVENTORY_PATH, FileRecord, Inventory, blob_path
from mirror.fsutil import atomic_write, atomic_writer, temporary_name
from mirror.oci import mediatypes as mt
from mirror.oci.digest import hex_of, sha256_digest

if TYPE_CHECKING:
    from mirror.bundle.tarball import OnePassTar

OCI_LAYOUT = b'{"imageLayoutVersion": "1.0.0"}\n'

# Blobs put whole (manifests, mostly) are held in memory up to this many bytes in all, and written when the
# layout is finished or a caller needs their file: one the base chain carries is dropped before it costs a file
# (a nothing-changed night resolves and drops every manifest). Beyond it, they are written at once.
HELD_BYTES = 64 * 1024 * 1024


class LayoutWriter:
    """Fills a fresh directory with an OCI layout. Thread-safe; each blob is stored once."""

    def __init__(self, root: Path, tar: OnePassTar | None = None) -> None:
        self.root = root
        self.tar = tar  # a .tar OUT written in one pass: reserved blobs go straight into it, not into `root`
        (root / "blobs" / "sha256").mkdir(parents=True)
        self._lock = threading.Lock()
        self._records: dict[str, FileRecord] = {}
        self._held: dict[str, bytes] = {}  # bundle path → bytes put and listed in _records, not written yet
        self._held_bytes = 0
        self._write_file("oci-layout", OCI_LAYOUT)

    def _write_file(self, path: str, data: bytes) -> None:
        # Not fsynced one by one (thousands of blobs): a cut-off collect leaves only its staging directory, and
        # verify checks every file against the inventory.
        atomic_write(self.root / path, data, durable=False)
        if path != INVENTORY_PATH:
            with self._lock:
                self._records[path] = FileRecord(path, hashlib.sha256(data).hexdigest(), len(data))

    def _write_held(self, path: str) -> None:
        """A held blob's file written; the caller holds the lock, so nobody sees the blob without its file."""
        data = self._held.pop(path, None)
        if data is not None:
            self._held_bytes -= len(data)
            atomic_write(self.root / path, data, durable=False)

    def has(self, digest: str) -> bool:
        with self._lock:
            return blob_path(digest) in self._records

    def in_tar(self, digest: str) -> bool:
        """Reserved in a one-pass tar: `blob_file` writes it there, not in the staging directory."""
        return self.tar is not None and self.tar.is_reserved(blob_path(digest))

    def put_bytes(self, digest: str, data: bytes) -> None:
        if sha256_digest(data) != digest:
            raise ValueError(f"bytes do not hash to {digest}")  # a caller bug, never input
        path = blob_path(digest)
        with self._lock:
            if path in self._records:
                return
            if self._held_bytes + len(data) <= HELD_BYTES:
                self._held[path] = data
                self._held_bytes += len(data)
                self._records[path] = FileRecord(path, hex_of(digest), len(data))
                return
        self._write_file(path, data)

    def read_bytes(self, digest: str) -> bytes:
        """A blob's bytes, held or read from its file (a small one: the caller knows its size)."""
        path = blob_path(digest)
        with self._lock:
            data = self._held.get(path)
        return data if data is not None else (self.root / path).read_bytes()

    @contextmanager
    def blob_file(self, digest: str, size: int) -> Iterator[BinaryIO]:
        """A temporary file for a blob's bytes; it becomes the blob only if the block ends without error.

        The caller must have checked the bytes against `digest` and `size` while writing them. A blob reserved in
        the tar is written straight into its place there.
        """
        if self.tar is not None and self.in_tar(digest):
            with self.tar.filling(blob_path(digest)) as slot:
                yield slot  # type: ignore[misc]  # the file methods a download uses
            with self._lock:
                self._records[blob_path(digest)] = FileRecord(blob_path(digest), hex_of(digest), size)
            return
        with atomic_writer(self.root / blob_path(digest), durable=False) as handle:
            yield handle
        with self._lock:
            self._records[blob_path(digest)] = FileRecord(blob_path(digest), hex_of(digest), size)

    @contextmanager
    def scratch_file(self) -> Iterator[tuple[Path, BinaryIO]]:
        """A temporary file inside the bundle's staging area, for content whose digest is learnt while writing."""
        path = temporary_name(self.root / "blobs" / "sha256" / "scratch")
        try:
            with open(path, "xb+", buffering=io.DEFAULT_BUFFER_SIZE) as handle:  # as fsutil.open_descriptor
                yield path, handle
        finally:
            path.unlink(missing_ok=True)

    @contextmanager
    def scratch_path(self) -> Iterator[Path]:
        """A path inside the staging area for a tool that writes the file itself (git bundle create)."""
        path = temporary_name(self.root / "blobs" / "sha256" / "scratch")
        try:
            yield path
        finally:
            path.unlink(missing_ok=True)

    def resumed(self, digest: str, size: int) -> bool:
        """A blob reserved in a partial tar that already holds its bytes in their place (hashed, not trusted):
        kept there, not downloaded again."""
        if self.tar is None or not self.in_tar(digest) or not self.tar.keep(blob_path(digest), hex_of(digest)):
            return False
        with self._lock:
            self._records[blob_path(digest)] = FileRecord(blob_path(digest), hex_of(digest), size)
        return True

    def adopt(self, path: Path, digest: str, size: int) -> None:
        """Make a scratch file the blob `digest`; the caller hashed it while writing it."""
        if self.has(digest):
            return
        if self.tar is not None and self.in_tar(digest):
            self.tar.fill_from(blob_path(digest), path)  # a cached blob: its one copy into the bundle
        else:
            os.replace(path, self.root / blob_path(digest))
        with self._lock:
            self._records[blob_path(digest)] = FileRecord(blob_path(digest), hex_of(digest), size)

    def reserve(self, blobs: dict[str, int]) -> None:
        """Blobs about to be downloaded (digest → size): in a one-pass tar, their places are reserved now, in
        digest order, so that each is written once, straight into the tar."""
        if self.tar is not None:
            self.tar.reserve([(blob_path(d), blobs[d]) for d in sorted(blobs) if not self.has(d)])

    def drop(self, digest: str) -> None:
        """Leave a blob out of the bundle after all (an incremental bundle's base chain carried it)."""
        if self.tar is not None and self.in_tar(digest):
            raise ValueError(f"{digest} is in the tar already")  # a caller bug: reserved blobs are new to the chain
        path = blob_path(digest)
        with self._lock:
            self._records.pop(path, None)
            data = self._held.pop(path, None)
            if data is not None:
                self._held_bytes -= len(data)
                return  # never written
        (self.root / path).unlink(missing_ok=True)

    def blob_sizes(self) -> dict[str, int]:
        """Every blob written so far: digest → size."""
        with self._lock:
            return {f"sha256:{r.sha256}": r.size for p, r in self._records.items() if p.startswith("blobs/")}

    def blob_location(self, digest: str) -> Path:
        """The blob's file, written first if it was held."""
        path = blob_path(digest)
        with self._lock:
            self._write_held(path)
        return self.root / path

    def finish(self, index_entries: list[dict[str, Any]], inventory_fields: dict[str, Any]) -> Inventory:
        """Write index.json, then the inventory listing every file; returns the inventory."""
        with self._lock:
            for path in list(self._held):
                self._write_held(path)
        index = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": index_entries}
        self._write_file("index.json", json.dumps(index, indent=1).encode() + b"\n")
        with self._lock:
            files = tuple(self._records.values())
        inventory = Inventory(files=files, **inventory_fields)
        self._write_file(INVENTORY_PATH, inventory.to_bytes())
        return inventory
