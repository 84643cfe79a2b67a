"""Small signed bundles written by hand, without a registry: for unit tests of the verification order and bounds.

A crafted bundle is a real directory bundle (OCI layout, inventory, envelopes) holding one image whose layer is
either a few real bytes or a sparse file of any size, so a test can tell whether verification read it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from mirror.bundle.inventory import ArtifactRecord, FileRecord, Inventory, blob_path
from mirror.bundle.signatures import add_envelope
from mirror.oci import mediatypes as mt
from mirror.trust.keys import ECDSA_P256, PublicKey, Signer
from mirror.trust.sign import sign_collection

SOURCE = "registry.example/team/app:1.0"
LAYER_MEDIA_TYPE = "application/vnd.oci.image.layer.v1.tar"


def p256_signer(name: str) -> Signer:
    private = ec.generate_private_key(ec.SECP256R1())
    der = private.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return Signer(private, PublicKey(der, ECDSA_P256, name))


def write_public_key(signer: Signer, path: Path) -> Path:
    pem = signer.private.public_key().public_bytes(  # type: ignore[union-attr]
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    path.write_bytes(pem)
    return path


def write_policy(directory: Path, collector: Signer) -> Path:
    """A policy trusting `collector` alone, no approvals required, its state file beside it."""
    key = write_public_key(collector, directory / "collector.pub")
    policy = directory / "policy.yaml"
    policy.write_text(
        "apiVersion: mirror/v1\nkind: TrustPolicy\n"
        f"collectors: {{keys: ['{key}'], threshold: 1}}\n"
        f"stateFile: '{directory / 'state.json'}'\n"
    )
    return policy


@dataclass(frozen=True)
class Crafted:
    root: Path
    layer: Path  # the layer blob's file
    inventory: bytes


def _blob(root: Path, data: bytes, files: dict[str, FileRecord]) -> dict[str, object]:
    digest = hashlib.sha256(data).hexdigest()
    path = blob_path(f"sha256:{digest}")
    (root / path).write_bytes(data)
    files[path] = FileRecord(path, digest, len(data))
    return {"digest": f"sha256:{digest}", "size": len(data)}


def craft_bundle(root: Path, signer: Signer, *, sparse_layer_bytes: int = 0, source: str = SOURCE) -> Crafted:
    """One image bundle (`source`) signed by `signer` as collector (sequence 1, valid for a day).

    With `sparse_layer_bytes`, the layer is a sparse file of that size (zeros, no disk used), listed in the
    inventory under a made-up digest: computing the real one is the work a forged bundle must not cause.
    """
    (root / "blobs" / "sha256").mkdir(parents=True)
    files: dict[str, FileRecord] = {}
    if sparse_layer_bytes:
        layer_digest = hashlib.sha256(b"never hashed").hexdigest()
        layer_path = blob_path(f"sha256:{layer_digest}")
        with open(root / layer_path, "wb") as handle:
            handle.truncate(sparse_layer_bytes)
        files[layer_path] = FileRecord(layer_path, layer_digest, sparse_layer_bytes)
        layer = {"digest": f"sha256:{layer_digest}", "size": sparse_layer_bytes}
    else:
        layer = _blob(root, b"layer bytes " * 100, files)
    config = _blob(root, json.dumps({"os": "linux", "architecture": "amd64"}).encode(), files)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": mt.OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config},
            "layers": [{"mediaType": LAYER_MEDIA_TYPE, **layer}],
        }
    ).encode()
    top = _blob(root, manifest, files)
    descriptor = {"mediaType": mt.OCI_MANIFEST, **top, "annotations": {"org.opencontainers.image.ref.name": "1.0"}}
    for name, data in {
        "oci-layout": b'{"imageLayoutVersion": "1.0.0"}\n',
        "index.json": json.dumps({"schemaVersion": 2, "manifests": [descriptor]}).encode(),
    }.items():
        (root / name).write_bytes(data)
        files[name] = FileRecord(name, hashlib.sha256(data).hexdigest(), len(data))
    artifact = ArtifactRecord("image", source, str(top["digest"]), mt.OCI_MANIFEST, int(top["size"]), {"via": "listed"})  # type: ignore[call-overload]
    created = dt.datetime.now(dt.UTC).replace(microsecond=0)
    inventory = Inventory(
        f"crafted-{root.name}", f"{created:%Y-%m-%dT%H:%M:%SZ}", "test", (artifact,), tuple(files.values())
    )
    raw = inventory.to_bytes()
    (root / "inventory.json").write_bytes(raw)
    envelope = sign_collection(
        signer,
        raw,
        bundle_id=inventory.bundle_id,
        collector="collector",
        sequence=1,
        created=created,
        valid_for=dt.timedelta(days=1),
    )
    add_envelope(root, envelope)
    return Crafted(root, root / blob_path(str(layer["digest"])), raw)


def sparse_is_sparse(path: Path) -> bool:
    """Whether the file uses (much) less disk than its size: the test would otherwise fill the disk."""
    info = os.stat(path)
    return info.st_blocks * 512 < info.st_size // 2
