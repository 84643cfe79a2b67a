"""mirror collect and resolve against a real CNCF distribution upstream."""

from __future__ import annotations

import hashlib
import json
import subprocess
import tarfile
from pathlib import Path

from mirror.bundle.inventory import parse_inventory
from tests.support.images import skopeo_copy
from tests.support.services import UPSTREAM_REGISTRY

UPSTREAM_SETTINGS = {UPSTREAM_REGISTRY: {"plainHTTP": True}}


def _index(bundle: Path) -> list[dict]:
    return json.loads((bundle / "index.json").read_text())["manifests"]


def _inventory(bundle: Path):
    return parse_inventory((bundle / "inventory.json").read_bytes())


def _blob(bundle: Path, digest: str) -> bytes:
    return (bundle / "blobs" / "sha256" / digest.removeprefix("sha256:")).read_bytes()


def _collect(mirror_cli, manifest: Path, out: Path):
    result = mirror_cli("collect", manifest, "-o", out, "--json", "-q")
    assert result.exit_code == 0, result.stderr
    return result.json()


def test_multi_arch_index_is_collected_whole_with_its_digest(tmp_path, mirror_cli, write_mirrorset, upstream_images):
    multi = upstream_images["multi"]
    bundle = tmp_path / "b"
    _collect(mirror_cli, write_mirrorset([multi["ref"]], registries=UPSTREAM_SETTINGS), bundle)

    [entry] = _index(bundle)
    assert entry["digest"] == multi["digest"]
    index = json.loads(_blob(bundle, multi["digest"]))
    assert {m["digest"] for m in index["manifests"]} == set(multi["platforms"].values())
    for child in multi["platforms"].values():
        manifest = json.loads(_blob(bundle, child))
        for layer in manifest["layers"]:
            assert hashlib.sha256(_blob(bundle, layer["digest"])).hexdigest() == layer["digest"][7:]


def test_platform_filter_narrows_the_index_and_keeps_child_digests(
    tmp_path, mirror_cli, write_mirrorset, upstream_images
):
    multi = upstream_images["multi"]
    bundle = tmp_path / "b"
    manifest = write_mirrorset([{"ref": multi["ref"], "platforms": ["linux/arm64"]}], registries=UPSTREAM_SETTINGS)
    summary = _collect(mirror_cli, manifest, bundle)

    [artifact] = summary["artifacts"]
    assert artifact["sourceDigest"] == multi["digest"]
    assert artifact["digest"] != multi["digest"]
    assert artifact["platforms"] == ["linux/arm64/v8"]
    narrowed = json.loads(_blob(bundle, artifact["digest"]))
    assert [m["digest"] for m in narrowed["manifests"]] == [multi["platforms"]["linux/arm64/v8"]]
    amd64 = multi["platforms"]["linux/amd64"].removeprefix("sha256:")
    assert not (bundle / "blobs" / "sha256" / amd64).exists()


def test_spec_wide_platform_filter_applies_to_every_index(tmp_path, mirror_cli, write_mirrorset, upstream_images):
    manifest = write_mirrorset(
        [upstream_images["multi"]["ref"], upstream_images["dockerlist"]["ref"]],
        registries=UPSTREAM_SETTINGS,
        platforms=["linux/amd64"],
    )
    summary = _collect(mirror_cli, manifest, tmp_path / "b")
    assert [a["platforms"] for a in summary["artifacts"]] == [["linux/amd64"], ["linux/amd64"]]


def test_platform_filter_matching_nothing_is_refused_naming_the_offer(
    tmp_path, mirror_cli, write_mirrorset, upstream_images
):
    manifest = write_mirrorset(
        [{"ref": upstream_images["multi"]["ref"], "platforms": ["linux/s390x"]}], registries=UPSTREAM_SETTINGS
    )
    result = mirror_cli("collect", manifest, "-o", tmp_path / "b")
    assert result.exit_code == 2
    assert "linux/s390x" in result.stderr and "linux/arm/v7" in result.stderr
    assert not (tmp_path / "b").exists()


