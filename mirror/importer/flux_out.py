"""--flux-out: the carried Flux objects rewritten for the internal endpoints, the bootstrap objects
(mirror/flux/bootstrap.py) and the nodes' registry mirror files, rendered in memory (every name checked before
the first write) and written under a directory that is new, empty, or as the last night's import left it, never
through a link. Only imports with --flux-out import this module."""

from __future__ import annotations

import copy
import hashlib
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mirror.bundle.verify import VerifiedBundle
from mirror.errors import BundleFormatError, UsageError
from mirror.flux.bootstrap import EndpointAccess, FleetRoot, bootstrap_files, reference_internal_secrets, rewrites
from mirror.flux.relocate import Relocation
from mirror.flux.rewrite import (
    InternalEndpoints,
    RewrittenObject,
    mirror_configs,
    render_mirror_configs,
    render_objects,
    rewrite_objects,
)
from mirror.fsutil import atomic_write, create_exclusive
from mirror.importer.relocation import read_flux_objects
from mirror.limits import DEFAULT_LIMITS, Limits
from mirror.oci.reference import parse_reference
from mirror.terminal import escape

if TYPE_CHECKING:
    from mirror.importer.run import WriteLog


RECORD_NAME = ".mirror-flux-out.json"  # no namespace can be named so: never one of the rendered files
_RECORD_FORMAT = "mirror.flux-out/v1"


def check_output_directory(directory: Path, *, limits: Limits = DEFAULT_LIMITS) -> dict[str, str]:
    """The files an earlier import wrote in `directory` ({relative path: sha256}), to be replaced in place.

    A directory that does not exist yet (it is created) or is empty gives {}. One that holds anything is accepted
    only if it holds mirror's record of what it wrote there, and nothing else: every file listed in that record
    with the content recorded. A file mirror did not write, one edited since, or a link is refused (all of them
    named), so a night never overwrites an operator's work.
    """
    directory = Path(directory)
    if directory.is_symlink() or (directory.exists() and not directory.is_dir()):
        raise UsageError(f"{directory}: exists and is not a directory")
    existing = next(p for p in (directory, *directory.absolute().parents) if p.exists())
    if not existing.is_dir():  # a file on the way: creating the directory would fail at the write
        raise UsageError(f"{directory}: cannot be created ({existing} exists and is not a directory)")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"{directory}: cannot be written ({existing} is not writable)")
    if not directory.exists() or not any(directory.iterdir()):
        return {}
    record_path = directory / RECORD_NAME
    if record_path.is_symlink() or not record_path.is_file():
        raise UsageError(
            f"{directory}: is not empty, and mirror did not write it",
            hint="choose an empty directory for --flux-out, or the one an earlier import wrote",
        )
    recorded = _read_record(record_path, limits)
    present: dict[str, str] = {}
    problems: list[str] = []
    for root, folders, names in os.walk(directory, followlinks=False):
        base = Path(root)
        for name in sorted(folders + names):
            path = base / name
            relative = path.relative_to(directory).as_posix()
            if path.is_symlink():
                problems.append(f"{escape(relative)}: a link")
            elif path.is_dir() or relative == RECORD_NAME:
                continue
            elif not path.is_file():
                problems.append(f"{escape(relative)}: not a regular file")
            elif relative not in recorded:
                problems.append(f"{escape(relative)}: mirror did not write it")
            else:
                digest = _file_digest(path)
                if digest not in recorded[relative]:
                    problems.append(f"{escape(relative)}: changed since mirror wrote it")
                present[relative] = digest
    if problems:
        shown = problems[: limits.max_problems]
        if len(problems) > len(shown):
            shown.append(f"… and {len(problems) - len(shown)} more")
        raise UsageError(
            f"{directory}: holds what an import cannot replace",
            problems=shown,
            hint="move these files elsewhere (or choose another --flux-out directory); nothing was written",
        )
    return present


def _read_record(path: Path, limits: Limits) -> dict[str, frozenset[str]]:
    with path.open("rb") as handle:
        raw = handle.read(limits.max_flux_out_record_bytes + 1)
    if len(raw) > limits.max_flux_out_record_bytes:
        raise UsageError(f"{path}: larger than its limit of {limits.max_flux_out_record_bytes} bytes")
    try:
        document = json.loads(raw)
        if document.get("format") != _RECORD_FORMAT:
            raise ValueError("format")
        files = document["files"]
        return {
            str(name): frozenset(str(d) for d in digests)
            for name, digests in files.items()
            if isinstance(digests, list)
        }
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError):
        raise UsageError(
            f"{path}: not mirror's record of a --flux-out directory", hint="choose an empty --flux-out directory"
        ) from None


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _record(files: Mapping[str, set[str]]) -> bytes:
    document = {"format": _RECORD_FORMAT, "files": {name: sorted(files[name]) for name in sorted(files)}}
    return (json.dumps(document, indent=1) + "\n").encode()


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


