"""A small, deterministic OCI image writer for tests.

Builds real images (gzip-compressed tar layers, an image config with ``rootfs.diff_ids`` and labels,
OCI image manifests and indexes with ``platform`` on each descriptor), writes them into an OCI image
layout directory, and pushes them to a registry with skopeo.

The same seed always gives byte-identical layers, configs and manifests, hence the same digests.
This module deliberately does not depend on the ``mirror`` package.

Typical use::

    base = Layer.from_seed("base")
    img = Image([base, Layer.from_seed("app")], platform="linux/arm64/v8", labels={"fixture": "app"})
    layout = Layout(tmp_path / "layout")
    digest = layout.add("app-1.0", img)
    push(tmp_path / "layout", "app-1.0", f"{services.upstream}/fixtures/app:1.0")
    assert digest_of(f"{services.upstream}/fixtures/app:1.0") == digest
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import subprocess
import tarfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"

REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name"

#: Fixed timestamp used for tar mtimes and the config's ``created`` field (2024-01-01T00:00:00Z).
FIXED_EPOCH = 1704067200
FIXED_CREATED = "2024-01-01T00:00:00Z"

_CHUNK = 1024 * 1024


def sha256_digest(data: bytes) -> str:
    """``sha256:<hex>`` of ``data``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical_json(obj: Any) -> bytes:
    """Compact, stable JSON encoding used for every manifest/config this module writes."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def _seeded_bytes(seed: str, size: int) -> bytes:
    """``size`` pseudo-random bytes derived only from ``seed`` (sha256 in counter mode)."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{seed}\x00{counter}".encode()).digest()
        counter += 1
    return bytes(out[:size])


def _slug(seed: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", seed).strip("._-") or "layer"


def _tarinfo(name: str, *, size: int = 0, directory: bool = False) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE if directory else tarfile.REGTYPE
    info.mode = 0o755 if directory else 0o644
    info.size = 0 if directory else size
    info.mtime = FIXED_EPOCH
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def deterministic_tar(files: Mapping[str, bytes]) -> bytes:
    """An uncompressed tar of ``files`` (path -> content) with parent directories, sorted entries,
    fixed mtimes and uid/gid 0. Same input, same bytes."""
    dirs: set[str] = set()
    for path in files:
        parts = path.strip("/").split("/")[:-1]
        for i in range(1, len(parts) + 1):
            dirs.add("/".join(parts[:i]))
    entries: list[tuple[str, bytes | None]] = [(d, None) for d in dirs]
    entries += [(p.strip("/"), data) for p, data in files.items()]
    entries.sort(key=lambda e: e[0])
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, data in entries:
            if data is None:
                tar.addfile(_tarinfo(name + "/", directory=True))
            else:
                tar.addfile(_tarinfo(name, size=len(data)), io.BytesIO(data))
    return buf.getvalue()


def parse_platform(platform: str) -> dict[str, str]:
    """``"linux/arm64/v8"`` -> ``{"architecture": "arm64", "os": "linux", "variant": "v8"}``."""
    parts = platform.split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise ValueError(f"platform must be os/arch[/variant], got {platform!r}")
    result = {"architecture": parts[1], "os": parts[0]}
    if len(parts) == 3:
        result["variant"] = parts[2]
    return result


@dataclass(frozen=True)
class Layer:
    """One layer. ``data`` is the blob as stored (compressed or not); ``diff_id`` is the digest of the
    uncompressed tar. ``data`` is ``None`` for a layer already written to a layout (big layers)."""

    media_type: str
    digest: str
    size: int
    diff_id: str
    data: bytes | None = field(default=None, repr=False)

    @classmethod
    def from_files(cls, files: Mapping[str, bytes], *, compress: bool = True) -> Layer:
        tar = deterministic_tar(files)
        if not compress:
            return cls(OCI_LAYER_TAR, sha256_digest(tar), len(tar), sha256_digest(tar), tar)
        blob = gzip.compress(tar, compresslevel=6, mtime=0)
        return cls(OCI_LAYER_GZIP, sha256_digest(blob), len(blob), sha256_digest(tar), blob)

    @classmethod
    def from_seed(cls, seed: str, files: int = 3, file_size: int = 2048) -> Layer:
        """A gzip layer holding ``files`` files of ``file_size`` bytes under ``layers/<seed>/``."""
        slug = _slug(seed)
        contents = {f"layers/{slug}/file-{i}.bin": _seeded_bytes(f"{seed}/{i}", file_size) for i in range(files)}
        return cls.from_files(contents)

    def descriptor(self) -> dict[str, Any]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size}


