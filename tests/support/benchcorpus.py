"""The bench's corpus: images pushed straight to the upstream registry over its HTTP API, fast and fresh; and
hostile inputs (forged and stuffed bundles, an alias-bomb fleet) written straight to disk.

Every layer is random, so every run's blobs are new to every tool: skopeo's blob-info cache (and any registry)
would otherwise reuse or mount blobs seen in an earlier run instead of copying them, and win by not working.
Layers are uncompressed tars holding one random file, so they are real layers any tool can unpack. The shared
base layer is uploaded once and mounted into every other repository, as a registry holding many images from
one base would be. This module does not use the `mirror` package: the corpus must not depend on the tool
being measured.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import json
import os
import tarfile
import uuid
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.support.attach import Artifact, Attacher, sbom, subject_descriptor
from tests.support.cosign import PrivateKey, cosign_tag, signature_manifest, signed_layer

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def tar_layer(size: int, name: str = "random.bin") -> bytes:
    """An uncompressed tar holding one file of `size` random bytes (held in memory: corpus layers are small)."""
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = 0
    padding = -size % tarfile.BLOCKSIZE
    body = info.tobuf(format=tarfile.USTAR_FORMAT) + os.urandom(size) + b"\0" * (padding + 2 * tarfile.BLOCKSIZE)
    return body + b"\0" * (-len(body) % tarfile.RECORDSIZE)


@dataclass(frozen=True)
class Pushed:
    reference: str  # host:port/repository:tag
    digest: str  # manifest digest
    size: int  # bytes of every blob and the manifest
    manifest_size: int = 0  # bytes of the manifest alone, for descriptors that name it (a subject)

    @property
    def repository(self) -> str:
        """The repository path, without host and tag."""
        return self.reference.split("/", 1)[1].rsplit(":", 1)[0]


class Pusher:
    """A minimal distribution client for an anonymous plain-HTTP registry: monolithic uploads, mounts, PUTs."""

    def __init__(self, registry: str, connections: int = 8) -> None:
        self.registry = registry
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        self._http = httpx.Client(base_url=f"http://{registry}", timeout=120, limits=limits)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Pusher:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _check(self, response: httpx.Response, expected: int, what: str) -> httpx.Response:
        if response.status_code != expected:
            raise RuntimeError(f"bench corpus: {what} answered {response.status_code}: {response.text[:300]}")
        return response

    def upload(self, repository: str, data: bytes, *, mount_from: str | None = None) -> dict[str, object]:
        digest = _digest(data)
        descriptor = {"mediaType": OCI_LAYER_TAR, "digest": digest, "size": len(data)}
        params = {"mount": digest, "from": mount_from} if mount_from else None
        started = self._http.post(f"/v2/{repository}/blobs/uploads/", params=params)
        if started.status_code == 201:
            return descriptor
        location = self._check(started, 202, f"upload to {repository}").headers["location"]
        url = httpx.URL(self._http.base_url).join(location).copy_merge_params({"digest": digest})
        self._check(
            self._http.put(url, content=data, headers={"Content-Type": "application/octet-stream"}),
            201,
            f"upload of {digest} to {repository}",
        )
        return descriptor

    def image(
        self, repository: str, tag: str, layers: Iterable[bytes], *, base: tuple[str, bytes] | None = None
    ) -> Pushed:
        """Push an image of `layers` (after the shared `base`, mounted from the repository that holds it).

        `layers` may be a generator: each layer is uploaded before the next is made, so memory holds one.
        """
        descriptors = []
        if base is not None:
            holder, base_layer = base
            descriptors.append(self.upload(repository, base_layer, mount_from=holder))
        descriptors += [self.upload(repository, layer) for layer in layers]
        config = json.dumps(
            {
                "architecture": "amd64",
                "os": "linux",
                "config": {"Labels": {"bench": repository}},
                "rootfs": {"type": "layers", "diff_ids": [d["digest"] for d in descriptors]},
            }
        ).encode()
        config_descriptor = {**self.upload(repository, config), "mediaType": OCI_CONFIG}
        manifest = json.dumps(
            {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config_descriptor, "layers": descriptors}
        ).encode()
        self._check(
            self._http.put(
                f"/v2/{repository}/manifests/{tag}", content=manifest, headers={"Content-Type": OCI_MANIFEST}
            ),
            201,
            f"manifest {repository}:{tag}",
        )
        size = sum(int(d["size"]) for d in descriptors) + len(config) + len(manifest)  # type: ignore[call-overload]
        return Pushed(f"{self.registry}/{repository}:{tag}", _digest(manifest), size, len(manifest))


def push_family(
    pusher: Pusher, prefix: str, count: int, base_bytes: int, unique_bytes: int, *, workers: int = 4
) -> list[Pushed]:
    """`count` images PREFIX/imgN:1 sharing one random base layer, each with its own random layer."""
    base = tar_layer(base_bytes, "base.bin") if base_bytes else b""
    # The first image uploads the base itself; the others mount it from there.
    first = pusher.image(f"{prefix}/img0", "1", [layer for layer in (base, tar_layer(unique_bytes)) if layer])

    def one(index: int) -> Pushed:
        shared = (f"{prefix}/img0", base) if base_bytes else None
        return pusher.image(f"{prefix}/img{index}", "1", [tar_layer(unique_bytes)], base=shared)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return [first, *pool.map(one, range(1, count))]


def attach_signature_and_sbom(registry: str, pushed: list[Pushed], key: PrivateKey, *, workers: int = 4) -> int:
    """Sign each image as `cosign sign --key` does (a `.sig` tag) and attach an SPDX SBOM to it as an OCI 1.1
    client does where the registry has no referrers API (listed in the `sha256-<hex>` tag schema index); the
    count of attached manifests pushed."""

    def one(image: Pushed) -> None:
        name = image.reference.rsplit(":", 1)[0]
        signature = signature_manifest([signed_layer(key, name, image.digest)])
        document = sbom(subject_descriptor(image.digest, image.manifest_size), image.repository)
        with Attacher(registry) as attacher:
            attacher.push(image.repository, Artifact(signature.raw, signature.blobs), cosign_tag(image.digest))
            attacher.attach(image.repository, document)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(one, pushed))
    return 2 * len(pushed)


# --- hostile input: bundles and fleets built to make a verifier or collector work, written without mirror ------


@dataclass(frozen=True)
class SigningKey:
    """An ECDSA P-256 key as mirror uses them, made here so the corpus does not depend on the tool measured."""

    private: ec.EllipticCurvePrivateKey

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(ec.generate_private_key(ec.SECP256R1()))

    @property
    def public_der(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def write_public(self, path: Path) -> Path:
        pem = self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        path.write_bytes(pem)
        return path

    def envelope(self, payload: bytes) -> bytes:
        """A DSSE envelope over `payload` (PAE, in-toto payload type), as mirror's collector writes one."""
        payload_type = b"application/vnd.in-toto+json"
        pae = b"DSSEv1 %d %b %d %b" % (len(payload_type), payload_type, len(payload), payload)
        signature = self.private.sign(pae, ec.ECDSA(hashes.SHA256()))
        body = {
            "payload": base64.b64encode(payload).decode(),
            "payloadType": payload_type.decode(),
            "signatures": [
                {"keyid": hashlib.sha256(self.public_der).hexdigest(), "sig": base64.b64encode(signature).decode()}
            ],
        }
        return json.dumps(body, indent=1).encode() + b"\n"