def write_flux_out(files: dict[str, str], directory: Path, written: WriteLog, planned: Mapping[str, str]) -> None:
    """Write the rendered files, replacing what the last night wrote (`planned`, as check_output_directory found
    it when the import began: the directory must still be so) and removing its files this night no longer has.

    The record first lists both nights' contents, so a night stopped half-way leaves a directory the next import
    accepts; it lists this night's alone at the end.
    """
    directory = Path(directory)
    if check_output_directory(directory) != dict(planned):
        raise UsageError(f"{directory}: changed during the import; nothing was written there")
    new = {name: hashlib.sha256(text.encode("utf-8")).hexdigest() for name, text in files.items()}
    for name in new:
        _relative_parts(name)
    directory.mkdir(parents=True, exist_ok=True)
    both = {name: {d for d in (planned.get(name), new.get(name)) if d} for name in {*planned, *new}}
    atomic_write(directory / RECORD_NAME, _record(both), durable=False)
    for relative, text in files.items():
        if planned.get(relative) != new[relative]:
            write_files({relative: text}, directory, overwrite=True)
        written.flux_files += 1
    for relative in sorted(set(planned) - set(new)):
        (directory / relative).unlink(missing_ok=True)
        _remove_empty_parents(directory, relative)
    atomic_write(directory / RECORD_NAME, _record({name: {digest} for name, digest in new.items()}), durable=False)


def _remove_empty_parents(directory: Path, relative: str) -> None:
    parent = (directory / relative).parent
    while parent != directory:
        try:
            parent.rmdir()
        except OSError:
            return  # not empty
        parent = parent.parent


@dataclass(frozen=True)
class FluxOut:
    files: dict[str, str]  # relative path → text
    rewrites: list[dict[str, Any]]  # what was rewritten in each source, for the import report


_GIT_REF_KINDS = ("branch", "tag", "semver", "commit", "name")


def fleet_roots(verified: VerifiedBundle) -> list[FleetRoot]:
    """Each `flux:` entry read from a carried Git source, with that source's URL and ref (from the inventory)."""
    sources = {a.extra.get("name"): a for a in verified.git}
    roots = []
    for artifact in verified.flux:
        git, path = artifact.extra.get("git"), artifact.extra.get("path")
        if git is None:
            continue  # read from a local directory: there is no Git source for Flux to follow
        source = sources.get(git)
        ref = source.extra.get("ref", {}) if source is not None else None
        if (
            not isinstance(git, str)
            or not isinstance(path, str)
            or source is None
            or not isinstance(ref, dict)
            or not all(k in _GIT_REF_KINDS and isinstance(v, str) for k, v in ref.items())
        ):
            raise BundleFormatError(
                f"{verified.reader.location}: inventory: the flux entry {escape(artifact.source)} names no carried "
                "Git source with a valid ref"
            )
        roots.append(FleetRoot(git=git, url=source.source, ref=ref, path=path))
    return roots


def _follow_relocated(item: RewrittenObject, relocation: Relocation) -> RewrittenObject:
    spec = item.body.get("spec")
    if item.source.kind != "GitRepository" or not isinstance(spec, dict) or not isinstance(spec.get("ref"), dict):
        return item
    branch = relocation.follows(str(spec.get("url")), spec["ref"].get("branch"))
    if branch is None:
        return item
    body = copy.deepcopy(item.body)
    body["spec"]["ref"]["branch"] = branch
    return RewrittenObject(item.path, body, item.source)


def _root_following(root: FleetRoot, endpoints: InternalEndpoints, relocation: Relocation) -> FleetRoot:
    branch = relocation.follows(endpoints.git_url(root.url), root.ref.get("branch"))
    return root if branch is None else replace(root, ref={**root.ref, "branch": branch})


def render_flux_out(
    verified: VerifiedBundle,
    directory: Path,
    registry_url: str,
    git_base: str | None,
    *,
    ca_file: str | None,
    limits: Limits,
    warn: Callable[[str], None],
    access: EndpointAccess,
    relocation: Relocation | None = None,
) -> FluxOut:
    """The carried Flux objects rewritten for the internal endpoints, and the nodes' registry mirror files,
    rendered in memory ({relative path: text}); every name is checked here, before anything is written. With a
    `relocation`, GitRepository objects (and the fleet roots) on a relocated branch follow `mirror/<branch>`."""
    if not verified.flux:
        raise UsageError(f"--flux-out {directory}: the bundle carries no Flux objects")
    endpoints = InternalEndpoints(registry_url, git_base)
    notes: list[str] = []
    objects = read_flux_objects(verified, limits)
    rewritten = reference_internal_secrets(rewrite_objects(objects, endpoints, warnings=notes), endpoints, access)
    if relocation is not None:
        rewritten = [_follow_relocated(item, relocation) for item in rewritten]
    roots = fleet_roots(verified)
    if relocation is not None:
        roots = [_root_following(root, endpoints, relocation) for root in roots]
    files = render_objects(rewritten)
    files.update(bootstrap_files(roots, rewritten, endpoints, access))
    sources = sorted({parse_reference(a.source).registry for a in verified.inventory.artifacts if a.kind == "image"})
    registry = registry_url.split("://", 1)[-1]
    files.update(render_mirror_configs(mirror_configs(registry, sources, ca_file=ca_file)))
    for note in notes:
        warn(note)
    return FluxOut(files, rewrites(rewritten))
