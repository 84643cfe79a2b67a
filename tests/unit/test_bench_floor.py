"""tests/support/benchfloor.py: the requests the night's floor sends are those of a nothing-changed night."""

from __future__ import annotations

from mirror.oci import mediatypes as mt
from tests.support.benchfloor import night_requests_config

REFERENCES = ["registry.test:5000/night/img0:1", "registry.test:5000/night/img1:1", "registry.test:5000/night/img1:2"]


def _requests(config: str) -> list[tuple[bool, str]]:
    """(is a HEAD, url) per request of a curl config, requests separated by `next`."""
    requests = []
    for block in config.split("\nnext\n")[1:]:
        lines = block.splitlines()
        url = next(line.split('"')[1] for line in lines if line.startswith("url = "))
        requests.append(("head" in lines, url))
    return requests


def test_the_night_floor_heads_each_image_lists_each_repository_once_and_probes_referrers_once() -> None:
    requests = _requests(night_requests_config(REFERENCES))
    assert requests == [
        (True, "http://registry.test:5000/v2/night/img0/manifests/1"),
        (True, "http://registry.test:5000/v2/night/img1/manifests/1"),
        (True, "http://registry.test:5000/v2/night/img1/manifests/2"),
        (False, "http://registry.test:5000/v2/night/img0/tags/list"),
        (False, "http://registry.test:5000/v2/night/img1/tags/list"),
        (False, "http://registry.test:5000/v2/night/img0/referrers/sha256:" + "0" * 64),
    ]


def test_every_request_of_the_night_floor_asks_for_manifests_as_mirror_does() -> None:
    blocks = night_requests_config(REFERENCES).split("\nnext\n")[1:]
    assert len(blocks) == 6
    assert all(f'header = "Accept: {mt.ACCEPT}"' in block.splitlines() for block in blocks)
