"""Where signatures live in a bundle: `signatures/<sha256 of the envelope>.json`, named by their own bytes.

See docs/bundle-format.md.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import tarfile
from pathlib import Path

from mirror.bundle import ustar
from mirror.bundle.reader import BundleReader, read_small
from mirror.errors import BundleFormatError, Problem, UsageError
from mirror.fsutil import atomic_write
from mirror.limits import DEFAULT_LIMITS, Limits

SIGNATURE_DIR = "signatures"
_NAME = re.compile(r"signatures/([a-f0-9]{64})\.json")


def is_signature_path(path: str) -> bool:
    return _NAME.fullmatch(path) is not None


def signature_path(raw: bytes) -> str:
    return f"{SIGNATURE_DIR}/{hashlib.sha256(raw).hexdigest()}.json"


def read_envelopes(reader: BundleReader, limits: Limits = DEFAULT_LIMITS) -> tuple[dict[str, bytes], list[Problem]]:
    """Every envelope (each at most limits.max_envelope_bytes), by path; and the problems of those refused.

    At most limits.max_envelopes are read, the first by name: a bundle carrying more is refused with one
    problem saying so, instead of one public-key operation per junk signature.
    """
    envelopes: dict[str, bytes] = {}
    problems: list[Problem] = []
    paths = sorted(p for p in reader.files() if is_signature_path(p))
    if len(paths) > limits.max_envelopes:
        problems.append(
            Problem(
                "ENVELOPE_LIMIT",
                f"{SIGNATURE_DIR}/: {len(paths)} envelopes, more than the limit of {limits.max_envelopes}; "
                f"only the first {limits.max_envelopes} by name were read",
            )
        )
        paths = paths[: limits.max_envelopes]
    for path in paths:
        try:
            raw = read_small(reader, path, limits.max_envelope_bytes)
        except BundleFormatError as exc:
            problems.append(Problem("ENVELOPE_INVALID", exc.message))
            continue
        if signature_path(raw) != path:
            problems.append(Problem("ENVELOPE_INVALID", f"{path}: content does not hash to its name"))
            continue
        envelopes[path] = raw
    return envelopes, problems


def _append_to_tar(bundle: Path, name: str, raw: bytes, limits: Limits) -> None:
    with open(bundle, "r+b") as handle:
        # Two officers approving one tar at once: the scan and the write are one step under the lock, so the
        # second sees the first's member and writes after it instead of over it. Released when the file closes.
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        members = ustar.scan(handle, max_members=limits.max_bundle_members)
        if any(m.name == name for m in members):
            return  # a concurrent approval stored the same envelope
        end = max((m.offset + -(-m.size // ustar.BLOCK) * ustar.BLOCK for m in members), default=0)
        info = tarfile.TarInfo(name)
        info.size, info.mode, info.mtime = len(raw), 0o644, 0
        header = info.tobuf(format=tarfile.USTAR_FORMAT)
        padding = b"\0" * (-len(raw) % ustar.BLOCK)
        handle.seek(end)
        # Header, data and a fresh end-of-archive marker, written over the old marker.
        handle.write(header + raw + padding + b"\0" * (2 * ustar.BLOCK))
        handle.truncate()
        handle.flush()
        os.fsync(handle.fileno())


def add_envelope(bundle: Path, raw: bytes, limits: Limits = DEFAULT_LIMITS) -> str:
    """Store an envelope in a bundle (directory or tar) and return its path there; storing it twice is a no-op."""
    name = signature_path(raw)
    if bundle.is_dir():
        directory = bundle / SIGNATURE_DIR
        if directory.is_symlink():
            raise BundleFormatError(f"{directory}: is a symbolic link; refusing to write through it")
        directory.mkdir(exist_ok=True)
        target = bundle / name
        if not target.exists():
            atomic_write(target, raw)  # named by its own hash: a concurrent approval writes the same bytes
    elif bundle.is_file():
        with open(bundle, "rb") as handle:
            present = {m.name for m in ustar.scan(handle, max_members=limits.max_bundle_members)}
        if name not in present:
            _append_to_tar(bundle, name, raw, limits)
    else:
        raise UsageError(f"{bundle}: no bundle here")
    return name
