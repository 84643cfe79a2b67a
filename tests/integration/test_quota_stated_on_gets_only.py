"""A registry that states its pull quota only on the manifest GETs it counts (its HEADs, never counted, state
none), behind the counting proxy of test_pull_quota.py: a HEAD's silence is not read as "GETs are not counted",
so a nothing-changed night still sends no manifest GET, even once the quota is below the reserve."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.test_pull_quota import Upstream, collect, night, write_set
from tests.support.hostile import HostileServer, Request
from tests.support.hostile.forwarding import forward_to


@pytest.fixture
def signed(services, tmp_path: Path) -> Iterator[Upstream]:
    made = Upstream(services, tmp_path)
    yield made
    made.attacher.close()


def test_a_nothing_changed_night_sends_no_manifest_get_to_a_registry_stating_its_quota_on_gets_only(
    mirror_cli, tmp_path, signed, services
):
    left = ["9000"]

    def on_gets(request: Request) -> dict[str, str]:
        if request.method == "GET" and "/manifests/" in request.path:
            return {"ratelimit-limit": "10000;w=21600", "ratelimit-remaining": f"{left[0]};w=21600"}
        return {}

    with HostileServer(forward_to(f"http://{services.upstream}", extra_headers=on_gets)) as proxy:
        manifest = write_set(tmp_path, signed, proxy)
        collect(mirror_cli, manifest, tmp_path / "n1")
        left[0] = "3"  # below the reserve (10): a GET now would spend a pull kept for others

        second, gets, heads = night(
            proxy, lambda: collect(mirror_cli, manifest, tmp_path / "n2", "--since", tmp_path / "n1")
        )

    assert gets == []
    assert len(heads) == 6, heads  # each image's tag, the tag schema's and the two cosign tags
    assert second["movedTags"] == []
