"""Tag resolution against registries whose quota statements are partial: stated only on the GETs they count,
from the middle of a run on, or below the reserve while several threads resolve tags at once. Whatever a registry
leaves unsaid, no manifest GET is sent that the HEAD-first path would not have sent once a quota was seen, and a
HEAD's silence is not read as "GETs are not counted" (docs/collector.md, "Pull quotas").

Against the in-process simulator (tests/unit/registry_sim.py).
"""

from __future__ import annotations

import threading

import httpx

from mirror.errors import RateLimitedError
from mirror.oci.digest import is_digest, sha256_digest
from mirror.parallel import run_parallel
from mirror.registry.client import RegistryClient
from mirror.registry.endpoint import Endpoint
from tests.unit.registry_sim import RegistrySim
from tests.unit.test_pull_quota_accounting import MANIFEST, REPO, RESERVE, Held, quota_left

TAGS = [f"{n}.0" for n in range(8)]


def registry(held: Held) -> tuple[RegistrySim, RegistryClient]:
    """A registry other than Docker Hub with a manifest under each of TAGS, and collect's client of it."""
    sim = RegistrySim("reg.test")
    for n, tag in enumerate(TAGS):
        sim.add_manifest(REPO, MANIFEST + b" " * n, tag=tag)
    endpoint = Endpoint("reg.test", "https", sim.host)
    client = RegistryClient(endpoint, None, RESERVE, transport=sim.transport(), sleep=lambda _: None, manifests=held)
    return sim, client


def all_held() -> Held:
    return Held({sha256_digest(MANIFEST + b" " * n): MANIFEST + b" " * n for n in range(len(TAGS))})


def is_manifest_get(request: httpx.Request) -> bool:
    return request.method == "GET" and "/manifests/" in request.url.path


def manifest_gets(sim: RegistrySim) -> list[str]:
    return [r.url.path.rsplit("/", 1)[-1] for r in sim.registry_requests("GET", "manifests")]


def test_a_registry_stating_its_quota_only_on_the_gets_it_counts_spends_no_get_on_manifests_held():
    sim, client = registry(all_held())
    sim.answer_headers = lambda request: quota_left(3) if is_manifest_get(request) else {}
    with client:
        for tag in TAGS:
            client.get_manifest(REPO, tag)
    # Each HEAD answered without a quota, as HEADs are never counted: that says nothing about the GETs, and the
    # quota below the reserve is never learnt because no GET is ever needed.
    assert manifest_gets(sim) == []


def test_a_registry_that_starts_stating_a_quota_mid_run_has_its_tags_resolved_with_head_first_again():
    sim, client = registry(Held())
    stating = threading.Event()
    sim.answer_headers = lambda request: quota_left(50) if stating.is_set() else {}
    with client:
        client.get_manifest(REPO, TAGS[0])  # answered without a quota: the next tag costs one GET by tag
        client.get_manifest(REPO, TAGS[1])
        stating.set()
        client.get_manifest(REPO, TAGS[2])  # this GET by tag states one
        for tag in TAGS[3:]:
            client.get_manifest(REPO, tag)
    assert manifest_gets(sim)[:3] == [sha256_digest(MANIFEST), TAGS[1], TAGS[2]]
    assert all(is_digest(reference) for reference in manifest_gets(sim)[3:])  # by the digest a HEAD named
    heads = [r.url.path.rsplit("/", 1)[-1] for r in sim.registry_requests("HEAD", "manifests")]
    assert heads == [TAGS[0], *TAGS[3:]]


def test_four_threads_resolving_tags_on_a_registry_below_the_reserve_send_no_manifest_get():
    sim, client = registry(Held())
    sim.answer_headers = lambda request: quota_left(3)

    def resolve(tag: str) -> str:
        try:
            client.get_manifest(REPO, tag)
        except RateLimitedError:
            return "refused"
        return "fetched"

    with client:
        outcomes = run_parallel(TAGS, resolve, 4)
    assert outcomes == ["refused"] * len(TAGS)
    assert manifest_gets(sim) == []


def test_once_a_get_by_tag_states_a_quota_below_the_reserve_no_further_manifest_get_is_sent():
    sim, client = registry(Held())
    stating = threading.Event()
    sim.answer_headers = lambda request: quota_left(3) if stating.is_set() else {}
    with client:
        client.get_manifest(REPO, TAGS[0])  # answered without a quota: tags are fetched with one GET from now
        stating.set()
        client.get_manifest(REPO, TAGS[1])  # its answer says 3 are left: it is used, nothing more is fetched
        refused = 0
        for tag in TAGS[2:]:
            try:
                client.get_manifest(REPO, tag)
            except RateLimitedError:
                refused += 1
    assert refused == len(TAGS) - 2
    assert manifest_gets(sim) == [sha256_digest(MANIFEST), TAGS[1]]
