"""An upstream on the registry simulator whose images have things attached (SBOMs, cosign-style signatures), and
a collect from it: the shared set-up of the unit tests of carrying attached manifests."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mirror.bundle.inventory import ArtifactRecord, parse_inventory
from mirror.collector.run import CollectResult, collect
from mirror.limits import DEFAULT_LIMITS, Limits
from mirror.oci import mediatypes as mt
from tests.support.attach import (
    Artifact,
    cosign_signature,
    cosign_tag,
    sbom,
    subject_descriptor,
    tag_schema_index,
    tag_schema_tag,
)
from tests.support.mirrorsets import write_mirrorset
from tests.unit.registry_sim import RegistrySim

UPSTREAM = "upstream.test"


def _json(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


class Upstream:
    """A simulated upstream registry; by default without the referrers API, as distribution 2.8."""

    def __init__(self, *, referrers: bool = False) -> None:
        self.sim = RegistrySim(UPSTREAM)
        self.sim.referrers = referrers

    def image(self, repository: str, tag: str, salt: str = "") -> tuple[str, int]:
        """A single-platform image tagged `tag`; its digest and size."""
        salt = salt or f"{repository}:{tag}"
        config = _json({"architecture": "amd64", "os": "linux", "salt": salt, "rootfs": {"type": "layers"}})
        layer = f"layer of {salt}".encode() * 50
        manifest = _json(
            {
                "schemaVersion": 2,
                "mediaType": mt.OCI_MANIFEST,
                "config": {
                    "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": self.sim.add_blob(repository, config),
                    "size": len(config),
                },
                "layers": [
                    {
                        "mediaType": "application/vnd.oci.image.layer.v1.tar",
                        "digest": self.sim.add_blob(repository, layer),
                        "size": len(layer),
                    }
                ],
            }
        )
        return self.sim.add_manifest(repository, manifest, tag=tag), len(manifest)

    def index(self, repository: str, tag: str, architectures: Sequence[str] = ("amd64", "arm64")) -> str:
        """A multi-platform index of linux images; its digest."""
        entries = []
        for arch in architectures:
            digest, size = self.image(repository, f"{tag}-{arch}", salt=f"{repository}:{tag}:{arch}")
            del self.sim.manifests[repository][f"{tag}-{arch}"]
            entries.append(
                {
                    "mediaType": mt.OCI_MANIFEST,
                    "digest": digest,
                    "size": size,
                    "platform": {"os": "linux", "architecture": arch},
                }
            )
        index = _json({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": entries})
        return self.sim.add_manifest(repository, index, mt.OCI_INDEX, tag=tag)

    def size(self, repository: str, digest: str) -> int:
        return len(self.sim.manifests[repository][digest][0])

    def attach_sbom(self, repository: str, subject: str, name: str = "app") -> Artifact:
        """An SBOM with `subject`, listed in the subject's tag schema index (merged with what it lists)."""
        artifact = sbom(subject_descriptor(subject, self.size(repository, subject)), name)
        self.sim.add_artifact(repository, artifact.manifest, artifact.blobs)
        self._list_in_tag_schema(repository, subject, artifact)
        return artifact

    def _list_in_tag_schema(self, repository: str, subject: str, artifact: Artifact) -> None:
        tag = tag_schema_tag(subject)
        stored = self.sim.manifests[repository].get(tag)
        listed = json.loads(stored[0])["manifests"] if stored else []
        index = json.loads(tag_schema_index([artifact]))
        index["manifests"] = listed + index["manifests"]
        self.sim.add_manifest(repository, _json(index), mt.OCI_INDEX, tag=tag)

    def sign(self, repository: str, subject: str, signature: bytes = b"sig") -> Artifact:
        """A cosign-style signature of `subject` under its `.sig` tag."""
        artifact = cosign_signature(subject, f"{UPSTREAM}/{repository}", signature)
        self.sim.add_artifact(repository, artifact.manifest, artifact.blobs, tag=cosign_tag(subject))
        return artifact


def collect_from(
    upstream: Upstream,
    tmp_path: Path,
    images: list[Any],
    *,
    name: str = "bundle",
    limits: Limits = DEFAULT_LIMITS,
    since: Path | None = None,
    platforms: Any = None,
    max_bundle_size: int | None = None,
    attached: bool | None = None,
) -> CollectResult:
    mirrorset = write_mirrorset(tmp_path / f"{name}.yaml", images, platforms=platforms, attached=attached)
    transport = upstream.sim.transport()
    return collect(
        [mirrorset], tmp_path / name, transport=transport, limits=limits, since=since, max_bundle_size=max_bundle_size
    )


def attached_records(bundle: Path) -> list[ArtifactRecord]:
    inventory = parse_inventory((bundle / "inventory.json").read_bytes())
    return [a for a in inventory.artifacts if a.kind == "attached"]


def carried(bundle: Path, digest: str) -> bool:
    return (bundle / "blobs" / "sha256" / digest.removeprefix("sha256:")).is_file()