@dataclass(frozen=True)
class Blob:
    """A serialised JSON document (config, manifest or index) with its digest."""

    media_type: str
    data: bytes = field(repr=False)

    @property
    def digest(self) -> str:
        return sha256_digest(self.data)

    @property
    def size(self) -> int:
        return len(self.data)

    def descriptor(self) -> dict[str, Any]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size}


class Image:
    """A single-platform OCI image: config + manifest over ``layers``."""

    def __init__(
        self,
        layers: Sequence[Layer],
        platform: str = "linux/amd64",
        labels: Mapping[str, str] | None = None,
        annotations: Mapping[str, str] | None = None,
    ) -> None:
        self.layers = list(layers)
        self.platform = platform
        self.labels = dict(labels or {})
        self.annotations = dict(annotations or {})
        plat = parse_platform(platform)
        config: dict[str, Any] = {"created": FIXED_CREATED, **plat}
        config["config"] = {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Labels": self.labels,
        }
        config["rootfs"] = {"type": "layers", "diff_ids": [layer.diff_id for layer in self.layers]}
        config["history"] = [
            {"created": FIXED_CREATED, "created_by": f"tests.support.images layer {i}"} for i in range(len(self.layers))
        ]
        self.config = Blob(OCI_CONFIG, canonical_json(config))
        manifest: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": self.config.descriptor(),
            "layers": [layer.descriptor() for layer in self.layers],
        }
        if self.annotations:
            manifest["annotations"] = self.annotations
        self.manifest = Blob(OCI_MANIFEST, canonical_json(manifest))

    @property
    def digest(self) -> str:
        return self.manifest.digest

    @property
    def media_type(self) -> str:
        return OCI_MANIFEST

    def descriptor(self, *, with_platform: bool = False) -> dict[str, Any]:
        desc = self.manifest.descriptor()
        if with_platform:
            desc["platform"] = parse_platform(self.platform)
        return desc

    def blobs(self) -> Iterator[tuple[str, bytes | None]]:
        """(digest, data) for every blob of the image, manifest last."""
        for layer in self.layers:
            yield layer.digest, layer.data
        yield self.config.digest, self.config.data
        yield self.manifest.digest, self.manifest.data


class Index:
    """An OCI image index over single-platform images (each descriptor carries ``platform``)."""

    def __init__(self, images: Sequence[Image], annotations: Mapping[str, str] | None = None) -> None:
        self.images = list(images)
        index: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [img.descriptor(with_platform=True) for img in self.images],
        }
        if annotations:
            index["annotations"] = dict(annotations)
        self.manifest = Blob(OCI_INDEX, canonical_json(index))

    @property
    def digest(self) -> str:
        return self.manifest.digest

    @property
    def media_type(self) -> str:
        return OCI_INDEX

    def descriptor(self) -> dict[str, Any]:
        return self.manifest.descriptor()

    def platforms(self) -> dict[str, str]:
        """platform string -> child manifest digest."""
        return {img.platform: img.digest for img in self.images}

    def blobs(self) -> Iterator[tuple[str, bytes | None]]:
        """(digest, data) for every blob, children before the index itself."""
        for img in self.images:
            yield from img.blobs()
        yield self.manifest.digest, self.manifest.data


