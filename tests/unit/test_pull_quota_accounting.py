"""Pull quotas in the registry client (issue 18): `ratelimit-remaining` read from every answer, the manifest GETs
refused once it is below the reserve, and tags resolved with HEAD (which Docker Hub does not count).

Against the in-process simulator; docs/collector.md ("Pull quotas") is the specification.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import pytest
from registry_sim import RegistrySim

from mirror.collector.cache import BlobCache
from mirror.collector.known import KnownManifests
from mirror.errors import RateLimitedError, RegistryHTTPError
from mirror.limits import Limits
from mirror.oci import mediatypes as mt
from mirror.oci.digest import is_digest, sha256_digest
from mirror.registry.client import RegistryClient
from mirror.registry.endpoint import Endpoint, RegistrySettings, endpoint_for
from mirror.registry.quota import Quota, read_quota

REPO = "library/app"
MANIFEST = json.dumps(
    {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:" + "a" * 64, "size": 2},
        "layers": [],
    }
).encode()
RESERVE = Limits(min_ratelimit_remaining=10)


@pytest.fixture
def sim() -> RegistrySim:
    sim = RegistrySim("registry-1.docker.io")
    sim.add_manifest(REPO, MANIFEST, tag="1.0")
    sim.add_manifest(REPO, MANIFEST + b" ", tag="2.0")
    return sim


@pytest.fixture
def client(sim: RegistrySim) -> Iterator[RegistryClient]:
    with RegistryClient(
        Endpoint("docker.io", "https", sim.host), None, RESERVE, transport=sim.transport(), sleep=lambda _: None
    ) as client:
        yield client


def quota_left(remaining: int) -> dict[str, str]:
    return {"ratelimit-limit": "100;w=21600", "ratelimit-remaining": f"{remaining};w=21600"}


def manifest_gets(sim: RegistrySim) -> list[httpx.Request]:
    return sim.registry_requests("GET", "manifests")


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (quota_left(76), Quota(76, 100, 21600)),
        ({"ratelimit-remaining": "5"}, Quota(5)),
        ({"RateLimit-Remaining": " 7 ; w=60 ; comment"}, Quota(7, None, 60)),
        ({"ratelimit-remaining": "\u00b2"}, None),
        ({"ratelimit-remaining": "-1"}, None),
        ({}, None),
    ],
)
def test_the_quota_is_read_from_docker_hubs_headers_and_nothing_else(headers, expected):
    assert read_quota({k.lower(): v for k, v in headers.items()}) == expected


def test_a_manifest_get_is_refused_before_it_is_sent_once_an_answer_says_the_quota_is_nearly_spent(sim, client):
    sim.answer_headers = lambda request: quota_left(9)
    assert client.head_manifest(REPO, "1.0").digest == sha256_digest(MANIFEST)
    with pytest.raises(RateLimitedError) as caught:
        client.get_manifest(REPO, "1.0")
    assert manifest_gets(sim) == []
    error = caught.value
    assert error.exit_code == 4
    assert "docker.io: 9 pull(s) left of 100 in a window of 21600 s (ratelimit-remaining)" in error.message
    assert "min_ratelimit_remaining" in error.message and "--min-pull-quota" in (error.hint or "")
    assert error.to_json()["rateLimit"] == {
        "host": "docker.io",
        "remaining": 9,
        "limit": 100,
        "windowS": 21600,
        "minimum": 10,
    }


def test_the_manifest_whose_answer_says_the_quota_is_low_is_kept_and_the_next_one_is_not_requested(sim, client):
    sim.answer_headers = lambda request: quota_left(9 if request.method == "GET" else 50)
    fetched = client.get_manifest(REPO, "1.0")
    assert fetched.digest == sha256_digest(MANIFEST)
    with pytest.raises(RateLimitedError):
        client.get_manifest(REPO, "2.0")
    assert [r.url.path for r in manifest_gets(sim)] == [f"/v2/{REPO}/manifests/1.0"]


def test_a_429_that_says_the_quota_is_spent_is_not_retried_as_a_pull(sim, client):
    sim.fail(5, 429)
    sim.answer_headers = lambda request: quota_left(0)
    with pytest.raises(RateLimitedError):
        client.get_manifest(REPO, "1.0")
    assert len(manifest_gets(sim)) == 1


def test_a_quota_at_the_reserve_lets_manifests_be_fetched(sim, client):
    sim.answer_headers = lambda request: quota_left(10)
    client.get_manifest(REPO, "1.0")
    client.get_manifest(REPO, "2.0")
    assert len(manifest_gets(sim)) == 2


def test_a_refusal_without_a_window_says_what_it_knows(sim, client):
    sim.answer_headers = lambda request: {"ratelimit-remaining": "0"}
    client.head_manifest(REPO, "1.0")
    with pytest.raises(RateLimitedError, match=r"docker\.io: 0 pull\(s\) left \(ratelimit-remaining\)"):
        client.get_manifest(REPO, "1.0")


def test_a_refusal_through_a_configured_endpoint_names_the_endpoint_contacted_and_the_registry(sim):
    endpoint = endpoint_for("docker.io", RegistrySettings(endpoint=f"https://{sim.host}"))
    with RegistryClient(endpoint, None, RESERVE, transport=sim.transport(), sleep=lambda _: None) as client:
        sim.answer_headers = lambda request: quota_left(3)
        client.head_manifest(REPO, "1.0")
        with pytest.raises(RateLimitedError) as caught:
            client.get_manifest(REPO, "1.0")
    message = str(caught.value)
    assert message.startswith(f"https://{sim.host} (registries.docker.io.endpoint): 3 pull(s) left")
    assert caught.value.rate_limit is not None
    assert caught.value.rate_limit["host"] == "docker.io"
    assert caught.value.rate_limit["endpoint"] == f"https://{sim.host}"
    assert "pull-through cache" not in (caught.value.hint or "")


def test_a_refusal_from_the_registry_itself_suggests_a_pull_through_cache(sim, client):
    sim.answer_headers = lambda request: quota_left(3)
    client.head_manifest(REPO, "1.0")
    with pytest.raises(RateLimitedError) as caught:
        client.get_manifest(REPO, "1.0")
    assert "pull-through cache (registries.docker.io.endpoint)" in (caught.value.hint or "")


def test_a_tag_is_resolved_with_head_and_no_get(sim, client):
    head = client.head_manifest(REPO, "2.0")
    assert head.digest == sha256_digest(MANIFEST + b" ") and head.media_type == mt.OCI_MANIFEST
    assert manifest_gets(sim) == []
    assert client.quota.to_json()["manifestHeads"] == 1


def test_head_says_none_when_the_registry_states_no_digest_so_the_caller_gets(sim, client):
    sim.manifest_send_digest = False
    assert client.head_manifest(REPO, "1.0") is None


def test_head_says_none_when_the_registry_takes_no_head_for_manifests(sim, client):
    sim.fail(1, 405, match=lambda request: request.method == "HEAD")
    assert client.head_manifest(REPO, "1.0") is None


def test_head_of_a_missing_tag_is_a_404_like_get(sim, client):
    with pytest.raises(RegistryHTTPError) as caught:
        client.head_manifest(REPO, "9.9")
    assert caught.value.status == 404


def test_the_client_counts_its_manifest_gets_and_heads_and_the_last_quota(sim, client):
    sim.answer_headers = lambda request: quota_left(50)
    client.head_manifest(REPO, "1.0")
    client.get_manifest(REPO, "1.0")
    client.get_manifest(REPO, "2.0")
    assert client.quota.to_json() == {
        "host": "docker.io",
        "manifestGets": 2,
        "manifestHeads": 1,
        "quota": {"remaining": 50, "limit": 100, "windowS": 21600},
    }


class Held:
    """A manifest store as collect's: bytes by digest, and what was put."""

    def __init__(self, held: dict[str, bytes] | None = None) -> None:
        self.held = dict(held or {})
        self.put_digests: list[str] = []

    def get(self, digest: str, max_bytes: int) -> bytes | None:
        return self.held.get(digest)

    def put(self, digest: str, raw: bytes) -> None:
        self.put_digests.append(digest)
        self.held[digest] = raw


