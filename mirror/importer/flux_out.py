"""--flux-out: the carried Flux objects rewritten for the internal endpoints, the bootstrap objects
(mirror/flux/bootstrap.py) and the nodes' registry mirror files, rendered in memory (every name checked before
the first write) and written under a directory that is new, empty, or as the last night's import left it, never
through a link. Only imports with --flux-out import this module."""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mirror.bundle.verify import VerifiedBundle
from mirror.errors import BundleFormatError, UsageError
from mirror.flux.bootstrap import EndpointAccess, FleetRoot, bootstrap_files, reference_internal_secrets, rewrites
from mirror.flux.relocate import Relocation
from mirror.flux.rewrite import InternalEndpoints, RewrittenObject, render_objects, rewrite_objects
from mirror.importer.outdir import RecordedDirectory, write_files
from mirror.importer.relocation import read_flux_objects
from mirror.limits import DEFAULT_LIMITS, Limits
from mirror.terminal import escape

if TYPE_CHECKING:
    from mirror.importer.run import WriteLog


RECORD_NAME = ".mirror-flux-out.json"  # no namespace can be named so: never one of the rendered files
REGISTRY_CONFIG_DIR = "_registries"  # the nodes' registry mirror files; no namespace can be named so either
FLUX_OUT = RecordedDirectory(
    "--flux-out", RECORD_NAME, "mirror.flux-out/v1", lambda limits: limits.max_flux_out_record_bytes
)


def check_output_directory(directory: Path, *, limits: Limits = DEFAULT_LIMITS) -> dict[str, str]:
    """The files an earlier import wrote in the --flux-out `directory` (RecordedDirectory.check)."""
    return FLUX_OUT.check(directory, limits=limits)


def write_objects(rewritten: Sequence[RewrittenObject], directory: Path, *, overwrite: bool = False) -> list[Path]:
    """Write each object to DIRECTORY/<namespace>/<kind>/<name>.yaml and a kustomization.yaml listing them.

    Refuses a directory that holds anything already, unless `overwrite` (then files of the same names are
    replaced and others left alone).
    """
    if not overwrite:
        check_output_directory(directory)
    return write_files(render_objects(rewritten), directory, overwrite=overwrite)


def write_flux_out(files: dict[str, str], directory: Path, written: WriteLog, planned: Mapping[str, str]) -> None:
    """Write the rendered files over what the last night wrote (RecordedDirectory.write), counting each."""

    def count() -> None:
        written.flux_files += 1

    FLUX_OUT.write(files, directory, planned, on_file=count)


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
    node_files: Mapping[str, str],
    limits: Limits,
    warn: Callable[[str], None],
    access: EndpointAccess,
    relocation: Relocation | None = None,
) -> FluxOut:
    """The carried Flux objects rewritten for the internal endpoints, and the nodes' registry mirror files
    (`node_files`, mirror/nodeconfig/, under `_registries/`), rendered in memory ({relative path: text}); every
    name is checked here, before anything is written. With a `relocation`, GitRepository objects (and the fleet
    roots) on a relocated branch follow `mirror/<branch>`."""
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
    files.update({f"{REGISTRY_CONFIG_DIR}/{name}": text for name, text in sorted(node_files.items())})
    for note in notes:
        warn(note)
    return FluxOut(files, rewrites(rewritten))
