"""A whole collect and a whole import, run against the in-process registry simulator.

The network is the only thing replaced: `collect` and `import_bundle` take an httpx transport that stands in
for the real one, and every client above it (pool, registry client, auth, digest checks) runs as in production.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import pytest
import yaml

from mirror.collector.run import CollectorSigning, collect
from mirror.importer.run import import_bundle
from mirror.oci import mediatypes as mt
from mirror.trust.keys import generate, load_signer
from tests.support.mirrorsets import write_mirrorset
from tests.unit.registry_sim import RegistrySim

UPSTREAM = "upstream.test"
INTERNAL = "internal.test"


def _json(body: dict[str, object]) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


def _push_image(sim: RegistrySim, repository: str, salt: str) -> tuple[str, int]:
    """A single-platform image (config and one layer) in `repository`; returns its manifest digest and size."""
    config = _json({"architecture": "amd64", "os": "linux", "salt": salt, "rootfs": {"type": "layers"}})
    layer = f"layer of {salt}".encode() * 100
    manifest = _json(
        {
            "schemaVersion": 2,
            "mediaType": mt.OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": sim.add_blob(repository, config),
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": sim.add_blob(repository, layer),
                    "size": len(layer),
                }
            ],
        }
    )
    return sim.add_manifest(repository, manifest), len(manifest)


def _upstream() -> tuple[RegistrySim, dict[str, str]]:
    """app:1.0 (one platform) and multi:2.0 (an index of linux/amd64 and linux/arm64); their digests by tag."""
    sim = RegistrySim(UPSTREAM)
    app, _ = _push_image(sim, "team/app", "app")
    sim.manifests["team/app"]["1.0"] = sim.manifests["team/app"][app]
    entries = []
    for arch in ("amd64", "arm64"):
        digest, size = _push_image(sim, "team/multi", arch)
        entries.append(
            {
                "mediaType": mt.OCI_MANIFEST,
                "digest": digest,
                "size": size,
                "platform": {"os": "linux", "architecture": arch},
            }
        )
    index = _json({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": entries})
    multi = sim.add_manifest("team/multi", index, mt.OCI_INDEX, tag="2.0")
    return sim, {"team/app:1.0": app, "team/multi:2.0": multi}


@pytest.fixture
def collector_key(tmp_path: Path) -> tuple[Path, Path]:
    keys = tmp_path / "keys"
    keys.mkdir()
    cwd = Path.cwd()
    os.chdir(keys)
    try:
        key, pub, _ = generate("collector", env={})
    finally:
        os.chdir(cwd)
    return keys / key, keys / pub


def _collect(tmp_path: Path, upstream: RegistrySim, key: Path) -> Path:
    mirrorset = write_mirrorset(
        tmp_path / "mirrorset.yaml",
        [f"{UPSTREAM}/team/app:1.0", f"{UPSTREAM}/team/multi:2.0"],
        platforms=["linux/amd64", "linux/arm64"],
    )
    signing = CollectorSigning(load_signer(key, env={}), "collector", 1, dt.timedelta(days=7))
    out = tmp_path / "bundle"
    collect([mirrorset], out, signing=signing, transport=upstream.transport())
    return out


def _policy(tmp_path: Path, pub: Path) -> Path:
    policy = tmp_path / "trust" / "policy.yaml"
    policy.parent.mkdir()
    document = {
        "apiVersion": "mirror/v1",
        "kind": "TrustPolicy",
        "collectors": {"keys": [str(pub)], "threshold": 1},
        "approvers": {"keys": [], "threshold": 0},
        "maxAge": "14d",
        "stateFile": "state.json",
    }
    policy.write_text(yaml.safe_dump(document))
    return policy


def test_collect_on_the_simulator_writes_a_signed_bundle_of_every_image_and_platform(
    tmp_path: Path, collector_key: tuple[Path, Path]
) -> None:
    upstream, digests = _upstream()
    bundle = _collect(tmp_path, upstream, collector_key[0])

    inventory = json.loads((bundle / "inventory.json").read_bytes())
    carried = {a["source"]: a["digest"] for a in inventory["artifacts"]}
    assert carried == {f"{UPSTREAM}/{ref}": digest for ref, digest in digests.items()}
    blobs = {p.name for p in (bundle / "blobs" / "sha256").iterdir()}
    every_blob = {d.removeprefix("sha256:") for repo in upstream.blobs.values() for d in repo}
    assert every_blob <= blobs  # both platforms of the index, and the single image
    assert len(list((bundle / "signatures").glob("*.json"))) == 1


def test_import_on_the_simulator_lands_every_digest_and_tag_under_the_trust_policy(
    tmp_path: Path, collector_key: tuple[Path, Path]
) -> None:
    upstream, digests = _upstream()
    bundle = _collect(tmp_path, upstream, collector_key[0])
    internal = RegistrySim(INTERNAL)

    report = import_bundle(
        bundle, f"https://{INTERNAL}", trust=_policy(tmp_path, collector_key[1]), transport=internal.transport()
    )

    assert report.trust is not None and report.trust["sequence"] == 1
    for reference, digest in digests.items():
        repository, tag = reference.split(":")
        landed = internal.manifests[repository]  # the source path, without the upstream host
        assert digest in landed
        assert landed[tag] == landed[digest]
    landed_blobs = {d for repo in internal.blobs.values() for d in repo}
    assert landed_blobs == {d for repo in upstream.blobs.values() for d in repo}


def test_the_inventory_names_the_mirrorsets_collected_and_the_hosts_reached_over_plain_http(tmp_path: Path) -> None:
    upstream, _ = _upstream()
    platform = write_mirrorset(
        tmp_path / "platform.yaml",
        [f"{UPSTREAM}/team/app:1.0"],
        name="platform",
        registries={UPSTREAM: {"plainHTTP": True}},
    )
    apps = write_mirrorset(tmp_path / "apps.yaml", [f"{UPSTREAM}/team/multi:2.0"], name="apps")

    collect([platform, apps], tmp_path / "bundle", transport=upstream.transport())

    inventory = json.loads((tmp_path / "bundle" / "inventory.json").read_bytes())
    assert inventory["mirrorSets"] == ["platform", "apps"]
    assert inventory["hosts"] == [{"host": UPSTREAM, "how": "named", "plainHTTP": True}]
