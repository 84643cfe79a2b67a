"""Upstreams that ask the collector for unbounded work or memory while staying under every byte cap.

- ``write_large_index(path, size)``: a chart repository index.yaml of about ``size`` bytes, shaped like real
  ones (many charts, many versions, descriptions, maintainers, digests), with one small chart ``app`` in it.
- ``ChartRepository``: a chart repository route serving an index.yaml file and chart archives, optionally an
  endless chain of charts ``c0 → c1 → …``, each depending on the next one in the same repository.
- ``Registry``: a distribution route serving manifests and blobs from dictionaries, tag-list pages (optionally
  one whose ``Link`` points back to itself), and blobs that exist only as declared sizes.
- ``run_measured(argv, timeout)``: runs a command and returns its exit code, output, wall time and peak RSS
  (measured by GNU time).

Only the standard library and the chart builder of tests.support are used, never ``mirror``.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.charts import build_chart
from tests.support.hostile import Answer, Request

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# -- chart repositories --------------------------------------------------------------------------------------


def _entry(name: str, version: str, url: str, digest: str) -> str:
    return (
        f"  - apiVersion: v2\n"
        f"    appVersion: {version}\n"
        f"    created: '2024-01-01T00:00:00.000000000Z'\n"
        f"    description: The {name} chart, one of many in this synthetic repository, version {version}\n"
        f"    digest: {digest}\n"
        f"    home: https://example.invalid/charts/{name}\n"
        f"    maintainers:\n"
        f"    - email: team@example.invalid\n"
        f"      name: team\n"
        f"    name: {name}\n"
        f"    sources:\n"
        f"    - https://example.invalid/src/{name}\n"
        f"    type: application\n"
        f"    urls:\n"
        f"    - {url}\n"
        f"    version: {version}\n"
    )


def write_large_index(path: Path, size: int, *, app_archive: bytes | None = None) -> None:
    """An index.yaml of at least `size` bytes: charts `filler-N` with 400 versions each, then chart `app`."""
    fake_digest = "0" * 64
    with path.open("w") as out:
        out.write("apiVersion: v1\nentries:\n")
        written, chart = 0, 0
        while written < size:
            name = f"filler-{chart}"
            lines = [f"  {name}:\n"]
            lines += [
                _entry(name, f"{major}.{minor}.0", f"charts/{name}-{major}.{minor}.0.tgz", fake_digest)
                for major in range(20)
                for minor in range(20)
            ]
            text = "".join(lines)
            out.write(text)
            written += len(text)
            chart += 1
        if app_archive is not None:
            out.write("  app:\n" + _entry("app", "1.0.0", "app-1.0.0.tgz", sha256(app_archive).split(":")[1]))
        out.write("generated: '2024-01-01T00:00:00Z'\n")


def _file_pieces(path: Path, piece: int = 1024 * 1024) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(piece):
            yield chunk


@dataclass
class ChartRepository:
    """A chart repository: `index` (a file) plus `archives` by file name; with `chain`, an endless c0 → c1 → …"""

    index: Path | None = None
    archives: dict[str, bytes] = field(default_factory=dict)
    chain: int = 0  # charts c0 … c{chain-1} listed, each depending on the next
    base_url: str = ""  # the repository's own URL, for the chain's dependencies

    def chain_index(self) -> bytes:
        entries = "".join(
            f"  c{i}:\n  - apiVersion: v2\n    name: c{i}\n    version: 1.0.0\n    urls:\n    - c{i}-1.0.0.tgz\n"
            for i in range(self.chain)
        )
        return f"apiVersion: v1\nentries:\n{entries}".encode()

    def route(self, request: Request) -> Answer:
        path = request.path.split("?")[0]
        if path == "/index.yaml":
            if self.chain:
                return Answer(200, {"Content-Type": "text/yaml"}, self.chain_index())
            assert self.index is not None
            size = str(self.index.stat().st_size)
            return Answer(200, {"Content-Type": "text/yaml", "Content-Length": size}, _file_pieces(self.index))
        name = path.rsplit("/", 1)[-1]
        if name in self.archives:
            return Answer(200, {"Content-Type": "application/gzip"}, self.archives[name])
        if self.chain and name.startswith("c") and name.endswith("-1.0.0.tgz"):
            number = int(name[1:].split("-")[0])
            dependency = {"name": f"c{number + 1}", "version": "1.0.0", "repository": self.base_url}
            archive = build_chart(f"c{number}", "1.0.0", dependencies=[dependency], values={})
            return Answer(200, {"Content-Type": "application/gzip"}, archive)
        return Answer(404, {}, b"not found\n")


# -- registries ----------------------------------------------------------------------------------------------


@dataclass
class Registry:
    """Manifests by repository and reference (tag or digest), blobs by digest, and tag-list pages."""

    manifests: dict[tuple[str, str], tuple[bytes, str]] = field(default_factory=dict)
    blobs: dict[str, bytes] = field(default_factory=dict)
    tag_pages: dict[str, bytes] = field(default_factory=dict)  # repository → the one page, linking to itself

    def add_manifest(self, repository: str, document: dict[str, object], tag: str | None = None) -> str:
        raw = json.dumps(document).encode()
        digest = sha256(raw)
        media_type = str(document["mediaType"])
        self.manifests[(repository, digest)] = (raw, media_type)
        if tag is not None:
            self.manifests[(repository, tag)] = (raw, media_type)
        return digest

    def add_blob(self, data: bytes) -> dict[str, object]:
        digest = sha256(data)
        self.blobs[digest] = data
        return {"mediaType": OCI_LAYER, "digest": digest, "size": len(data)}

    def add_image(self, repository: str, tag: str | None, layers: list[dict[str, object]]) -> str:
        config = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
        config_descriptor = {**self.add_blob(config), "mediaType": OCI_CONFIG}
        manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config_descriptor, "layers": layers}
        return self.add_manifest(repository, manifest, tag)

    def route(self, request: Request) -> Answer:
        path = request.path.split("?")[0]
        if path in ("/v2", "/v2/"):
            return Answer(200, {"Content-Type": "application/json"}, b"{}")
        repository, _, rest = path.removeprefix("/v2/").rpartition("/")
        if rest == "list" and repository.endswith("/tags"):
            repository = repository.removesuffix("/tags")
            page = self.tag_pages.get(repository)
            if page is None:
                return Answer(404, {}, b"{}")
            link = f'<{path}>; rel="next"'
            return Answer(200, {"Content-Type": "application/json", "Link": link}, page)
        repository, _, kind = repository.rpartition("/")
        if kind == "manifests" and (repository, rest) in self.manifests:
            raw, media_type = self.manifests[(repository, rest)]
            headers = {"Content-Type": media_type, "Docker-Content-Digest": sha256(raw)}
            return Answer(200, headers, raw)
        if kind == "blobs" and rest in self.blobs:
            return Answer(200, {"Content-Type": "application/octet-stream"}, self.blobs[rest])
        errors = {"errors": [{"code": "MANIFEST_UNKNOWN" if kind == "manifests" else "BLOB_UNKNOWN"}]}
        return Answer(404, {"Content-Type": "application/json"}, json.dumps(errors).encode())


def tag_page(repository: str, approximate_bytes: int) -> bytes:
    """A tag-list page of about `approximate_bytes`: many distinct version tags."""
    count = approximate_bytes // 12
    return json.dumps({"name": repository, "tags": [f"0.{i // 1000}.{i % 1000}" for i in range(count)]}).encode()


# -- measuring a command -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Measured:
    exit_code: int
    stdout: str
    stderr: str
    seconds: float
    max_rss_bytes: int
    timed_out: bool


def run_measured(argv: list[str], *, timeout_s: float, env: dict[str, str] | None = None) -> Measured:
    """Run `argv` under GNU time, killed (its whole session) after `timeout_s`.

    The peak RSS is the one GNU time reports for its own fresh child. wait4 on a child of this process would
    not do: Python starts children with vfork, and Linux carries the parent's high-water mark over exec.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, tempfile.NamedTemporaryFile() as rss:
        started = time.monotonic()
        process = subprocess.Popen(
            ["/usr/bin/time", "-f", "%M", "-o", rss.name, *argv],
            stdout=out,
            stderr=err,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
        timed_out = False
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        seconds = time.monotonic() - started
        lines = Path(rss.name).read_text().split()
        out.seek(0)
        err.seek(0)
        return Measured(
            process.returncode,
            out.read().decode(errors="replace"),
            err.read().decode(errors="replace"),
            seconds,
            int(lines[-1]) * 1024 if lines and lines[-1].isdigit() else 0,
            timed_out,
        )