def with_store(sim: RegistrySim, store: Held) -> RegistryClient:
    endpoint = Endpoint("docker.io", "https", sim.host)
    return RegistryClient(endpoint, None, RESERVE, transport=sim.transport(), sleep=lambda _: None, manifests=store)


def test_with_a_store_a_tag_whose_manifest_is_held_costs_one_head_and_no_get(sim):
    digest = sha256_digest(MANIFEST)
    with with_store(sim, Held({digest: MANIFEST})) as client:
        fetched = client.get_manifest(REPO, "1.0")
    assert (fetched.raw, fetched.digest, fetched.media_type) == (MANIFEST, digest, mt.OCI_MANIFEST)
    assert manifest_gets(sim) == [] and len(sim.registry_requests("HEAD", "manifests")) == 1


def test_with_a_store_a_digest_held_costs_no_request_at_all(sim):
    digest = sha256_digest(MANIFEST)
    with with_store(sim, Held({digest: MANIFEST})) as client:
        assert client.get_manifest(REPO, digest, len(MANIFEST)).raw == MANIFEST
    assert sim.registry_requests() == []


def test_with_a_store_a_manifest_not_held_is_fetched_by_the_digest_head_named_and_kept(sim):
    store = Held()
    digest = sha256_digest(MANIFEST)
    with with_store(sim, store) as client:
        client.get_manifest(REPO, "1.0")
    assert [r.url.path for r in manifest_gets(sim)] == [f"/v2/{REPO}/manifests/{digest}"]
    assert store.put_digests == [digest]