def _collection_statement(inventory: bytes, bundle_id: str) -> bytes:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    body = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "inventory.json", "digest": {"sha256": hashlib.sha256(inventory).hexdigest()}}],
        "predicateType": "urn:mirror:predicate:collection:v1",
        "predicate": {
            "bundleId": bundle_id,
            "collector": "bench",
            "sequence": 1,
            "created": f"{now:%Y-%m-%dT%H:%M:%SZ}",
            "expires": f"{now + dt.timedelta(days=1):%Y-%m-%dT%H:%M:%SZ}",
            "base": None,
        },
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def write_hostile_bundle(root: Path, key: SigningKey, *, sparse_layer: int = 0) -> Path:
    """A directory bundle of one image, signed by `key` as collector.

    `sparse_layer`: its layer is a sparse file of that many bytes (no disk used) listed under a made-up digest,
    so hashing it is all a verifier could do with it.
    """
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    files: dict[str, tuple[str, int]] = {}

    def blob(data: bytes) -> dict[str, object]:
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        files[f"blobs/sha256/{digest}"] = (digest, len(data))
        return {"digest": f"sha256:{digest}", "size": len(data)}

    if sparse_layer:
        digest = hashlib.sha256(b"a layer nobody hashed").hexdigest()
        with open(blobs / digest, "wb") as handle:
            handle.truncate(sparse_layer)
        files[f"blobs/sha256/{digest}"] = (digest, sparse_layer)
        layer: dict[str, object] = {"digest": f"sha256:{digest}", "size": sparse_layer}
    else:
        layer = blob(tar_layer(1024))
    config = blob(json.dumps({"architecture": "amd64", "os": "linux"}).encode())
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, **config},
            "layers": [{"mediaType": OCI_LAYER_TAR, **layer}],
        }
    ).encode()
    top = blob(manifest)
    for name, data in {
        "oci-layout": b'{"imageLayoutVersion": "1.0.0"}\n',
        "index.json": json.dumps({"schemaVersion": 2, "manifests": [{"mediaType": OCI_MANIFEST, **top}]}).encode(),
    }.items():
        (root / name).write_bytes(data)
        files[name] = (hashlib.sha256(data).hexdigest(), len(data))
    bundle_id = f"hostile-{uuid.uuid4().hex[:8]}"
    inventory = {
        "apiVersion": "mirror/v1",
        "kind": "Inventory",
        "bundleId": bundle_id,
        "created": f"{dt.datetime.now(dt.UTC):%Y-%m-%dT%H:%M:%SZ}",
        "tool": "bench",
        "artifacts": [
            {"kind": "image", "source": "bench.example/hostile:1", "mediaType": OCI_MANIFEST, "via": "listed", **top}
        ],
        "files": [{"path": p, "sha256": d, "size": s} for p, (d, s) in sorted(files.items())],
    }
    raw = json.dumps(inventory, indent=1, sort_keys=True).encode() + b"\n"
    (root / "inventory.json").write_bytes(raw)
    envelope = key.envelope(_collection_statement(raw, bundle_id))
    (root / "signatures").mkdir()
    (root / "signatures" / f"{hashlib.sha256(envelope).hexdigest()}.json").write_bytes(envelope)
    return root