class Layout:
    """An OCI image layout directory (created on first use)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.blobs_dir = self.path / "blobs" / "sha256"
        self.blobs_dir.mkdir(parents=True, exist_ok=True)
        oci_layout = self.path / "oci-layout"
        if not oci_layout.exists():
            oci_layout.write_text('{"imageLayoutVersion":"1.0.0"}')
        if not (self.path / "index.json").exists():
            self._write_index({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []})

    def blob_path(self, digest: str) -> Path:
        algo, _, hexpart = digest.partition(":")
        if algo != "sha256" or not re.fullmatch(r"[a-f0-9]{64}", hexpart):
            raise ValueError(f"bad digest {digest!r}")
        return self.blobs_dir / hexpart

    def write_blob(self, data: bytes) -> str:
        digest = sha256_digest(data)
        path = self.blob_path(digest)
        if not path.exists():
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_bytes(data)
            tmp.replace(path)
        return digest

    def add(self, ref_name: str, obj: Image | Index) -> str:
        """Write all blobs of ``obj`` and tag it as ``ref_name`` in index.json. Returns its digest."""
        for digest, data in obj.blobs():
            if data is None:
                if not self.blob_path(digest).exists():
                    raise FileNotFoundError(f"blob {digest} has no data and is not in {self.path}")
            else:
                self.write_blob(data)
        self.tag(ref_name, obj.descriptor())
        return obj.digest

    def tag(self, ref_name: str, descriptor: Mapping[str, Any]) -> None:
        """Point ``ref_name`` at ``descriptor`` in index.json (replacing any entry with that name)."""
        index = json.loads((self.path / "index.json").read_bytes())
        manifests = [
            m for m in index.get("manifests", []) if m.get("annotations", {}).get(REF_NAME_ANNOTATION) != ref_name
        ]
        entry = dict(descriptor)
        entry["annotations"] = {**entry.get("annotations", {}), REF_NAME_ANNOTATION: ref_name}
        manifests.append(entry)
        index["manifests"] = manifests
        self._write_index(index)

    def _write_index(self, index: Mapping[str, Any]) -> None:
        tmp = self.path / "index.json.tmp"
        tmp.write_bytes(json.dumps(index, indent=2).encode() + b"\n")
        tmp.replace(self.path / "index.json")


class BigImage(NamedTuple):
    digest: str  # manifest digest
    layer_digest: str
    layer_size: int  # size of the layer blob (tar), slightly larger than the file in it


def write_big_image_layout(
    path: str | os.PathLike[str],
    ref_name: str,
    layer_bytes: int,
    *,
    platform: str = "linux/amd64",
    labels: Mapping[str, str] | None = None,
) -> BigImage:
    """Write an image whose single uncompressed tar layer holds one file of ``layer_bytes`` random bytes.

    The layer is streamed from ``os.urandom`` in 1 MiB pieces to disk while being hashed, so memory
    stays flat whatever the size. Layers are random, so two calls give different digests."""
    layout = Layout(path)
    tmp = layout.blobs_dir / f".big-{os.getpid()}-{ref_name.replace('/', '_')}.tmp"
    hasher = hashlib.sha256()
    size = 0
    header = _tarinfo("big/random.bin", size=layer_bytes).tobuf(format=tarfile.GNU_FORMAT)
    with open(tmp, "wb") as out:

        def emit(chunk: bytes) -> None:
            nonlocal size
            hasher.update(chunk)
            out.write(chunk)
            size += len(chunk)

        dir_header = _tarinfo("big/", directory=True).tobuf(format=tarfile.GNU_FORMAT)
        emit(dir_header)
        emit(header)
        remaining = layer_bytes
        while remaining:
            piece = min(_CHUNK, remaining)
            emit(os.urandom(piece))
            remaining -= piece
        if layer_bytes % tarfile.BLOCKSIZE:
            emit(b"\0" * (tarfile.BLOCKSIZE - layer_bytes % tarfile.BLOCKSIZE))
        emit(b"\0" * (2 * tarfile.BLOCKSIZE))  # end-of-archive marker
        if size % tarfile.RECORDSIZE:
            emit(b"\0" * (tarfile.RECORDSIZE - size % tarfile.RECORDSIZE))
    digest = "sha256:" + hasher.hexdigest()
    tmp.replace(layout.blob_path(digest))
    layer = Layer(OCI_LAYER_TAR, digest, size, digest, None)
    image = Image([layer], platform=platform, labels=labels or {"fixture": "big"})
    layout.add(ref_name, image)
    return BigImage(image.digest, digest, size)


def write_artifact(
    layout: Layout | str | os.PathLike[str],
    ref_name: str,
    config_media_type: str,
    config_bytes: bytes,
    layers: Sequence[tuple[str, bytes]] = (),
    annotations: Mapping[str, str] | None = None,
    *,
    artifact_type: str | None = None,
) -> str:
    """Write a generic OCI artifact (an OCI image manifest over any config and layer media types, e.g.
    a Helm chart) into ``layout`` and tag it ``ref_name``. Returns the manifest digest.

    ``layers`` are ``(media_type, blob bytes)`` pairs, stored unchanged. The manifest is canonical JSON
    with ``mediaType``, so the same arguments always give the same digest."""
    if not isinstance(layout, Layout):
        layout = Layout(layout)
    config = {"mediaType": config_media_type, "digest": layout.write_blob(config_bytes), "size": len(config_bytes)}
    manifest: dict[str, Any] = {"schemaVersion": 2, "mediaType": OCI_MANIFEST}
    if artifact_type:
        manifest["artifactType"] = artifact_type
    manifest["config"] = config
    manifest["layers"] = [
        {"mediaType": media_type, "digest": layout.write_blob(data), "size": len(data)} for media_type, data in layers
    ]
    if annotations:
        manifest["annotations"] = dict(annotations)
    blob = Blob(OCI_MANIFEST, canonical_json(manifest))
    layout.write_blob(blob.data)
    layout.tag(ref_name, blob.descriptor())
    return blob.digest


# --------------------------------------------------------------------------------------------------
# skopeo helpers


class SkopeoError(RuntimeError):
    pass


def _strip_transport(ref: str) -> str:
    return ref.removeprefix("docker://")


def _run_skopeo(args: Sequence[str], *, timeout: float) -> bytes:
    cmd = ["skopeo", "--insecure-policy", *args]
    proc = subprocess.run(cmd, capture_output=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise SkopeoError(
            f"{' '.join(cmd)} failed with exit code {proc.returncode}:\n" + proc.stderr.decode(errors="replace").strip()
        )
    return proc.stdout


def _registry_flags(
    side: str,
    *,
    tls_verify: bool,
    creds: str | tuple[str, str] | None,
    cert_dir: str | os.PathLike[str] | None,
) -> list[str]:
    prefix = f"--{side}-" if side else "--"
    flags = [f"{prefix}tls-verify={'true' if tls_verify else 'false'}"]
    if creds is not None:
        if isinstance(creds, tuple):
            creds = f"{creds[0]}:{creds[1]}"
        flags.append(f"{prefix}creds={creds}")
    if cert_dir is not None:
        flags.append(f"{prefix}cert-dir={os.fspath(cert_dir)}")
    return flags


def push(
    layout_dir: str | os.PathLike[str],
    ref_name: str,
    dest_ref: str,
    *,
    fmt: str | None = None,
    tls_verify: bool = False,
    creds: str | tuple[str, str] | None = None,
    cert_dir: str | os.PathLike[str] | None = None,
    timeout: float = 600,
) -> None:
    """``skopeo copy --all`` the layout entry ``ref_name`` to ``docker://dest_ref``.

    With ``fmt=None`` the digests are preserved (``--preserve-digests``); with ``fmt="v2s2"`` skopeo
    converts to Docker schema 2 (a manifest, or a manifest list for an index) and digests change.
    ``creds`` is ``"user:pass"`` or ``(user, pass)``. Raises :class:`SkopeoError` with skopeo's stderr."""
    args = ["copy", "--all", "--retry-times=2"]
    if fmt is None:
        args.append("--preserve-digests")
    else:
        args.append(f"--format={fmt}")
    args += _registry_flags("dest", tls_verify=tls_verify, creds=creds, cert_dir=cert_dir)
    args += [f"oci:{os.fspath(layout_dir)}:{ref_name}", f"docker://{_strip_transport(dest_ref)}"]
    _run_skopeo(args, timeout=timeout)