def test_with_a_store_held_bytes_that_are_not_the_digests_are_fetched_instead(sim):
    digest = sha256_digest(MANIFEST)
    with with_store(sim, Held({digest: b"something else"})) as client:
        assert client.get_manifest(REPO, "1.0").raw == MANIFEST
    assert len(manifest_gets(sim)) == 1


def test_with_a_store_a_low_quota_on_the_head_stops_before_the_first_get(sim):
    sim.answer_headers = lambda request: quota_left(0)
    with with_store(sim, Held()) as client, pytest.raises(RateLimitedError):
        client.get_manifest(REPO, "1.0")
    assert manifest_gets(sim) == []


def test_with_a_store_a_held_manifest_without_its_own_media_type_is_fetched_for_its_content_type(sim):
    untyped = json.dumps({"schemaVersion": 2, "config": json.loads(MANIFEST)["config"], "layers": []}).encode()
    digest = sim.add_manifest(REPO, untyped, media_type=mt.OCI_MANIFEST)
    with with_store(sim, Held({digest: untyped})) as client:
        fetched = client.get_manifest(REPO, digest)
    assert fetched.media_type == mt.OCI_MANIFEST and len(manifest_gets(sim)) == 1


def elsewhere(store: Held, answer_headers: dict[str, str] | None = None) -> tuple[RegistrySim, RegistryClient]:
    """A registry other than Docker Hub, holding the same manifests."""
    sim = RegistrySim("reg.test")
    sim.add_manifest(REPO, MANIFEST, tag="1.0")
    sim.add_manifest(REPO, MANIFEST + b" ", tag="2.0")
    if answer_headers is not None:
        sim.answer_headers = lambda request: answer_headers
    endpoint = Endpoint("reg.test", "https", sim.host)
    return sim, RegistryClient(
        endpoint, None, RESERVE, transport=sim.transport(), sleep=lambda _: None, manifests=store
    )


def test_with_a_store_a_registry_not_known_to_count_pulls_gets_a_head_first():
    sim, client = elsewhere(Held())
    with client:
        client.get_manifest(REPO, "1.0")
    assert [r.url.path.rsplit("/", 1)[-1] for r in sim.registry_requests("HEAD", "manifests")] == ["1.0"]


def test_with_a_store_once_a_manifest_answer_states_no_quota_a_tag_costs_one_get_and_no_head():
    store = Held()
    sim, client = elsewhere(store)
    with client:
        client.get_manifest(REPO, "1.0")  # its HEAD's answer states no quota
        fetched = client.get_manifest(REPO, "2.0")
    assert fetched.digest == sha256_digest(MANIFEST + b" ") and fetched.digest in store.put_digests
    assert [r.url.path.rsplit("/", 1)[-1] for r in sim.registry_requests("HEAD", "manifests")] == ["1.0"]
    assert [r.url.path.rsplit("/", 1)[-1] for r in manifest_gets(sim)][-1] == "2.0"


