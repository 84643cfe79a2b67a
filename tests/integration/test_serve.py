"""Day zero: `mirror serve` of a chain of two signed, approved nights collected from the real upstream (images, an
SBOM and a cosign signature attached to one of them, an OCI chart and a chart from an HTTP repository), straight
from the bundles, with no registry running on the high side. Real clients pull from it: skopeo copies every image
with the upstream's digest, oras-py pulls the charts, the referrers API lists the SBOM; a layer altered on disk
after start is never served."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import oras.provider
import pytest

from tests.conftest import MIRROR
from tests.support.attach import Attacher, sbom, subject_descriptor
from tests.support.charts import seed_charts
from tests.support.images import (
    Image,
    Layer,
    Layout,
    SkopeoError,
    digest_of,
    inspect_raw,
    push,
    sha256_digest,
    skopeo_copy,
)
from tests.support.services import CHARTS_ADDRESS2, UPSTREAM_REGISTRY


@dataclass
class Served:
    url: str
    stderr: list[str]

    @property
    def host(self) -> str:
        return self.url.removeprefix("http://")


@contextmanager
def serving(*args: object, env: dict[str, str]) -> Iterator[Served]:
    """`mirror serve ARGS --listen 127.0.0.1:0` as a process; stopped with SIGTERM (it must exit 0)."""
    process = subprocess.Popen(
        [str(MIRROR), "serve", *map(str, args), "--listen", "127.0.0.1:0", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert process.stdout is not None and process.stderr is not None
    served = Served("", [])
    errors = threading.Thread(target=lambda: served.stderr.extend(process.stderr), daemon=True)  # type: ignore[arg-type]
    errors.start()
    line = process.stdout.readline()
    try:
        if not line:
            process.wait(60)
            errors.join(5)
            pytest.fail(f"mirror serve exited {process.returncode}: {''.join(served.stderr)}")
        served.url = json.loads(line)["url"]
        yield served
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            process.stdout.close()
            errors.join(5)
            process.stderr.close()
    assert process.returncode == 0, "".join(served.stderr)


@dataclass
class DayZero:
    namespace: str
    upstream: str
    nights: list[Path]
    policy: Path
    env: dict[str, str]
    sbom_digest: str
    tool_digest: str
    chart_archive: bytes
    oci_chart_digest: str

    def ref(self, name: str) -> str:
        return f"{self.upstream}/{self.namespace}/{name}"


def _run(*args: object, env: dict[str, str]) -> None:
    done = subprocess.run([str(MIRROR), *map(str, args)], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr


def _mirrorset(path: Path, images: list[str], charts: list[dict[str, object]]) -> Path:
    spec = {
        "registries": {UPSTREAM_REGISTRY: {"plainHTTP": True}},
        "images": images,
        "charts": charts,
        "allowedHosts": [CHARTS_ADDRESS2],
    }
    path.write_text(
        json.dumps({"apiVersion": "mirror/v1", "kind": "MirrorSet", "metadata": {"name": "d0"}, "spec": spec})
    )
    return path


@pytest.fixture(scope="module")
def day_zero(services, tmp_path_factory) -> DayZero:
    work = tmp_path_factory.mktemp("day-zero")
    env = {**os.environ, "MIRROR_CACHE_DIR": str(work / "cache"), "DOCKER_CONFIG": str(work / "docker")}
    charts = seed_charts(services)
    namespace = f"dayzero{uuid.uuid4().hex[:8]}"
    layout = Layout(work / "upstream-layout")
    base = Layer.from_seed(f"{namespace}/base", files=4, file_size=8192)

    def publish(name: str, seed: str) -> Image:
        image = Image([base, Layer.from_seed(f"{namespace}/{seed}")], labels={"seed": seed})
        layout.add(name.replace(":", "-"), image)
        push(layout.path, name.replace(":", "-"), f"{services.upstream}/{namespace}/{name}")
        return image

    publish("app:1", "app-1")
    tool = publish("tool:1", "tool-1")
    with Attacher(services.upstream) as attacher:
        attached = sbom(subject_descriptor(tool.digest, len(tool.manifest.data)))
        attacher.attach(f"{namespace}/tool", attached)
        attacher.sign(f"{namespace}/tool", tool.digest, f"{services.upstream}/{namespace}/tool")

    for name in ("collector", "officer"):
        _run("keygen", work / name, env=env)
    policy = work / "policy.yaml"
    policy.write_text(
        json.dumps(
            {
                "apiVersion": "mirror/v1",
                "kind": "TrustPolicy",
                "collectors": {"keys": [str(work / "collector.pub")], "threshold": 1},
                "approvers": {"keys": [str(work / "officer.pub")], "threshold": 1},
                "stateFile": str(work / "state.json"),
            }
        )
    )
    chart_list = [
        {"name": "app", "repo": charts["repo"]["url"], "version": "1.1.0", "images": False},
        {"name": "ocichart", "repo": f"oci://{UPSTREAM_REGISTRY}/charts", "version": "0.1.0", "images": False},
    ]
    refs = [f"{services.upstream}/{namespace}/{name}" for name in ("app:1", "tool:1")]
    first, second = work / "n1", work / "n2.tar"
    key = ("--key", work / "collector.key")
    _run("collect", _mirrorset(work / "n1.yaml", refs, chart_list), "-o", first, "-q", *key, env=env)
    publish("app:1", "app-1-rebuilt")  # the tag moves upstream: night two carries the new image
    publish("app:2", "app-2")
    refs.append(f"{services.upstream}/{namespace}/app:2")
    night2 = _mirrorset(work / "n2.yaml", refs, chart_list)
    _run("collect", night2, "-o", second, "--since", first, "-q", *key, env=env)
    for night in (first, second):
        _run("approve", night, "--key", work / "officer.key", "--trust", policy, env=env)
    archive = Path(charts["charts"]["app"]["1.1.0"]["path"]).read_bytes()
    return DayZero(
        namespace,
        services.upstream,
        [first, second],
        policy,
        env,
        attached.digest,
        tool.digest,
        archive,
        charts["oci"]["ocichart"]["0.1.0"]["digest"],
    )


@pytest.fixture(scope="module")
def served(day_zero) -> Iterator[Served]:
    with serving(*day_zero.nights, "--trust", day_zero.policy, env=day_zero.env) as running:
        yield running


@pytest.mark.parametrize("name", ["app:1", "app:2", "tool:1"])
def test_skopeo_copies_every_image_from_the_chain_with_the_upstream_digest(day_zero, served, tmp_path, name):
    out = tmp_path / "copy"
    skopeo_copy(f"docker://{served.host}/{day_zero.namespace}/{name}", f"oci:{out}:x", "--src-tls-verify=false")

    [entry] = json.loads((out / "index.json").read_text())["manifests"]
    assert entry["digest"] == digest_of(day_zero.ref(name))


def test_the_tag_the_second_night_moved_is_served_at_its_new_digest(day_zero, served):
    served_digest = digest_of(f"{served.host}/{day_zero.namespace}/app:1")

    assert served_digest == digest_of(day_zero.ref("app:1"))  # upstream's app:1 is the rebuilt image now


def test_skopeo_inspect_reads_the_image_and_its_tags(day_zero, served):
    done = subprocess.run(
        ["skopeo", "inspect", "--tls-verify=false", f"docker://{served.host}/{day_zero.namespace}/app:2"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    inspected = json.loads(done.stdout)

    assert inspected["Digest"] == digest_of(day_zero.ref("app:2"))
    assert sorted(inspected["RepoTags"]) == ["1", "2"]


def test_oras_pulls_the_chart_from_an_http_repository_with_its_archive_unchanged(day_zero, served):
    registry = oras.provider.Registry(served.host, insecure=True)
    target = f"{served.host}/charts/app:1.1.0"

    manifest = registry.get_manifest(target)
    [layer] = manifest["layers"]

    assert layer["mediaType"] == "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
    assert registry.get_blob(target, layer["digest"]).content == day_zero.chart_archive


def test_oras_pulls_the_oci_chart_into_a_directory(day_zero, served, tmp_path):
    registry = oras.provider.Registry(served.host, insecure=True)

    [pulled] = registry.pull(target=f"{served.host}/charts/ocichart:0.1.0", outdir=str(tmp_path))

    manifest = inspect_raw(f"{served.host}/charts/ocichart:0.1.0")
    [layer] = json.loads(manifest)["layers"]
    assert sha256_digest(manifest) == day_zero.oci_chart_digest
    assert sha256_digest(Path(pulled).read_bytes()) == layer["digest"]


def test_the_referrers_api_lists_the_sbom_attached_upstream(day_zero, served):
    answer = httpx.get(f"{served.url}/v2/{day_zero.namespace}/tool/referrers/{day_zero.tool_digest}")

    assert [d["digest"] for d in answer.json()["manifests"]] == [day_zero.sbom_digest]


def test_the_cosign_signature_is_served_under_its_tag_as_upstream_holds_it(day_zero, served):
    tag = day_zero.tool_digest.replace(":", "-") + ".sig"

    assert inspect_raw(f"{served.host}/{day_zero.namespace}/tool:{tag}") == inspect_raw(day_zero.ref(f"tool:{tag}"))


def test_every_request_is_logged(day_zero, served):
    httpx.get(f"{served.url}/v2/{day_zero.namespace}/tool/manifests/1")

    assert any(f"GET /v2/{day_zero.namespace}/tool/manifests/1 200" in line for line in served.stderr)


def test_nothing_can_be_pushed(day_zero, served, tmp_path):
    layout = Layout(tmp_path / "layout")
    layout.add("x", Image([Layer.from_seed("pushed")]))

    with pytest.raises(SkopeoError):
        push(layout.path, "x", f"{served.host}/{day_zero.namespace}/pushed:1")


def test_a_layer_altered_on_disk_after_start_is_never_served(day_zero, tmp_path):
    copy = tmp_path / "n1"
    shutil.copytree(day_zero.nights[0], copy)
    manifest = json.loads(inspect_raw(day_zero.ref("tool:1")))
    layer = copy / "blobs" / "sha256" / manifest["layers"][-1]["digest"].removeprefix("sha256:")
    with serving(copy, "--trust", day_zero.policy, env=day_zero.env) as running:
        data = bytearray(layer.read_bytes())
        data[-1] ^= 0xFF
        layer.write_bytes(bytes(data))

        with pytest.raises(SkopeoError):
            skopeo_copy(
                f"docker://{running.host}/{day_zero.namespace}/tool:1",
                f"oci:{tmp_path / 'out'}:x",
                "--src-tls-verify=false",
            )

    assert any("changed" in line and manifest["layers"][-1]["digest"] in line for line in running.stderr)
