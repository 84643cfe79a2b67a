"""Pull quotas (issue 18): a counting reverse proxy in front of the real upstream registry (a MirrorSet's
`registries.HOST.endpoint`) sees every request collect sends. Night after night with nothing changed upstream,
collect resolves with HEAD and sends no manifest GET at all (Docker Hub counts those); a moved tag costs a GET of
that one manifest; a registry that says its quota is nearly spent stops the collect (exit 4) before it spends
the rest; a Retry-After beyond the ceiling is not waited for.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from pathlib import Path

import pytest

from tests.support.attach import Attacher, sbom, subject_descriptor
from tests.support.hostile import Answer, HostileServer, Request
from tests.support.hostile.forwarding import forward_to, manifest_requests
from tests.support.images import Image, Index, Layer, Layout, push
from tests.support.mirrorsets import mirrorset
from tests.support.services import UPSTREAM_REGISTRY


class Upstream:
    """This test's namespace upstream: a signed single image (an SBOM in the tag schema, a cosign signature, a
    signature of the SBOM), another single image, and a multi-arch index of two platforms."""

    def __init__(self, services, tmp_path: Path) -> None:
        self.namespace = f"quota{uuid.uuid4().hex[:8]}"
        self.host = services.upstream
        self.layout = Layout(tmp_path / "upstream-layout")
        self.attacher = Attacher(services.upstream)
        app = self.publish("app:1", self.image("app-1"))
        attached = sbom(subject_descriptor(app.digest, len(app.manifest.data)))
        self.attacher.attach(f"{self.namespace}/app", attached)
        self.attacher.sign(f"{self.namespace}/app", app.digest, self.ref("app"), b"app")
        self.attacher.sign(f"{self.namespace}/app", attached.digest, self.ref("app"), b"sbom")
        self.publish("tool:1", self.image("tool-1"))
        platforms = ("linux/amd64", "linux/arm64")
        self.publish("multi:1", Index([self.image(f"multi-{p}", platform=p) for p in platforms]))

    def ref(self, name: str) -> str:
        return f"{self.host}/{self.namespace}/{name}"

    def image(self, seed: str, platform: str = "linux/amd64") -> Image:
        return Image([Layer.from_seed(f"{self.namespace}/{seed}")], platform=platform, labels={"seed": seed})

    def publish(self, name: str, image: Image | Index) -> Image | Index:
        self.layout.add(name, image)
        push(self.layout.path, name, self.ref(name))
        return image


@pytest.fixture
def upstream(services, tmp_path):
    made = Upstream(services, tmp_path)
    yield made
    made.attacher.close()


def counting(request: Request) -> dict[str, str]:
    """A quota stated on every answer, as Docker Hub states it: the registry counts manifest GETs."""
    return {"ratelimit-limit": "10000;w=21600", "ratelimit-remaining": "9000;w=21600"}


@pytest.fixture
def proxy(services):
    with HostileServer(forward_to(f"http://{services.upstream}", extra_headers=counting)) as server:
        yield server


def write_set(tmp_path: Path, upstream: Upstream, proxy: HostileServer, names=("app:1", "tool:1", "multi:1")) -> Path:
    document = mirrorset([upstream.ref(n) for n in names], registries={UPSTREAM_REGISTRY: {"endpoint": proxy.url}})
    path = tmp_path / f"set-{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(json.dumps(document))
    return path


def collect(mirror_cli, manifest: Path, out: Path, *extra: object) -> dict:
    result = mirror_cli("collect", manifest, "-o", out, "--json", "-q", *extra)
    assert result.exit_code == 0, result.stderr
    return dict(result.json())


def night(proxy: HostileServer, run) -> tuple[dict, list[str], list[str]]:
    """Run one collect; returns its summary and the manifest GETs and HEADs the proxy saw during it."""
    before = len(proxy.seen())
    summary = run()
    during = proxy.seen()[before:]
    return summary, manifest_requests(during, "GET"), manifest_requests(during, "HEAD")


def import_(mirror_cli, bundle: Path, services, url: str, env: dict) -> None:
    result = mirror_cli(
        "import", bundle, "--registry", url, "--allow-unsigned", "--ca-file", services.ca_file, "-q", env=env
    )
    assert result.exit_code == 0, result.stderr


def test_a_nothing_changed_night_sends_no_manifest_get_and_a_moved_tag_one(
    mirror_cli, tmp_path, upstream, proxy, services, internal_env, internal_url
):
    manifest = write_set(tmp_path, upstream, proxy)
    n1, n2, n3 = tmp_path / "n1", tmp_path / "n2.tar", tmp_path / "n3"

    first, first_gets, _ = night(proxy, lambda: collect(mirror_cli, manifest, n1))
    # 3 images, the 2 children of the index, the SBOM, its tag schema index and the 2 signatures.
    assert len(first_gets) >= 9
    assert first["attached"] == {"added": 3, "unchanged": 0}

    before = len(proxy.seen())
    second, gets, heads = night(proxy, lambda: collect(mirror_cli, manifest, n2, "--since", n1))
    assert gets == []
    # Each image's tag, the tag schema's tag and the two cosign tags: HEADs, which Docker Hub does not count.
    assert len(heads) == 6, heads
    # And nothing else but each repository's tag list and the one probe for the referrers API (distribution 2.8
    # has none): no blob, no manifest GET.
    kinds = Counter((r.method, r.path.split("?")[0].split("/")[-2]) for r in proxy.seen()[before:])
    assert kinds == {("HEAD", "manifests"): 6, ("GET", "tags"): 3, ("GET", "referrers"): 1}
    assert second["movedTags"] == [] and second["attached"] == {"added": 0, "unchanged": 3}
    assert [a["digest"] for a in second["artifacts"]] == [a["digest"] for a in first["artifacts"]]
    pulls = {entry["host"]: entry for entry in second["pullQuota"]}
    assert pulls[UPSTREAM_REGISTRY]["manifestGets"] == 0

    moved = upstream.publish("tool:1", upstream.image("tool-2"))
    third, gets, _ = night(proxy, lambda: collect(mirror_cli, manifest, n3, "--since", n2))
    assert gets == [f"/v2/{upstream.namespace}/tool/manifests/{moved.digest}"]
    assert [m["source"] for m in third["movedTags"]] == [upstream.ref("tool:1")]

    for bundle in (n1, n2, n3):  # the nights still import in order
        import_(mirror_cli, bundle, services, internal_url, internal_env)


def test_a_nothing_changed_night_from_an_inventory_file_and_no_cache_fetches_what_it_cannot_know(
    mirror_cli, tmp_path, upstream, proxy
):
    manifest = write_set(tmp_path, upstream, proxy, names=("tool:1",))
    collect(mirror_cli, manifest, tmp_path / "n1", "--no-cache")
    _, gets, _ = night(
        proxy,
        lambda: collect(mirror_cli, manifest, tmp_path / "n2", "--since", tmp_path / "n1.inventory.json", "--no-cache"),
    )
    assert len(gets) == 1  # neither the base (an inventory only) nor a cache holds the manifest's bytes


def low_quota(request: Request) -> dict[str, str]:
    return {"ratelimit-limit": "100;w=21600", "ratelimit-remaining": "3;w=21600"}


def test_a_registry_whose_quota_is_nearly_spent_stops_the_collect_before_any_pull(mirror_cli, tmp_path, services):
    with HostileServer(forward_to(f"http://{services.upstream}", extra_headers=low_quota)) as proxy:
        namespace = f"quota{uuid.uuid4().hex[:8]}"
        layout = Layout(tmp_path / "layout")
        for name in ("a", "b"):
            layout.add(name, Image([Layer.from_seed(f"{namespace}/{name}")]))
            push(layout.path, name, f"{services.upstream}/{namespace}/{name}:1")
        refs = [f"{services.upstream}/{namespace}/{name}:1" for name in ("a", "b")]
        manifest = tmp_path / "set.yaml"
        manifest.write_text(json.dumps(mirrorset(refs, registries={UPSTREAM_REGISTRY: {"endpoint": proxy.url}})))
        report = tmp_path / "report.json"

        result = mirror_cli("collect", manifest, "-o", tmp_path / "n1", "--jobs", "1", "--report", report)

        assert result.exit_code == 4
        asked = f"{proxy.url.rstrip('/')} (registries.{UPSTREAM_REGISTRY}.endpoint)"
        assert f"{asked}: 3 pull(s) left of 100 in a window of 21600 s" in result.stderr
        assert "--min-pull-quota" in result.stderr
        assert "pull-through cache" not in result.stderr  # the endpoint is one already
        assert manifest_requests(proxy.seen(), "GET") == []
        assert not any(f"/{namespace}/b/" in r.path for r in proxy.seen())  # the rest not even asked about
        assert not (tmp_path / "n1").exists()
        failed = json.loads(report.read_text())["failed"]
        assert failed[0]["rateLimit"]["remaining"] == 3
        assert failed[0]["rateLimit"]["host"] == UPSTREAM_REGISTRY
        assert failed[0]["rateLimit"]["endpoint"] == proxy.url.rstrip("/")

        again = mirror_cli("collect", manifest, "-o", tmp_path / "n2", "--min-pull-quota", "3", "-q")
        assert again.exit_code == 0, again.stderr


def test_a_retry_after_beyond_the_ceiling_stops_at_once_saying_when_to_run_again(mirror_cli, tmp_path, services):
    def busy(request: Request) -> Answer | None:
        if "/manifests/" in request.path:
            return Answer(429, {"Retry-After": "3600", "Content-Type": "application/json"}, b'{"errors":[]}')
        return None

    with HostileServer(forward_to(f"http://{services.upstream}", answer=busy)) as proxy:
        manifest = tmp_path / "set.yaml"
        ref = f"{services.upstream}/fixtures/app:1.0"
        manifest.write_text(json.dumps(mirrorset([ref], registries={UPSTREAM_REGISTRY: {"endpoint": proxy.url}})))

        result = mirror_cli("collect", manifest, "-o", tmp_path / "n1")

        assert result.exit_code == 4
        assert "3600 s (Retry-After)" in result.stderr and "run the same command again after" in result.stderr
        assert len([r for r in proxy.seen() if "/manifests/" in r.path]) == 1


def test_an_oci_chart_that_did_not_move_costs_a_head_and_no_get(mirror_cli, tmp_path, services, proxy):
    from tests.support.charts import build_chart, push_oci_chart

    namespace = f"quota{uuid.uuid4().hex[:8]}"
    push_oci_chart(build_chart("quotachart", "0.1.0", values={}), f"{services.upstream}/{namespace}/quotachart:0.1.0")
    document = mirrorset([], registries={UPSTREAM_REGISTRY: {"endpoint": proxy.url}})
    document["spec"]["charts"] = [
        {"name": "quotachart", "repo": f"oci://{UPSTREAM_REGISTRY}/{namespace}", "version": "0.1.0"}
    ]
    manifest = tmp_path / "charts.yaml"
    manifest.write_text(json.dumps(document))
    collect(mirror_cli, manifest, tmp_path / "n1")

    _, gets, heads = night(proxy, lambda: collect(mirror_cli, manifest, tmp_path / "n2", "--since", tmp_path / "n1"))

    assert gets == []
    assert heads == [f"/v2/{namespace}/quotachart/manifests/0.1.0"]


def test_a_registry_that_states_no_quota_gets_one_get_per_tag_after_its_first_manifest_answer(
    mirror_cli, tmp_path, upstream, services
):
    with HostileServer(forward_to(f"http://{services.upstream}")) as quiet:
        manifest = write_set(tmp_path, upstream, quiet, names=("app:1", "tool:1", "multi:1"))
        before = len(quiet.seen())
        collect(mirror_cli, manifest, tmp_path / "n1", "--jobs", "1")
        seen = quiet.seen()[before:]
    # The first tag is asked with a HEAD (nothing says yet whether GETs are counted); its answer states no quota,
    # and every other tag (two images, the tag schema's, two cosign tags) is fetched with one GET.
    assert len(manifest_requests(seen, "HEAD")) == 1
    tags = [r for r in manifest_requests(seen, "GET") if "sha256:" not in r.rsplit("/", 1)[-1]]
    assert len(tags) == 5, tags
