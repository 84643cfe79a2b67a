"""--flux-out: the carried Flux objects rewritten for the internal endpoints and the nodes' registry mirror
files, rendered in memory (every name checked before the first write) and written under a directory that was
new or empty, never through a link. Only imports with --flux-out import this module."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from mirror.bundle.inventory import blob_path
from mirror.bundle.reader import read_small
from mirror.bundle.verify import VerifiedBundle
from mirror.errors import BundleFormatError, IntegrityError, UsageError
from mirror.flux.blob import parse_objects_blob
from mirror.flux.rewrite import (
    InternalEndpoints,
    RewrittenObject,
    mirror_configs,
    render_mirror_configs,
    render_objects,
    rewrite_objects,
)
from mirror.fsutil import atomic_write, create_exclusive
from mirror.limits import Limits
from mirror.oci.reference import parse_reference

if TYPE_CHECKING:
    from mirror.importer.run import WriteLog


def check_output_directory(directory: Path) -> None:
    """An output directory that does not exist yet (it is created) or is empty; refused otherwise."""
    directory = Path(directory)
    if directory.is_symlink() or (directory.exists() and not directory.is_dir()):
        raise UsageError(f"{directory}: exists and is not a directory")
    if directory.exists() and any(directory.iterdir()):
        raise UsageError(f"{directory}: is not empty", hint="choose an empty directory for --flux-out")
    existing = next(p for p in (directory, *directory.absolute().parents) if p.exists())
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"{directory}: cannot be written ({existing} is not writable)")


def _relative_parts(relative: str) -> list[str]:
    parts = relative.split("/")
    if relative.startswith("/") or any(part in ("", ".", "..") for part in parts):
        raise UsageError(f"{relative!r} is not a safe relative file name")
    return parts


def write_files(files: Mapping[str, str], directory: Path, *, overwrite: bool = False) -> list[Path]:
    """Write rendered files under `directory`, never through a link: directories are made (an existing one
    must be a real directory), and each file is new (O_EXCL|O_NOFOLLOW), or with `overwrite` replaced whole."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for relative, text in files.items():
        *folders, name = _relative_parts(relative)
        parent = directory
        for folder in folders:
            parent = parent / folder
            try:
                parent.mkdir()
            except FileExistsError:
                if parent.is_symlink() or not parent.is_dir():
                    raise UsageError(f"{parent}: exists and is not a directory") from None
        target = parent / name
        if overwrite:
            atomic_write(target, text.encode("utf-8"), durable=False)
        else:
            with create_exclusive(target) as handle:
                handle.write(text.encode("utf-8"))
        written.append(target)
    return written


def write_objects(rewritten: Sequence[RewrittenObject], directory: Path, *, overwrite: bool = False) -> list[Path]:
    """Write each object to DIRECTORY/<namespace>/<kind>/<name>.yaml and a kustomization.yaml listing them.

    Refuses a directory that holds anything already, unless `overwrite` (then files of the same names are
    replaced and others left alone).
    """
    if not overwrite:
        check_output_directory(directory)
    return write_files(render_objects(rewritten), directory, overwrite=overwrite)


def write_mirror_configs(configs: Mapping[str, str], directory: Path) -> list[Path]:
    """Write mirror_configs' files under DIRECTORY/_registries/."""
    return write_files(render_mirror_configs(configs), directory, overwrite=True)


def write_flux_out(files: dict[str, str], directory: Path, written: WriteLog) -> None:
    check_output_directory(directory)  # again: it was empty at the start, and must still be
    for relative, text in files.items():
        write_files({relative: text}, directory)
        written.flux_files += 1


def render_flux_out(
    verified: VerifiedBundle,
    directory: Path,
    registry_url: str,
    git_base: str | None,
    *,
    ca_file: str | None,
    limits: Limits,
    warn: Callable[[str], None],
) -> dict[str, str]:
    """The carried Flux objects rewritten for the internal endpoints, and the nodes' registry mirror files,
    rendered in memory ({relative path: text}); every name is checked here, before anything is written."""
    if not verified.flux:
        raise UsageError(f"--flux-out {directory}: the bundle carries no Flux objects")
    endpoints = InternalEndpoints(registry_url, git_base)
    notes: list[str] = []
    objects = []
    for artifact in verified.flux:
        path = blob_path(artifact.digest)
        raw = read_small(verified.reader, path, limits.max_flux_objects_bytes)
        if "sha256:" + hashlib.sha256(raw).hexdigest() != artifact.digest:  # read again since verify: check again
            raise IntegrityError(
                f"{verified.reader.location}: {path} changed since it was verified",
                hint="the bundle was altered during the import; verify it again",
            )
        try:
            objects += parse_objects_blob(raw, artifact.source, limits=limits)
        except (ValueError, TypeError, AttributeError) as exc:
            raise BundleFormatError(f"{verified.reader.location}: {path}: not a mirror FluxObjects document") from exc
    files = render_objects(rewrite_objects(objects, endpoints, warnings=notes))
    sources = sorted({parse_reference(a.source).registry for a in verified.inventory.artifacts if a.kind == "image"})
    registry = registry_url.split("://", 1)[-1]
    files.update(render_mirror_configs(mirror_configs(registry, sources, ca_file=ca_file)))
    for note in notes:
        warn(note)
    return files
