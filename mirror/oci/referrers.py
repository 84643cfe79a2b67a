"""What the OCI 1.1 referrers API says of a manifest: the subject it is attached to, and the descriptor that lists it.

Shared by the importer (the referrers tag schema's index it writes on a target without the API) and `mirror serve`
(the referrers API it answers), so both list an attached manifest the same way.
"""

from __future__ import annotations

import json
from typing import Any

from mirror.oci import mediatypes as mt
from mirror.oci.digest import is_digest
from mirror.oci.document import ManifestDocument


def subject_of(document: ManifestDocument) -> str | None:
    """The digest `document` is attached to; None when it names none, or names something that is not a digest
    (its fallback index is a tag named after it: never another tag of the repository)."""
    subject = document.body.get("subject")
    digest = subject.get("digest") if isinstance(subject, dict) else None
    return digest if is_digest(digest) else None


def referrer_descriptor(document: ManifestDocument) -> dict[str, Any]:
    """The descriptor of `document` as the referrers API lists it: media type, digest, size, artifact type (its
    `artifactType`, else its config's media type) and annotations."""
    descriptor: dict[str, Any] = {"mediaType": document.media_type, "digest": document.digest, "size": document.size}
    artifact_type = document.body.get("artifactType") or (document.config.media_type if document.config else None)
    if isinstance(artifact_type, str) and artifact_type:
        descriptor["artifactType"] = artifact_type
    annotations = document.body.get("annotations")
    if isinstance(annotations, dict) and annotations:
        descriptor["annotations"] = annotations
    return descriptor


def referrers_index(descriptors: list[dict[str, Any]]) -> bytes:
    """The image index that lists `descriptors`: the referrers API's answer, and the referrers tag schema's index."""
    return json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": descriptors}).encode()
