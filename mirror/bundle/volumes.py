"""Split bundles: reading a head volume `OUT.tar.000` and its data volumes in one verifying pass, never joined
on disk (splitting.py writes them). See docs/bundle-format.md ("Volumes").
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from mirror.bundle import ustar
from mirror.bundle.inventory import INVENTORY_PATH, Inventory, VolumeRecord, parse_inventory
from mirror.bundle.reader import BundleReader, SeekableView, TarBundle, kind_of, open_regular, read_small
from mirror.errors import BundleFormatError, MirrorError, Problem, UsageError
from mirror.limits import DEFAULT_LIMITS, Limits

HEAD_SUFFIX = ".000"
MIN_VOLUME_SIZE = ustar.BLOCK  # smaller volumes would only multiply files; nothing on any medium needs them
_CHUNK = 1024 * 1024
_ZERO_BLOCK = b"\0" * ustar.BLOCK

OnBytes = Callable[[int], None]


def is_head_volume(path: Path) -> bool:
    return path.name.endswith(HEAD_SUFFIX) and len(path.name) > len(HEAD_SUFFIX)


def volume_path(stem: Path, number: int) -> Path:
    """`night.tar` and 2 → `night.tar.002`; numbers past 999 simply grow a digit."""
    return stem.with_name(f"{stem.name}.{number:03d}")


def _stem(head: Path) -> Path:
    return head.with_name(head.name.removesuffix(HEAD_SUFFIX))


def _not_regular(path: Path) -> str | None:
    """None for a regular file (links followed, as for any file the operator names); else what is there."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "missing"
    except OSError as exc:
        return f"unreadable: {exc.strerror}"
    return None if stat.S_ISREG(mode) else f"not a regular file ({kind_of(mode)})"


# ---------------------------------------------------------------------------------------------------- reading


class _Segments(SeekableView):
    """Read-only, seekable bytes made of (file, offset, length) pieces in order: a member across volumes."""

    def __init__(self, pieces: Sequence[tuple[Path, int, int]]) -> None:
        self._pieces = list(pieces)
        self._starts = []
        total = 0
        for _, _, length in self._pieces:
            self._starts.append(total)
            total += length
        self._size = total
        self._position = 0
        self._open: tuple[int, io.BufferedReader] | None = None

    def _handle(self, index: int) -> io.BufferedReader:
        if self._open is None or self._open[0] != index:
            self._close_handle()
            self._open = (index, open_regular(self._pieces[index][0]))  # closed in close()
        return self._open[1]

    def _close_handle(self) -> None:
        if self._open is not None:
            self._open[1].close()
            self._open = None

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        wanted = min(len(buffer), self._size - self._position)
        if wanted <= 0:
            return 0
        index = max(i for i, start in enumerate(self._starts) if start <= self._position)
        path, offset, length = self._pieces[index]
        within = self._position - self._starts[index]
        wanted = min(wanted, length - within)
        handle = self._handle(index)
        handle.seek(offset + within)
        count = handle.readinto(memoryview(buffer)[:wanted]) or 0
        if count == 0:
            raise BundleFormatError(f"{path}: ends before byte {offset + within + 1}; the volume shrank while read")
        self._position += count
        return count

    def close(self) -> None:
        self._close_handle()
        super().close()


def _clip(volumes: Sequence[tuple[Path, int]], offset: int, size: int) -> list[tuple[Path, int, int]]:
    """The pieces of volume files that hold bytes [offset, offset + size) of the concatenated data stream."""
    pieces = []
    start = 0
    for path, length in volumes:
        end = start + length
        low, high = max(start, offset), min(end, offset + size)
        if low < high:
            pieces.append((path, low - start, high - low))
        start = end
    return pieces


