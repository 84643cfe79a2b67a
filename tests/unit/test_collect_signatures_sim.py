"""A whole collect with `spec.verify` against the registry simulator: when the check runs (before the image
layers are downloaded), and an index narrowed by a platform filter, whose signatures are over the upstream index."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from mirror.bundle.inventory import parse_inventory
from mirror.collector.run import collect
from mirror.errors import VerificationError
from mirror.supplychain import codes
from mirror.supplychain.cosign import cosign_key_from_pem
from tests.support import cosign
from tests.unit.attached_upstream import UPSTREAM, Upstream


def write_set(tmp_path: Path, images: list[str], **spec: Any) -> Path:
    path = tmp_path / "set.yaml"
    body = {"images": images, "verify": [{"match": f"{UPSTREAM}/*", "key": "upstream.pub"}], **spec}
    path.write_text(
        yaml.safe_dump({"apiVersion": "mirror/v1", "kind": "MirrorSet", "metadata": {"name": "s"}, "spec": body})
    )
    return path


@pytest.fixture
def key(tmp_path: Path) -> cosign.PrivateKey:
    private = cosign.generate_key()
    cosign.write_public_key(private, tmp_path / "upstream.pub")
    return private


def sign(upstream: Upstream, repository: str, digest: str, key: cosign.PrivateKey) -> None:
    manifest = cosign.signature_manifest([cosign.signed_layer(key, f"{UPSTREAM}/{repository}", digest)])
    upstream.sim.add_artifact(repository, manifest.raw, manifest.blobs, tag=cosign.cosign_tag(digest))


def test_an_unsigned_image_is_refused_before_any_layer_is_downloaded(tmp_path, key):
    upstream = Upstream()
    upstream.image("team/app", "1.0")
    with pytest.raises(VerificationError) as caught:
        collect(
            [write_set(tmp_path, [f"{UPSTREAM}/team/app:1.0"])], tmp_path / "out", transport=upstream.sim.transport()
        )
    assert [p.code for p in caught.value.problems] == [codes.SIGNATURE_MISSING]
    assert upstream.sim.registry_requests("GET", "blobs") == []
    assert not (tmp_path / "out").exists()


def test_an_index_narrowed_by_a_platform_filter_counts_the_upstream_index_s_signature(tmp_path, key):
    upstream = Upstream()
    index = upstream.index("team/multi", "2.0")
    sign(upstream, "team/multi", index, key)
    manifest = write_set(tmp_path, [f"{UPSTREAM}/team/multi:2.0"], platforms=["linux/amd64"])
    result = collect([manifest], tmp_path / "out", transport=upstream.sim.transport())
    [image] = [a for a in parse_inventory((result.out / "inventory.json").read_bytes()).artifacts if a.kind == "image"]
    assert image.extra["sourceDigest"] == index and image.digest != index
    assert image.extra["signers"] == [{"key": cosign_key_from_pem(cosign.public_pem(key), "k").key_id}]
