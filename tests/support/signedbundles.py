"""Small signed bundles built in-process, without a network: for tests of what commands say about a bundle.

`make_trust(dir)` writes a collector key, an officer key and a 1-of-1 trust policy; `SmallBundle` writes a
directory bundle of tiny images (and charts from an HTTP repository) whose inventory, ids and sources the test
chooses freely, hostile ones included; `sign` adds the collector's envelope and, unless told not to, the
officer's approval; `as_tar` packs a directory bundle into a plain ustar file with extra members if asked.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mirror.bundle.inventory import ArtifactRecord, FileRecord, Inventory, blob_path
from mirror.bundle.signatures import add_envelope
from mirror.flux.blob import FLUX_OBJECTS_MEDIA_TYPE, objects_blob
from mirror.flux.objects import object_from_document
from mirror.helm.package import HELM_CHART_LAYER, HELM_CONFIG
from mirror.oci import mediatypes as mt
from mirror.oci.digest import sha256_digest
from mirror.trust.keys import Signer, generate, load_signer
from mirror.trust.sign import sign_approval, sign_collection

OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"


@dataclass(frozen=True)
class Trust:
    collector: Signer
    officer: Signer
    officer_key: Path  # the officer's private key file, for `mirror approve --key`
    policy: Path


def make_trust(directory: Path, *, approvals: int = 1, allowed_sources: list[str] | None = None) -> Trust:
    directory.mkdir(parents=True, exist_ok=True)
    keys = {}
    for name in ("collector", "officer"):
        key_path, _, _ = generate(str(directory / name), env={})
        keys[name] = key_path
    policy = {
        "apiVersion": "mirror/v1",
        "kind": "TrustPolicy",
        "collectors": {"keys": ["collector.pub"], "threshold": 1},
        "approvers": {"keys": ["officer.pub"], "threshold": approvals},
        "stateFile": "state.json",
    }
    if allowed_sources is not None:
        policy["allowedSources"] = allowed_sources
    policy_path = directory / "policy.yaml"
    policy_path.write_text(json.dumps(policy))  # JSON is YAML
    return Trust(
        load_signer(keys["collector"], env={}), load_signer(keys["officer"], env={}), keys["officer"], policy_path
    )


@dataclass
class SmallBundle:
    """A directory bundle written file by file; `finish` writes index.json and the inventory listing them."""

    root: Path
    bundle_id: str = "b-small"
    files: dict[str, FileRecord] = field(default_factory=dict)
    artifacts: list[ArtifactRecord] = field(default_factory=list)
    index: list[dict[str, object]] = field(default_factory=list)

    def __post_init__(self) -> None:
        (self.root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        self._file("oci-layout", b'{"imageLayoutVersion": "1.0.0"}\n')

    def _file(self, path: str, data: bytes) -> None:
        (self.root / path).write_bytes(data)
        self.files[path] = FileRecord(path, hashlib.sha256(data).hexdigest(), len(data))

    def blob(self, data: bytes) -> str:
        digest = sha256_digest(data)
        self._file(blob_path(digest), data)
        return digest

    def _manifest(self, config: bytes, config_type: str, layer: bytes, layer_type: str) -> tuple[str, int]:
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": mt.OCI_MANIFEST,
                "config": {"mediaType": config_type, "digest": self.blob(config), "size": len(config)},
                "layers": [{"mediaType": layer_type, "digest": self.blob(layer), "size": len(layer)}],
            }
        ).encode()
        digest = self.blob(manifest)
        self.index.append({"mediaType": mt.OCI_MANIFEST, "digest": digest, "size": len(manifest)})
        return digest, len(manifest)

    def image(self, source: str, *, content: str | None = None, layer: bytes | None = None, **extra: object) -> str:
        """An image of one layer; its digest follows `content` (default: the source), which the test may vary to
        move a tag from one night to the next, or the `layer` bytes given. Returns the digest."""
        note = source if content is None else content
        config = json.dumps({"os": "linux", "architecture": "amd64", "note": note}).encode()
        layer = layer if layer is not None else f"layer of {note}".encode()
        digest, size = self._manifest(config, OCI_CONFIG, layer, OCI_LAYER)
        self.artifacts.append(ArtifactRecord("image", source, digest, mt.OCI_MANIFEST, size, dict(extra)))
        return digest

    def chart(
        self, name: str, version: str, repo: str = "https://charts.example", archive: bytes = b"not really a chart"
    ) -> None:
        config = json.dumps({"name": name, "version": version}).encode()
        digest, size = self._manifest(config, HELM_CONFIG, archive, HELM_CHART_LAYER)
        extra = {"chart": name, "version": version, "repo": repo}
        self.artifacts.append(
            ArtifactRecord("chart", f"{repo}/{name}-{version}.tgz", digest, mt.OCI_MANIFEST, size, extra)
        )

    def flux(self, source: str, path: str, documents: list[dict[str, Any]]) -> None:
        """A Flux fleet: its objects blob, as collect writes it."""
        objects = [o for i, d in enumerate(documents) if (o := object_from_document(d, "fleet.yaml", i)) is not None]
        raw = objects_blob(objects, max_bytes=1 << 20, where=source)
        extra = {"path": path, "git": None, "objects": len(objects)}
        self.artifacts.append(ArtifactRecord("flux", source, self.blob(raw), FLUX_OBJECTS_MEDIA_TYPE, len(raw), extra))

    def finish(self, **fields: Any) -> bytes:
        """Write index.json and inventory.json (with any other Inventory `fields`, such as hosts); the inventory's
        bytes, which a collector signs."""
        self._file("index.json", json.dumps({"schemaVersion": 2, "manifests": self.index}).encode())
        inventory = Inventory(
            self.bundle_id, "2026-01-01T00:00:00Z", "test", tuple(self.artifacts), tuple(self.files.values()), **fields
        )
        raw = inventory.to_bytes()
        (self.root / "inventory.json").write_bytes(raw)
        return raw


def sign(bundle: Path, trust: Trust, *, approve: bool = True, bundle_id: str | None = None, sequence: int = 1) -> None:
    """Add the collector's envelope and the officer's approval; `bundle_id` names another bundle in both."""
    raw = (bundle / "inventory.json").read_bytes()
    named = bundle_id if bundle_id is not None else json.loads(raw)["bundleId"]
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    collection = sign_collection(
        trust.collector,
        raw,
        bundle_id=named,
        collector="collector",
        sequence=sequence,
        created=now,
        valid_for=dt.timedelta(days=30),
    )
    add_envelope(bundle, collection)
    if approve:
        sha = hashlib.sha256(raw).hexdigest()
        add_envelope(bundle, sign_approval(trust.officer, sha, bundle_id=named, comment="ok", now=now))


def as_tar(bundle: Path, path: Path, extra: dict[str, bytes] | None = None) -> Path:
    """The directory bundle as a plain ustar file, with `extra` members (any names) appended."""
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as archive:
        members = sorted(p for p in bundle.rglob("*") if p.is_file())
        for file in members:
            _add(archive, file.relative_to(bundle).as_posix(), file.read_bytes())
        for name, data in (extra or {}).items():
            _add(archive, name, data)
    return path


def _add(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), 0, 0o644
    archive.addfile(info, io.BytesIO(data))