def inspect_raw(
    ref: str,
    *,
    tls_verify: bool = False,
    creds: str | tuple[str, str] | None = None,
    cert_dir: str | os.PathLike[str] | None = None,
    timeout: float = 60,
) -> bytes:
    """The exact manifest bytes stored for ``ref`` (``host/repo:tag`` or ``host/repo@sha256:...``)."""
    args = ["inspect", "--raw", "--retry-times=2"]
    args += _registry_flags("", tls_verify=tls_verify, creds=creds, cert_dir=cert_dir)
    args.append(f"docker://{_strip_transport(ref)}")
    return _run_skopeo(args, timeout=timeout)


def digest_of(
    ref: str,
    *,
    tls_verify: bool = False,
    creds: str | tuple[str, str] | None = None,
    cert_dir: str | os.PathLike[str] | None = None,
) -> str:
    """``sha256:<hex>`` of the raw manifest stored for ``ref``."""
    return sha256_digest(inspect_raw(ref, tls_verify=tls_verify, creds=creds, cert_dir=cert_dir))


def skopeo_copy(source: str, dest: str, *flags: str, timeout: float = 300) -> None:
    """``skopeo copy --all --preserve-digests`` between any two transports, with extra flags for either side."""
    _run_skopeo(["copy", "--all", "--preserve-digests", "--retry-times=2", *flags, source, dest], timeout=timeout)
