"""The content of a Flux OCI artifact, for a Kustomization whose source is an OCIRepository.

source-controller pulls the artifact, takes the layer that `spec.layerSelector.mediaType` names (without a selector,
the first layer; `flux push artifact` writes one of type application/vnd.cncf.flux.content.v1.tar+gzip) and unpacks
that tarball; kustomize-controller then builds the Kustomization's path inside it. mirror does the same on the
connected side, with the tarball as untrusted input: it is never handed to tarfile's bulk extraction; members are
read as a stream, each name must stay inside the directory (no absolute path, no `..`), only directories and regular
files are created (links and devices are skipped, with a note), a name may appear once, and the layer's size, the
unpacked bytes and the number of members are capped by `Limits`.
"""

from __future__ import annotations

import gzip
import shutil
import tarfile
import tempfile
import zlib
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from mirror.errors import UsageError
from mirror.flux.plan import OciArtifact
from mirror.fsutil import create_exclusive
from mirror.limits import DEFAULT_LIMITS, Limits
from mirror.oci.document import Descriptor, parse_manifest
from mirror.oci.reference import ImageReference
from mirror.registry.pool import ClientPool

__all__ = ["FLUX_CONTENT", "extract_artifact", "fetch_artifact"]

FLUX_CONTENT = "application/vnd.cncf.flux.content.v1.tar+gzip"
_CHUNK = 1024 * 1024


def _member_path(name: str, where: str) -> PurePosixPath | None:
    """The member's path relative to the directory, None for the directory itself; UsageError outside it."""
    if "\\" in name or "\x00" in name or name.startswith("/"):
        raise UsageError(f"{where}: the artifact's member {name!r} is not a relative path inside it")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise UsageError(f"{where}: the artifact's member {name!r} climbs out of it")
    return PurePosixPath(*parts) if parts else None


def _make_directory(path: Path, name: str, where: str) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as exc:
        raise UsageError(f"{where}: the artifact's member {name!r} is both a file and a directory") from exc


def extract_artifact(stream: BinaryIO, directory: Path, *, where: str, limits: Limits = DEFAULT_LIMITS) -> list[str]:
    """Unpack the tar+gzip `stream` into `directory` (created; must not exist). Returns notes (members
    skipped); raises UsageError naming `where` for an unsafe or oversized tarball."""
    directory.mkdir(parents=True)
    notes: list[str] = []
    members = 0
    content = 0
    try:
        with gzip.GzipFile(fileobj=stream, mode="rb") as unzipped, tarfile.open(fileobj=unzipped, mode="r|") as tar:
            for member in tar:
                members += 1
                if members > limits.max_flux_artifact_files:
                    raise UsageError(
                        f"{where}: the artifact holds more than {limits.max_flux_artifact_files} members "
                        "(limit max_flux_artifact_files)"
                    )
                relative = _member_path(member.name, where)
                if relative is None:
                    continue
                target = directory.joinpath(*relative.parts)
                if member.isdir():
                    _make_directory(target, member.name, where)
                    continue
                if not member.isreg():
                    notes.append(f"{where}: {member.name!r} in the artifact is a link or device; skipped")
                    continue
                content += member.size
                if content > limits.max_flux_artifact_content_bytes:
                    raise UsageError(
                        f"{where}: the artifact unpacks to more than {limits.max_flux_artifact_content_bytes} bytes "
                        "(limit max_flux_artifact_content_bytes)"
                    )
                _make_directory(target.parent, member.name, where)  # only directories and files: no link to follow
                source = tar.extractfile(member)
                assert source is not None  # a regular file
                try:
                    handle = create_exclusive(target)
                except FileExistsError as exc:
                    raise UsageError(f"{where}: the artifact lists {member.name!r} twice") from exc
                with handle:
                    shutil.copyfileobj(source, handle, _CHUNK)
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        if isinstance(exc, OSError) and not isinstance(exc, gzip.BadGzipFile) and exc.errno is not None:
            raise
        raise UsageError(f"{where}: the artifact's layer is not a tar+gzip archive: {exc}") from exc
    return notes


def _layer(layers: tuple[Descriptor, ...], media_type: str | None, where: str) -> Descriptor:
    if media_type:
        for layer in layers:
            if layer.media_type == media_type:
                return layer
        raise UsageError(f"{where}: the artifact has no layer of type {media_type} (spec.layerSelector.mediaType)")
    if not layers:
        raise UsageError(f"{where}: the artifact has no layer")
    return layers[0]


def fetch_artifact(
    pool: ClientPool, artifact: OciArtifact, reference: ImageReference, directory: Path, limits: Limits
) -> list[str]:
    """Download the layer Flux would take from the artifact at `reference` (its tag or digest resolved) and
    unpack it into `directory`; returns the notes of extract_artifact."""
    where = artifact.origin
    client = pool.for_host(reference.registry)
    fetched = client.get_manifest(reference.repository, reference.digest or reference.tag or "latest")
    document = parse_manifest(fetched.raw, declared_type=fetched.media_type, where=where, digest=fetched.digest)
    if document.is_index:
        raise UsageError(f"{where}: {reference.name} is an image index, not a Flux artifact")
    layer = _layer(document.layers, artifact.layer_media_type, where)
    if layer.size > limits.max_flux_artifact_bytes:
        raise UsageError(
            f"{where}: the artifact's layer is {layer.size} bytes, more than {limits.max_flux_artifact_bytes} "
            "(limit max_flux_artifact_bytes)"
        )
    with tempfile.TemporaryFile(prefix="mirror-artifact-") as handle:
        client.download_blob(reference.repository, layer.digest, layer.size, handle)  # checks the digest
        handle.seek(0)
        return extract_artifact(handle, directory, where=where, limits=limits)
