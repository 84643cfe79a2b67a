"""A single file as an OCI artifact, following the ORAS conventions, so `oras pull` gets it back by name.

An image manifest with `artifactType` application/vnd.mirror.file.v1, the empty config, and one layer (the file's
bytes unchanged) titled with the file name. Built deterministically (no `created` annotation): the same file
under the same name always gives the same manifest digest. See docs/bundle-format.md ("Files").
"""

from __future__ import annotations

import json
import re

from mirror.errors import InvalidDocumentError
from mirror.oci import mediatypes as mt
from mirror.oci.digest import sha256_digest
from mirror.oci.document import Descriptor, ManifestDocument

FILE_ARTIFACT_TYPE = "application/vnd.mirror.file.v1"
FILE_LAYER = "application/octet-stream"
EMPTY_CONFIG_TYPE = "application/vnd.oci.empty.v1+json"
EMPTY_CONFIG = b"{}"
TITLE = "org.opencontainers.image.title"
FILES_REPOSITORY = "files"  # landing: PREFIX/files/<name>:<tag> (docs/importer.md)
_FILE_NAME = re.compile(r"[A-Za-z0-9._-]{1,128}")


def is_file_name(name: object) -> bool:
    """A name a file is written under (--files-out) and lands as: one path component, never `.` or `..`."""
    return isinstance(name, str) and _FILE_NAME.fullmatch(name) is not None and name not in (".", "..")


def landing_repository(name: str) -> str:
    """The repository a file lands in, under the target's prefix."""
    return f"{FILES_REPOSITORY}/{name.lower()}"


def file_manifest(name: str, sha256_hex: str, size: int) -> bytes:
    body = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "artifactType": FILE_ARTIFACT_TYPE,
        "config": {"mediaType": EMPTY_CONFIG_TYPE, "digest": sha256_digest(EMPTY_CONFIG), "size": len(EMPTY_CONFIG)},
        "layers": [
            {"mediaType": FILE_LAYER, "digest": f"sha256:{sha256_hex}", "size": size, "annotations": {TITLE: name}}
        ],
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def file_layer(document: ManifestDocument, name: str, where: str) -> Descriptor:
    """The one layer of a file artifact, titled `name`; InvalidDocumentError (exit 3) for anything else."""
    layers = document.layers
    artifact_type = document.body.get("artifactType")
    if artifact_type != FILE_ARTIFACT_TYPE or len(layers) != 1 or layers[0].annotations.get(TITLE) != name:
        raise InvalidDocumentError(f"{where}: not a file artifact of one layer titled {name!r}")
    return layers[0]
