"""A bundle altered on disk after `mirror serve` verified it is never served wrong: a blob is hashed as it streams
and its last piece is sent only when the whole blob still has its digest, so a client gets an error or a cut
connection, never a complete body with other bytes; the blob is refused from then on. Manifests are served from
the bytes verified at start."""

from __future__ import annotations

import json
import os

import httpx
import pytest

from mirror.limits import Limits
from tests.support.servebundles import ChainBundle, layer_of, manifest_of, serving
from tests.support.signedbundles import as_tar

APP = "registry.example/team/app:1.0"
LAYER = bytes(range(256)) * 256  # 64 KiB
SMALL_CHUNKS = Limits(copy_chunk_bytes=4096)  # the layer streams in 16 pieces


@pytest.fixture
def bundle(tmp_path) -> ChainBundle:
    bundle = ChainBundle(tmp_path / "bundle", "lab")
    bundle.image_with_layer(APP, LAYER)
    bundle.finish()
    return bundle


def _blob_url(url: str, bundle: ChainBundle) -> str:
    return f"{url}/v2/team/app/blobs/{layer_of(bundle, APP)[0]}"


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :]


@pytest.mark.parametrize("at", [0, len(LAYER) // 2, len(LAYER) - 1], ids=["first byte", "middle", "last byte"])
def test_a_blob_altered_after_start_is_cut_short_never_served_whole(bundle, at):
    with serving([bundle.root], limits=SMALL_CHUNKS) as served:
        _, path = layer_of(bundle, APP)
        path.write_bytes(_flip(LAYER, at))

        with pytest.raises(httpx.RemoteProtocolError):
            httpx.get(_blob_url(served.url, bundle))


def test_a_blob_truncated_after_start_is_cut_short(bundle):
    with serving([bundle.root], limits=SMALL_CHUNKS) as served:
        _, path = layer_of(bundle, APP)
        os.truncate(path, len(LAYER) // 2)

        with pytest.raises(httpx.RemoteProtocolError):
            httpx.get(_blob_url(served.url, bundle))


def test_a_blob_replaced_by_another_file_after_start_is_cut_short(bundle):
    with serving([bundle.root], limits=SMALL_CHUNKS) as served:
        _, path = layer_of(bundle, APP)
        replacement = path.with_name("replacement")
        replacement.write_bytes(_flip(LAYER, 100))
        replacement.replace(path)

        with pytest.raises(httpx.RemoteProtocolError):
            httpx.get(_blob_url(served.url, bundle))


def test_a_range_of_an_altered_blob_is_never_served(bundle):
    with serving([bundle.root], limits=SMALL_CHUNKS) as served:
        _, path = layer_of(bundle, APP)
        path.write_bytes(_flip(LAYER, len(LAYER) - 1))  # outside the range asked for

        with pytest.raises(httpx.RemoteProtocolError):
            httpx.get(_blob_url(served.url, bundle), headers={"Range": "bytes=0-9999"})


def test_a_range_within_one_piece_of_an_altered_blob_is_a_500(bundle):
    with serving([bundle.root], limits=SMALL_CHUNKS) as served:
        _, path = layer_of(bundle, APP)
        path.write_bytes(_flip(LAYER, 0))

        response = httpx.get(_blob_url(served.url, bundle), headers={"Range": "bytes=10-19"})

    assert response.status_code == 500 and response.json()["errors"][0]["code"] == "UNKNOWN"


def test_a_blob_once_found_altered_is_refused_from_then_on(bundle):
    with serving([bundle.root], limits=SMALL_CHUNKS) as served:
        _, path = layer_of(bundle, APP)
        path.write_bytes(_flip(LAYER, 0))
        with pytest.raises(httpx.RemoteProtocolError):
            httpx.get(_blob_url(served.url, bundle))
        path.write_bytes(LAYER)  # put back: still refused, the operator must look at the bundle

        again = httpx.get(_blob_url(served.url, bundle))
        head = httpx.head(_blob_url(served.url, bundle))

    assert again.status_code == 500 and "changed on disk" in again.json()["errors"][0]["message"]
    assert head.status_code == 500


def test_the_altered_blob_is_logged_as_an_error(bundle):
    with serving([bundle.root], limits=SMALL_CHUNKS) as served:
        digest, path = layer_of(bundle, APP)
        path.write_bytes(_flip(LAYER, 0))
        with pytest.raises(httpx.RemoteProtocolError):
            httpx.get(_blob_url(served.url, bundle))

    assert any(line.startswith("error: ") and digest in line for line in served.log)


def test_a_small_blob_altered_after_start_is_a_500_before_any_byte(bundle):
    config = json.loads(manifest_of(bundle, APP)[1])["config"]["digest"]
    with serving([bundle.root], limits=SMALL_CHUNKS) as served:
        path = bundle.root / "blobs" / "sha256" / config.removeprefix("sha256:")
        path.write_bytes(path.read_bytes().replace(b"amd64", b"arm64"))

        response = httpx.get(f"{served.url}/v2/team/app/blobs/{config}")

    assert response.status_code == 500


def test_a_blob_swapped_for_a_symbolic_link_is_refused(bundle, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_bytes(LAYER)
    with serving([bundle.root], limits=SMALL_CHUNKS) as served:
        _, path = layer_of(bundle, APP)
        path.unlink()
        path.symlink_to(elsewhere)

        response = httpx.get(_blob_url(served.url, bundle))

    assert response.status_code == 500


def test_a_tar_bundle_altered_after_start_is_cut_short(bundle, tmp_path):
    tar = as_tar(bundle.root, tmp_path / "lab.tar")
    with serving([tar], limits=SMALL_CHUNKS) as served:
        data = tar.read_bytes()
        at = data.index(LAYER[:4096]) + 5000
        tar.write_bytes(_flip(data, at))

        with pytest.raises(httpx.RemoteProtocolError):
            httpx.get(_blob_url(served.url, bundle))


def test_a_manifest_altered_on_disk_is_still_served_as_verified(bundle):
    digest, raw = manifest_of(bundle, APP)
    with serving([bundle.root], limits=SMALL_CHUNKS) as served:
        (bundle.root / "blobs" / "sha256" / digest.removeprefix("sha256:")).write_bytes(raw.replace(b"2", b"3"))

        response = httpx.get(f"{served.url}/v2/team/app/manifests/1.0")

    assert response.content == raw


def test_an_intact_blob_streams_whole_in_many_pieces(bundle):
    with serving([bundle.root], limits=SMALL_CHUNKS) as served:
        assert httpx.get(_blob_url(served.url, bundle)).content == LAYER