def test_docker_schema2_image_keeps_its_media_type_and_digest(tmp_path, mirror_cli, write_mirrorset, upstream_images):
    docker = upstream_images["docker"]
    bundle = tmp_path / "b"
    _collect(mirror_cli, write_mirrorset([docker["ref"]], registries=UPSTREAM_SETTINGS), bundle)

    [entry] = _index(bundle)
    assert entry["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
    assert entry["digest"] == docker["digest"]
    assert hashlib.sha256(_blob(bundle, docker["digest"])).hexdigest() == docker["digest"][7:]


def test_docker_manifest_list_is_collected_with_its_children(tmp_path, mirror_cli, write_mirrorset, upstream_images):
    listing = upstream_images["dockerlist"]
    bundle = tmp_path / "b"
    _collect(mirror_cli, write_mirrorset([listing["ref"]], registries=UPSTREAM_SETTINGS), bundle)
    [entry] = _index(bundle)
    assert entry["mediaType"] == "application/vnd.docker.distribution.manifest.list.v2+json"
    for child in listing["platforms"].values():
        assert json.loads(_blob(bundle, child))["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"


def test_digest_pinned_reference_is_fetched_by_digest(tmp_path, mirror_cli, write_mirrorset, upstream_images):
    app = upstream_images["app_1"]
    pinned = f"{UPSTREAM_REGISTRY}/{app['repository']}@{app['digest']}"
    summary = _collect(mirror_cli, write_mirrorset([pinned], registries=UPSTREAM_SETTINGS), tmp_path / "b")
    [artifact] = summary["artifacts"]
    assert artifact["source"] == pinned
    assert artifact["digest"] == app["digest"]


def test_tag_and_digest_reference_is_pinned_by_the_digest(tmp_path, mirror_cli, write_mirrorset, upstream_images):
    one, two = upstream_images["app_1"], upstream_images["app_2"]
    # The tag names 2.0 but the digest is 1.0's: the digest decides what is carried.
    reference = f"{UPSTREAM_REGISTRY}/{two['repository']}:{two['tag']}@{one['digest']}"
    summary = _collect(mirror_cli, write_mirrorset([reference], registries=UPSTREAM_SETTINGS), tmp_path / "b")
    assert summary["artifacts"][0]["digest"] == one["digest"]


def test_shared_layers_are_stored_once(tmp_path, mirror_cli, write_mirrorset, upstream_images):
    a, b = upstream_images["shared_a"], upstream_images["shared_b"]
    bundle = tmp_path / "b"
    _collect(mirror_cli, write_mirrorset([a["ref"], b["ref"]], registries=UPSTREAM_SETTINGS), bundle)

    shared = a["shared_layer"]
    assert shared == b["shared_layer"]
    listed = [f.path for f in _inventory(bundle).files]
    assert listed.count(f"blobs/sha256/{shared[7:]}") == 1
    layers = [json.loads(_blob(bundle, d))["layers"] for d in (a["digest"], b["digest"])]
    assert shared in {layer["digest"] for layer in layers[0]} & {layer["digest"] for layer in layers[1]}


def test_inventory_lists_every_file_with_its_sha256_and_size(tmp_path, mirror_cli, write_mirrorset, upstream_images):
    bundle = tmp_path / "b"
    _collect(mirror_cli, write_mirrorset([upstream_images["multi"]["ref"]], registries=UPSTREAM_SETTINGS), bundle)
    on_disk = {str(p.relative_to(bundle)) for p in bundle.rglob("*") if p.is_file()} - {"inventory.json"}
    inventory = _inventory(bundle)
    assert {f.path for f in inventory.files} == on_disk
    for record in inventory.files:
        data = (bundle / record.path).read_bytes()
        assert (hashlib.sha256(data).hexdigest(), len(data)) == (record.sha256, record.size)


def test_tar_output_is_plain_ustar_of_regular_files_and_directories(
    tmp_path, mirror_cli, write_mirrorset, upstream_images
):
    out = tmp_path / "bundle.tar"
    _collect(mirror_cli, write_mirrorset([upstream_images["multi"]["ref"]], registries=UPSTREAM_SETTINGS), out)

    with tarfile.open(out) as tar:
        members = tar.getmembers()
    assert members[-1].name == "inventory.json"  # blobs first: the inventory is known once they are all in
    assert all(m.isreg() or m.isdir() for m in members)
    assert all(not m.pax_headers for m in members)
    with open(out, "rb") as handle:
        first_header = handle.read(512)
    assert first_header[257:265] == b"ustar\x0000"
    assert not [p for p in tmp_path.iterdir() if ".partial" in p.name]


def test_skopeo_and_umoci_read_the_bundle_layout(tmp_path, mirror_cli, write_mirrorset, upstream_images):
    multi, app = upstream_images["multi"], upstream_images["app_1"]
    bundle = tmp_path / "b"
    _collect(mirror_cli, write_mirrorset([multi["ref"], app["ref"]], registries=UPSTREAM_SETTINGS), bundle)

    raw = subprocess.run(
        ["skopeo", "inspect", "--raw", f"oci:{bundle}:{multi['ref']}"], capture_output=True, check=True
    ).stdout
    assert "sha256:" + hashlib.sha256(raw).hexdigest() == multi["digest"]
    skopeo_copy(f"oci:{bundle}:{app['ref']}", f"oci:{tmp_path / 'copy'}:x")
    listing = subprocess.run(["umoci", "ls", "--layout", str(bundle)], capture_output=True, text=True, check=True)
    assert set(listing.stdout.split()) == {multi["ref"], app["ref"]}


def test_skopeo_reads_the_tar_bundle_as_an_oci_archive(tmp_path, mirror_cli, write_mirrorset, upstream_images):
    app = upstream_images["app_1"]
    out = tmp_path / "bundle.tar"
    _collect(mirror_cli, write_mirrorset([app["ref"]], registries=UPSTREAM_SETTINGS), out)
    raw = subprocess.run(
        ["skopeo", "inspect", "--raw", f"oci-archive:{out}:{app['ref']}"], capture_output=True, check=True
    ).stdout
    assert "sha256:" + hashlib.sha256(raw).hexdigest() == app["digest"]


def test_resolve_prints_the_lock_without_writing_a_bundle(tmp_path, mirror_cli, write_mirrorset, upstream_images):
    multi = upstream_images["multi"]
    result = mirror_cli("resolve", write_mirrorset([multi["ref"]], registries=UPSTREAM_SETTINGS), "--json")
    assert result.exit_code == 0, result.stderr
    lock = result.json()
    assert lock["artifacts"] == [
        {
            "kind": "image",
            "source": multi["ref"],
            "digest": multi["digest"],
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "size": multi["size"],
            "platforms": list(multi["platforms"]),
            "via": "listed",
        }
    ]
    assert [p.suffix for p in tmp_path.iterdir()] == [".yaml"]


def test_endpoint_override_fetches_through_another_host_and_keeps_identity(
    tmp_path, mirror_cli, write_mirrorset, upstream_images
):
    app = upstream_images["app_1"]
    # ghcr.example is never contacted: its endpoint is the upstream, under the repository prefix "fixtures".
    manifest = write_mirrorset(
        ["ghcr.example/app:1.0"], registries={"ghcr.example": {"endpoint": f"http://{UPSTREAM_REGISTRY}/fixtures"}}
    )
    summary = _collect(mirror_cli, manifest, tmp_path / "b")
    assert summary["artifacts"][0]["source"] == "ghcr.example/app:1.0"
    assert summary["artifacts"][0]["digest"] == app["digest"]