def write_stuffed_tar(bundle: Path, out: Path, unlisted_blobs: int) -> Path:
    """The directory bundle as a plain ustar tar (inventory and signatures first, as collect writes it), followed
    by `unlisted_blobs` one-byte members its inventory does not list. One file: quick to write at any count."""
    first = [bundle / "inventory.json", *sorted((bundle / "signatures").iterdir())]
    rest = sorted(p for p in bundle.rglob("*") if p.is_file() and p not in first)
    with tarfile.open(out, "w", format=tarfile.USTAR_FORMAT) as tar:
        for path in [*first, *rest]:
            tar.add(path, arcname=str(path.relative_to(bundle)), recursive=False)
        info = tarfile.TarInfo()
        info.size, info.mtime, info.mode = 1, 0, 0o644
        for i in range(unlisted_blobs):
            info.name = f"blobs/sha256/{i:064x}"
            tar.addfile(info, io.BytesIO(b"x"))
    return out


def write_alias_bomb_fleet(directory: Path, levels: int = 10) -> Path:
    """A MirrorSet whose local Flux path holds a ConfigMap of about 500 bytes that expands to 9**levels strings."""
    fleet = directory / "fleet"
    fleet.mkdir(parents=True)
    lines = ["apiVersion: v1", "kind: ConfigMap", "metadata: {name: bomb, namespace: default}", "data:"]
    lines.append('  l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]')
    lines += [f"  l{i}: &l{i} [{','.join([f'*l{i - 1}'] * 9)}]" for i in range(1, levels)]
    (fleet / "bomb.yaml").write_text("\n".join(lines) + "\n")
    manifest = directory / "bomb.yaml"
    manifest.write_text(
        "apiVersion: mirror/v1\nkind: MirrorSet\nmetadata: {name: bomb}\nspec:\n  flux:\n    - path: ./fleet\n"
    )
    return manifest
