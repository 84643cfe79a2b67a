"""What upstream vendors attach to their images, built and pushed for tests: an SPDX SBOM as an OCI 1.1 manifest
with a `subject` (listed in the referrers tag schema's index, for registries without the referrers API, as
distribution 2.8), a cosign-style signature under the tag `sha256-<hex>.sig`, and signatures on either.

The signatures are shaped as cosign writes them (a simple-signing payload as the layer, its signature in the
layer's annotation) but sign nothing: tests of carrying need the shape, not a valid signature. This module does
not use the `mirror` package: the content must not depend on the tool that reads it.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
SPDX_JSON = "application/spdx+json"
SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _json(body: object) -> bytes:
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()


@dataclass(frozen=True)
class Artifact:
    """A manifest and the blobs it names, ready to push."""

    manifest: bytes
    blobs: Mapping[str, bytes] = field(default_factory=dict)  # digest → bytes: its config and layers
    media_type: str = OCI_MANIFEST

    @property
    def digest(self) -> str:
        return _digest(self.manifest)

    @property
    def size(self) -> int:
        return len(self.manifest)

    @property
    def body(self) -> dict[str, Any]:
        return dict(json.loads(self.manifest))

    def descriptor(self) -> dict[str, Any]:
        """Its descriptor as the referrers API and the tag schema's index list it."""
        body = self.body
        descriptor: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        artifact_type = body.get("artifactType") or body["config"]["mediaType"]
        descriptor["artifactType"] = artifact_type
        if body.get("annotations"):
            descriptor["annotations"] = body["annotations"]
        return descriptor


def _blob(media_type: str, data: bytes, annotations: Mapping[str, str] | None = None) -> dict[str, Any]:
    descriptor: dict[str, Any] = {"mediaType": media_type, "digest": _digest(data), "size": len(data)}
    if annotations:
        descriptor["annotations"] = dict(annotations)
    return descriptor


def subject_descriptor(digest: str, size: int, media_type: str = OCI_MANIFEST) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": digest, "size": size}


def sbom(subject: Mapping[str, Any], name: str = "app", packages: Sequence[str] = ()) -> Artifact:
    """An SPDX SBOM attached to `subject` (a descriptor) as an OCI 1.1 artifact: empty config, one layer."""
    listed = [{"SPDXID": f"SPDXRef-Package-{i}", "name": package} for i, package in enumerate(packages)]
    document = _json({"spdxVersion": "SPDX-2.3", "SPDXID": "SPDXRef-DOCUMENT", "name": name, "packages": listed})
    empty = b"{}"
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": SPDX_JSON,
        "config": _blob(OCI_EMPTY, empty),
        "layers": [_blob(SPDX_JSON, document)],
        "subject": dict(subject),
        "annotations": {"org.opencontainers.image.created": "2024-01-01T00:00:00Z"},
    }
    return Artifact(_json(manifest), {_digest(empty): empty, _digest(document): document})


def cosign_signature(subject_digest: str, reference: str, signature: bytes = b"not a real signature") -> Artifact:
    """A cosign-style signature of `subject_digest`, as cosign pushes it under `sha256-<hex>.sig`: one layer, the
    simple-signing payload, with the (here meaningless) signature in its annotation."""
    payload = _json(
        {
            "critical": {
                "identity": {"docker-reference": reference},
                "image": {"docker-manifest-digest": subject_digest},
                "type": "cosign container image signature",
            },
            "optional": None,
        }
    )
    config = _json({"architecture": "", "os": "", "config": {}, "rootfs": {"type": "layers", "diff_ids": []}})
    annotations = {SIGNATURE_ANNOTATION: base64.b64encode(signature).decode()}
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": _blob(OCI_CONFIG, config),
        "layers": [_blob(SIMPLE_SIGNING, payload, annotations)],
    }
    return Artifact(_json(manifest), {_digest(config): config, _digest(payload): payload})


def tag_schema_index(artifacts: list[Artifact]) -> bytes:
    """The referrers tag schema's index (tag `sha256-<hex>` of the subject) listing `artifacts`."""
    return _json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [a.descriptor() for a in artifacts]})


def tag_schema_tag(digest: str) -> str:
    return digest.replace(":", "-", 1)


def cosign_tag(digest: str, suffix: str = ".sig") -> str:
    return tag_schema_tag(digest) + suffix


class Attacher:
    """Pushes artifacts to an anonymous plain-HTTP registry (the local upstream) over the distribution API."""

    def __init__(self, registry: str) -> None:
        self._http = httpx.Client(base_url=f"http://{registry}", timeout=60)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Attacher:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _check(self, response: httpx.Response, *expected: int) -> httpx.Response:
        if response.status_code not in expected:
            request = response.request
            raise RuntimeError(f"{request.method} {request.url}: {response.status_code} {response.text}")
        return response

    def push(self, repository: str, artifact: Artifact, reference: str | None = None) -> None:
        """Its blobs, then the manifest under `reference` (a tag), else by digest."""
        for digest, data in artifact.blobs.items():
            started = self._check(self._http.post(f"/v2/{repository}/blobs/uploads/"), 202)
            location = httpx.URL(started.headers["location"])
            self._check(self._http.put(location.copy_merge_params({"digest": digest}), content=data), 201)
        headers = {"Content-Type": artifact.media_type}
        url = f"/v2/{repository}/manifests/{reference or artifact.digest}"
        self._check(self._http.put(url, content=artifact.manifest, headers=headers), 201)

    def attach(self, repository: str, artifact: Artifact) -> None:
        """An artifact with a `subject`, pushed by digest and merged into the subject's tag schema index, as an
        OCI 1.1 client does against a registry without the referrers API."""
        self.push(repository, artifact)
        tag = tag_schema_tag(artifact.body["subject"]["digest"])
        answer = self._http.get(f"/v2/{repository}/manifests/{tag}", headers={"Accept": OCI_INDEX})
        listed = json.loads(answer.content)["manifests"] if answer.status_code == 200 else []
        listed = [d for d in listed if d["digest"] != artifact.digest] + [artifact.descriptor()]
        index = _json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": listed})
        self._check(
            self._http.put(f"/v2/{repository}/manifests/{tag}", content=index, headers={"Content-Type": OCI_INDEX}),
            201,
        )

    def sign(self, repository: str, subject_digest: str, reference: str, signature: bytes = b"sig") -> Artifact:
        """A cosign-style signature of `subject_digest`, pushed under its `.sig` tag (replacing an earlier one)."""
        artifact = cosign_signature(subject_digest, reference, signature)
        self.push(repository, artifact, cosign_tag(subject_digest))
        return artifact
