"""`import --files-out DIR`: every file the bundle carries (spec.files) also written to DIR under its name.

The directory is one mirror keeps night after night (mirror.importer.outdir): new, empty, or as the last import
left it. Each file is streamed from the bundle, hashed again on its way (the bundle could change after it was
verified) and renamed into place only when whole. See docs/importer.md ("Files").
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from mirror.bundle.inventory import blob_path
from mirror.bundle.reader import BundleReader, opened
from mirror.bundle.verify import VerifiedBundle
from mirror.errors import IntegrityError, MirrorError, Problem, UsageError, VerificationError
from mirror.fsutil import atomic_writer
from mirror.importer.outdir import RecordedDirectory
from mirror.limits import DEFAULT_LIMITS, Limits
from mirror.oci.fileartifact import file_layer, is_file_name
from mirror.terminal import escape

RECORD_NAME = ".mirror-files-out.json"
FILES_OUT = RecordedDirectory(
    "--files-out", RECORD_NAME, "mirror.files-out/v1", lambda limits: limits.max_files_out_record_bytes
)


@dataclass(frozen=True)
class OutFile:
    name: str
    sha256: str  # hex
    size: int
    carried: bool  # False: an incremental bundle left its bytes to the base chain


def check_output_flags(files_out: Path, others: Mapping[str, Path | None]) -> None:
    """--files-out must not hold, or be held by, another output directory ({flag: directory}): each night checks
    that its directory holds only what it wrote, so two sharing one would refuse each other after the first write."""
    mine = Path(files_out).absolute()
    for flag, other in others.items():
        if other is None:
            continue
        theirs = Path(other).absolute()
        if mine == theirs or mine in theirs.parents or theirs in mine.parents:
            raise UsageError(f"--files-out {files_out} and {flag} {other}: give two directories, neither in the other")


def check_output_directory(directory: Path, *, limits: Limits = DEFAULT_LIMITS) -> dict[str, str]:
    """The files an earlier import wrote in the --files-out `directory` (RecordedDirectory.check), which holds
    files only: a directory there (where a file would be renamed into place) is refused too."""
    previous = FILES_OUT.check(directory, limits=limits)
    folders = (
        sorted(p.name for p in directory.iterdir() if p.is_dir() and not p.is_symlink()) if directory.is_dir() else []
    )
    if folders:
        raise UsageError(
            f"{directory}: holds what an import cannot replace",
            problems=[f"{escape(name)}: a directory; mirror writes only files here" for name in folders],
            hint="move these directories elsewhere (or choose another --files-out directory); nothing was written",
        )
    return previous


def plan_files_out(verified: VerifiedBundle, previous: Mapping[str, str]) -> dict[str, OutFile]:
    """Every file of the bundle by name, or VerificationError / UsageError listing every one it cannot write."""
    planned: dict[str, OutFile] = {}
    problems: list[Problem] = []
    missing: list[str] = []
    for image in verified.images:
        artifact = image.artifact
        if artifact.kind != "file":
            continue
        name = artifact.extra.get("name")
        shown = escape(f"file {artifact.source}")
        if not is_file_name(name) or name == RECORD_NAME or str(name).lower() in {n.lower() for n in planned}:
            problems.append(Problem("FILE_NAME_INVALID", f"{shown}: {escape(repr(name))} cannot be written by name"))
            continue
        sha, size = artifact.extra.get("fileSha256"), artifact.extra.get("fileSize")
        carried = image.carried and blob_path(f"sha256:{sha}") in verified.reader.files()
        if image.carried:
            try:
                layer = file_layer(image.top, str(name), shown)
            except MirrorError as exc:
                problems.append(Problem("GRAPH_INVALID", str(exc)))
                continue
            sha, size = layer.digest.removeprefix("sha256:"), layer.size
        if not carried and previous.get(str(name)) != sha:
            missing.append(str(name))
        planned[str(name)] = OutFile(str(name), str(sha), int(str(size)), carried)
    if problems:
        raise VerificationError(
            f"{len(problems)} file(s) of the bundle cannot be written to --files-out", problems=problems
        )
    if missing:
        raise UsageError(
            f"--files-out: {', '.join(escape(n) for n in missing)}: this incremental bundle leaves the file's bytes "
            "to its base, and the directory does not hold them",
            hint="give the --files-out directory the last import wrote, or import the base bundle with --files-out",
        )
    return planned


def write_files_out(
    files: Mapping[str, OutFile],
    reader: BundleReader,
    directory: Path,
    previous: Mapping[str, str],
    *,
    on_file: Callable[[], None] = lambda: None,
    limits: Limits = DEFAULT_LIMITS,
) -> None:
    """Write each file that differs from what the last import wrote, remove those this night no longer has.

    The record first lists both nights' contents, so a night stopped half-way leaves a directory the next import
    accepts; it lists this night's alone at the end."""
    if check_output_directory(directory, limits=limits) != dict(previous):
        raise UsageError(f"{directory}: changed during the import; nothing was written there")
    directory.mkdir(parents=True, exist_ok=True)
    FILES_OUT.remove_leftovers(directory, limits=limits)
    new = {name: f.sha256 for name, f in files.items()}
    both = {name: {d for d in (previous.get(name), new.get(name)) if d} for name in {*previous, *new}}
    with atomic_writer(directory / RECORD_NAME, durable=False) as handle:
        handle.write(FILES_OUT.record(both))
    for name, planned in files.items():
        if previous.get(name) != planned.sha256:
            _write_one(reader, planned, directory / name, limits)
        on_file()
    for name in sorted(set(previous) - set(files)):
        (directory / name).unlink(missing_ok=True)
    with atomic_writer(directory / RECORD_NAME, durable=False) as handle:
        handle.write(FILES_OUT.record({name: {f.sha256} for name, f in files.items()}))


def _write_one(reader: BundleReader, planned: OutFile, target: Path, limits: Limits) -> None:
    digest = hashlib.sha256()
    with opened(reader, blob_path(f"sha256:{planned.sha256}")) as source, atomic_writer(target, durable=True) as out:
        while chunk := source.read(limits.copy_chunk_bytes):
            digest.update(chunk)
            out.write(chunk)
        if digest.hexdigest() != planned.sha256:  # the bundle changed since it was verified: the file is not kept
            raise IntegrityError(
                f"{reader.location}: file {escape(planned.name)} changed since the bundle was verified",
                hint="the bundle was altered during the import; verify it again",
            )