def test_with_a_store_a_registry_whose_answers_state_a_quota_resolves_every_tag_with_head_first():
    sim, client = elsewhere(Held(), quota_left(50))
    with client:
        client.get_manifest(REPO, "1.0")
        client.get_manifest(REPO, "2.0")
    assert [r.url.path.rsplit("/", 1)[-1] for r in sim.registry_requests("HEAD", "manifests")] == ["1.0", "2.0"]
    assert all(is_digest(r.url.path.rsplit("/", 1)[-1]) for r in manifest_gets(sim))


def test_docker_hub_resolves_tags_with_head_first_even_when_its_answers_state_no_quota(sim):
    with with_store(sim, Held()) as client:
        client.get_manifest(REPO, "1.0")
        client.get_manifest(REPO, "2.0")
    assert len(sim.registry_requests("HEAD", "manifests")) == 2


# -- where collect holds manifests (mirror/collector/known.py, the cache's manifests/sha256) ------------------


def test_the_cache_keeps_manifests_apart_from_blobs_and_hands_them_back_checked(tmp_path):
    cache = BlobCache(tmp_path / "cache")
    digest = sha256_digest(MANIFEST)
    cache.keep_small(digest, MANIFEST)
    assert cache.read_small(digest, 1 << 20) == MANIFEST
    assert not any((tmp_path / "cache" / "blobs" / "sha256").iterdir())  # a blob reuse counts blobs only
    (tmp_path / "cache" / "manifests" / "sha256" / digest.removeprefix("sha256:")).write_bytes(b"tampered")
    assert cache.read_small(digest, 1 << 20) is None
    assert not any((tmp_path / "cache" / "manifests" / "sha256").iterdir())


def test_the_cache_prunes_manifests_unused_like_blobs(tmp_path):
    cache = BlobCache(tmp_path / "cache")
    cache.keep_small(sha256_digest(MANIFEST), MANIFEST)
    assert cache.prune(now=time.time() + 8 * 24 * 3600) == 1


def test_known_manifests_come_from_the_base_bundle_first_then_the_cache(tmp_path):
    base = tmp_path / "base"
    (base / "blobs" / "sha256").mkdir(parents=True)
    digest = sha256_digest(MANIFEST)
    (base / "blobs" / "sha256" / digest.removeprefix("sha256:")).write_bytes(MANIFEST)
    (base / "inventory.json").write_text("{}")
    other = MANIFEST + b"\n"
    cache = BlobCache(tmp_path / "cache")
    cache.keep_small(sha256_digest(other), other)
    known = KnownManifests(cache, base, Limits())
    assert known.get(digest, 1 << 20) == MANIFEST
    assert known.get(sha256_digest(other), 1 << 20) == other
    assert known.get(sha256_digest(b"absent"), 1 << 20) is None
    assert known.reused == 2


def test_an_inventory_file_as_base_holds_no_manifest(tmp_path):
    inventory = tmp_path / "n1.inventory.json"
    inventory.write_text("{}")
    assert KnownManifests(None, inventory, Limits()).get(sha256_digest(MANIFEST), 1 << 20) is None


def _tar_base(tmp_path, members: dict[str, bytes]):
    import io
    import tarfile

    path = tmp_path / "base.tar"
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as archive:
        for name, data in members.items():
            entry = tarfile.TarInfo(name)
            entry.size, entry.mtime = len(data), 0
            archive.addfile(entry, io.BytesIO(data))
    return path


def test_known_manifests_are_read_in_place_from_a_tar_base_each_exactly(tmp_path):
    other = MANIFEST + b"\n" * 3
    blobs = {f"blobs/sha256/{sha256_digest(m).removeprefix('sha256:')}": m for m in (MANIFEST, other)}
    known = KnownManifests(None, _tar_base(tmp_path, {"inventory.json": b"{}", **blobs}), Limits())
    try:
        assert known.get(sha256_digest(other), 1 << 20) == other
        assert known.get(sha256_digest(MANIFEST), 1 << 20) == MANIFEST
        assert known.get(sha256_digest(MANIFEST), len(MANIFEST) - 1) is None  # larger than asked for
        assert known.get(sha256_digest(b"absent"), 1 << 20) is None
        assert known.reused == 2
    finally:
        known.close()