class _VolumeStream:
    """Sequential reads across the data volumes, hashing each volume as its bytes pass."""

    def __init__(self, volumes: Sequence[Path], on_bytes: OnBytes) -> None:
        self._volumes = list(volumes)
        self._index = -1
        self._handle: BinaryIO | None = None
        self._hash = hashlib.sha256()
        self.digests: list[str] = []
        self.position = 0
        self._on_bytes = on_bytes
        self._next()

    def _next(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self.digests.append(self._hash.hexdigest())
        self._index += 1
        self._handle = open_regular(self._volumes[self._index]) if self._index < len(self._volumes) else None
        self._hash = hashlib.sha256()

    @property
    def current(self) -> Path | None:
        return self._volumes[self._index] if self._index < len(self._volumes) else None

    def read(self, size: int) -> bytes:
        """Up to `size` bytes, crossing volume borders; short only at the end of the last volume."""
        parts = []
        while size > 0 and self._handle is not None:
            data = self._handle.read(min(size, _CHUNK))
            if not data:
                self._next()
                continue
            self._hash.update(data)
            self._on_bytes(len(data))
            parts.append(data)
            size -= len(data)
            self.position += len(data)
        return b"".join(parts)

    def drain(self) -> None:
        """Read to the end, so every volume is hashed even after the tar stream in it was refused."""
        while self.read(_CHUNK):
            pass

    def close(self) -> None:
        while self._handle is not None:
            self._next()


@dataclass(frozen=True)
class _DataMember:
    offset: int  # in the concatenated data stream
    size: int


def _parse_stream(stream: _VolumeStream, max_members: int) -> tuple[dict[str, _DataMember], dict[str, str]]:
    """The members of the data stream with the sha256 of each, in one pass; strict as ustar.scan."""
    members: dict[str, _DataMember] = {}
    digests: dict[str, str] = {}
    seen: set[str] = set()
    while True:
        offset = stream.position
        block = stream.read(ustar.BLOCK)
        if len(block) < ustar.BLOCK:
            raise BundleFormatError(f"the data stream ends at byte {offset} without an end-of-archive marker")
        if block == _ZERO_BLOCK:
            while chunk := stream.read(_CHUNK):
                if chunk.count(0) != len(chunk):
                    raise BundleFormatError(f"the data stream has data after its end-of-archive marker at {offset}")
            return members, digests
        member = ustar.parse_header(block, offset)
        if member.name in seen:
            raise BundleFormatError(f"tar member {member.name!r} appears twice")
        seen.add(member.name)
        if len(seen) > max_members:
            raise BundleFormatError(f"the data stream has more than {max_members} members")
        digest = hashlib.sha256()
        remaining = member.size
        while remaining:
            data = stream.read(min(_CHUNK, remaining))
            if not data:
                raise BundleFormatError(f"tar member {member.name!r} is truncated at byte {stream.position}")
            digest.update(data)
            remaining -= len(data)
        padding = -member.size % ustar.BLOCK
        if len(stream.read(padding)) < padding:
            raise BundleFormatError(f"tar member {member.name!r} is truncated at byte {stream.position}")
        if not member.is_dir:
            members[member.name] = _DataMember(member.offset, member.size)
            digests[member.name] = digest.hexdigest()


class SplitBundle:
    """A split bundle opened at its head volume. Data members are listed once the volumes were checked.

    `check_volumes` verifies every data volume against the inventory in one streaming pass and indexes the
    members from the same bytes. Until then, `files()` lists the data members from a header-only scan, for
    reading without verifying; a scan that fails leaves them out, for check_volumes to explain.
    """

    def __init__(self, head: Path, limits: Limits = DEFAULT_LIMITS) -> None:
        self.location = str(head)
        self.head = head
        self._limits = limits
        self._head = TarBundle(head, limits)
        self._data: dict[str, _DataMember] | None = None
        self._volumes: list[tuple[Path, int]] = []
        self._digests: dict[str, str] = {}

    # -- BundleReader

    def files(self) -> dict[str, int]:
        if self._data is None:
            self._scan_headers()
        return {**self._head.files(), **{name: m.size for name, m in (self._data or {}).items()}}

    def open(self, path: str) -> BinaryIO:
        if path in self._head.files():
            return self._head.open(path)
        if self._data is None:
            self._scan_headers()
        member = (self._data or {}).get(path)
        if member is None:
            raise BundleFormatError(f"{self.location}: no member {path!r} in the head or the data volumes")
        pieces = _clip(self._volumes, member.offset, member.size)
        return io.BufferedReader(_Segments(pieces), buffer_size=_CHUNK)

    # -- volumes

    def streamed_sha256(self, path: str) -> str | None:
        """The member's sha256 as computed by check_volumes from the verified volumes, if it ran."""
        return self._digests.get(path)

    def listed_volumes(self) -> tuple[VolumeRecord, ...]:
        raw = read_small(self._head, INVENTORY_PATH, self._limits.max_inventory_bytes)
        return parse_inventory(raw).volumes

    def _scan_headers(self) -> None:
        self._data = {}
        try:
            volumes = [(volume_path(_stem(self.head), i), v.size) for i, v in enumerate(self.listed_volumes(), 1)]
            if not all(path.is_file() and path.stat().st_size == size for path, size in volumes):
                return
            with io.BufferedReader(_Segments([(p, 0, size) for p, size in volumes])) as stream:
                members = ustar.scan(stream, max_members=self._limits.max_bundle_members)
        except MirrorError:
            return
        self._volumes = volumes
        self._data = {m.name: _DataMember(m.offset, m.size) for m in members if not m.is_dir}
        self._check_clash()

    def _check_clash(self) -> None:
        clash = sorted(set(self._head.files()) & set(self._data or {}))
        if clash:
            raise BundleFormatError(f"{self.location}: {clash[0]} is in both the head and the data volumes")

    def strays(self, count: int) -> list[Path]:
        """Files named like a volume of this set (`STEM.NNN`) that the inventory does not list."""
        stem = _stem(self.head)
        pattern = re.compile(re.escape(stem.name) + r"\.([0-9]{3,})")
        found = []
        for entry in self.head.parent.iterdir():
            match = pattern.fullmatch(entry.name)
            if match and not 0 <= int(match.group(1)) <= count:
                found.append(entry)
            elif match and int(match.group(1)) > 0 and entry.name != volume_path(stem, int(match.group(1))).name:
                found.append(entry)  # e.g. `.0002` beside `.002`: the same number spelled another way
        return sorted(found, key=lambda p: p.name)

    def check_volumes(self, listed: Sequence[VolumeRecord], on_bytes: OnBytes) -> list[Problem]:
        """Every data volume present, of its size and sha256, nothing stray; then index the members."""
        stem = _stem(self.head)
        paths = [volume_path(stem, i) for i in range(1, len(listed) + 1)]
        problems = []
        for number, (path, record) in enumerate(zip(paths, listed, strict=True), 1):
            wrong = _not_regular(path)
            if wrong is not None:
                problems.append(
                    Problem(
                        "VOLUME_MISSING" if wrong == "missing" else "VOLUME_NOT_REGULAR",
                        f"{path}: {wrong}; the inventory lists it as data volume {number} of {len(listed)} "
                        f"({record.size} bytes, sha256 {record.sha256})",
                    )
                )
        strays = self.strays(len(listed))
        sizes_match = all(p.is_file() and p.stat().st_size == r.size for p, r in zip(paths, listed, strict=True))
        if problems or strays or not sizes_match:
            present = [(p, r, n) for n, (p, r) in enumerate(zip(paths, listed, strict=True), 1) if p.is_file()]
            problems += self._explain(present, strays, listed, on_bytes)
            self._data, self._digests = {}, {}
            return problems
        if not listed:  # a head alone: nothing to stream
            self._volumes, self._data, self._digests = [], {}, {}
            return problems
        stream = _VolumeStream(paths, on_bytes)
        parse_error: MirrorError | None = None
        try:
            members, digests = _parse_stream(stream, self._limits.max_bundle_members)
        except MirrorError as exc:
            parse_error, members, digests = exc, {}, {}
            stream.drain()
        finally:
            stream.close()
        problems += [
            self._wrong_volume(path, number, record, found, listed)
            for number, (path, record, found) in enumerate(zip(paths, listed, stream.digests, strict=True), 1)
            if found != record.sha256
        ]
        if problems:
            self._data, self._digests = {}, {}
            return problems
        if parse_error is not None:
            self._data, self._digests = {}, {}
            return [Problem("VOLUME_FORMAT", f"{stem.name}.001...: {parse_error}")]
        self._volumes = [(p, r.size) for p, r in zip(paths, listed, strict=True)]
        self._data, self._digests = members, digests
        try:
            self._check_clash()
        except BundleFormatError as exc:
            self._data, self._digests = {}, {}
            return [Problem("VOLUME_FORMAT", str(exc))]
        return []

    def _explain(
        self,
        present: list[tuple[Path, VolumeRecord, int]],
        strays: list[Path],
        listed: Sequence[VolumeRecord],
        on_bytes: OnBytes,
    ) -> list[Problem]:
        """A set already known to be wrong: hash what is there, to say which volume is which."""
        problems = []
        for path, record, number in present:
            found = _sha256_file(path, on_bytes)
            if found != record.sha256 or path.stat().st_size != record.size:
                problems.append(self._wrong_volume(path, number, record, found, listed))
        for path in strays:
            wrong = _not_regular(path)
            found = _sha256_file(path, on_bytes) if wrong is None else ""
            twin = next((n for n, r in enumerate(listed, 1) if r.sha256 == found), None)
            what = f"it holds data volume {twin} ({listed[twin - 1].name})" if twin else "not a volume of this bundle"
            what = what if wrong is None else f"{wrong}, named like a volume"
            problems.append(
                Problem(
                    "VOLUME_UNLISTED",
                    f"{path}: {what}; the inventory lists {len(listed)} data volume(s), "
                    f"{volume_path(_stem(self.head), 1).name} to {volume_path(_stem(self.head), len(listed)).name}"
                    if listed
                    else f"{path}: {what}; the inventory lists no data volumes",
                )
            )
        return problems

    @staticmethod
    def _wrong_volume(
        path: Path, number: int, record: VolumeRecord, found: str, listed: Sequence[VolumeRecord]
    ) -> Problem:
        size = path.stat().st_size
        expected = f"expected sha256 {record.sha256}, {record.size} bytes; found sha256 {found}, {size} bytes"
        twin = next((n for n, r in enumerate(listed, 1) if r.sha256 == found and n != number), None)
        if twin is not None:
            return Problem(
                "VOLUME_ORDER",
                f"{path}: holds data volume {twin} ({listed[twin - 1].name}), not volume {number}; "
                f"the volumes were renamed or reordered ({expected})",
            )
        if size < record.size:
            return Problem("VOLUME_SIZE", f"{path}: truncated ({expected})")
        if size > record.size:
            return Problem("VOLUME_SIZE", f"{path}: longer than the inventory says ({expected})")
        return Problem("VOLUME_DIGEST", f"{path}: damaged or from another bundle ({expected})")


def _sha256_file(path: Path, on_bytes: OnBytes) -> str:
    digest = hashlib.sha256()
    with open_regular(path) as handle:
        while data := handle.read(_CHUNK):
            digest.update(data)
            on_bytes(len(data))
    return digest.hexdigest()


def check_volumes(reader: BundleReader, inventory: Inventory, on_bytes: OnBytes) -> list[Problem]:
    """Problems with the data volumes the inventory lists; none for a bundle that is not split and lists none."""
    if isinstance(reader, SplitBundle):
        return reader.check_volumes(inventory.volumes, on_bytes)
    if inventory.volumes:
        first = inventory.volumes[0].name
        return [
            Problem(
                "VOLUME_MISSING",
                f"{reader.location}: the inventory lists {len(inventory.volumes)} data volume(s) from {first}; "
                f"open the bundle by its head volume ({first[:-4]}{HEAD_SUFFIX})",
            )
        ]
    return []


def streamed_sha256(reader: BundleReader, path: str) -> str | None:
    """A member's sha256 already computed while the volumes were checked, so it need not be read again."""
    return reader.streamed_sha256(path) if isinstance(reader, SplitBundle) else None


def open_if_split(path: Path, limits: Limits = DEFAULT_LIMITS) -> SplitBundle | None:
    """The split bundle whose head volume is `path`; None for a plain tar; a usage error for a data volume."""
    if is_head_volume(path):
        return SplitBundle(path, limits)
    match = re.fullmatch(r"(.+)\.([0-9]{3,})", path.name)
    if match and path.with_name(f"{match.group(1)}{HEAD_SUFFIX}").is_file():
        head = path.with_name(f"{match.group(1)}{HEAD_SUFFIX}")
        raise UsageError(f"{path}: a data volume of a split bundle", hint=f"give its head volume: {head}")
    return None
