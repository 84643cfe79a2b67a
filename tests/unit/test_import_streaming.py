"""An import streams its big blobs into upload sessions while it hashes them, and finishes none before the whole
bundle verified (issue 19), on the registry simulator: how many sessions wait, what a refusal leaves behind.
See docs/importer.md ("The transaction")."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from mirror.errors import IntegrityError
from mirror.importer.run import import_bundle
from mirror.limits import DEFAULT_LIMITS, Limits
from tests.support.images import sha256_digest
from tests.support.signedbundles import SmallBundle
from tests.unit.registry_sim import RegistrySim

HOST = "reg.test"
STREAMED = replace(DEFAULT_LIMITS, stream_upload_min_bytes=4096, upload_chunk_bytes=2048)
LAYERS = [b"a" * 5000, b"b" * 6000, b"c" * 7000, b"small"]


def bundle_of(root: Path, layers: list[bytes]) -> Path:
    bundle = SmallBundle(root)
    for index, layer in enumerate(layers):
        bundle.image(f"registry.example/app{index}:1", layer=layer)
    bundle.finish()
    return bundle.root


def run_import(bundle: Path, sim: RegistrySim, limits: Limits, **options: object):
    return import_bundle(
        bundle, f"https://{HOST}", allow_unsigned=True, transport=sim.transport(), limits=limits, **options
    )


def finishing_put(request) -> bool:
    return request.method == "PUT" and "/blobs/uploads/" in request.url.path and b"digest=" in request.url.query


def sessions_patched_before_the_first_commit(sim: RegistrySim) -> set[str]:
    sessions: set[str] = set()
    for request in sim.registry_requests():
        if finishing_put(request) or ("/manifests/" in request.url.path and request.method == "PUT"):
            break
        if request.method == "PATCH":
            sessions.add(request.url.path)
    return sessions


def test_every_big_blob_is_streamed_before_any_upload_is_finished(tmp_path) -> None:
    sim = RegistrySim(HOST)

    run_import(bundle_of(tmp_path / "b", LAYERS), sim, STREAMED, jobs=1)

    assert len(sessions_patched_before_the_first_commit(sim)) == 3
    assert all(sha256_digest(layer) in sim.blobs[f"app{i}"] for i, layer in enumerate(LAYERS))
    assert all("1" in sim.manifests[f"app{i}"] for i in range(len(LAYERS)))


def test_at_most_max_open_uploads_sessions_wait_for_the_commit(tmp_path) -> None:
    sim = RegistrySim(HOST)

    run_import(bundle_of(tmp_path / "b", LAYERS), sim, replace(STREAMED, max_open_uploads=1), jobs=2)

    assert len(sessions_patched_before_the_first_commit(sim)) == 1
    assert all(sha256_digest(layer) in sim.blobs[f"app{i}"] for i, layer in enumerate(LAYERS))


def test_a_corrupt_big_blob_refuses_the_bundle_and_leaves_no_blob_manifest_or_session(tmp_path) -> None:
    bundle = bundle_of(tmp_path / "b", LAYERS)
    damaged = bundle / "blobs" / "sha256" / sha256_digest(LAYERS[1]).removeprefix("sha256:")
    damaged.write_bytes(LAYERS[1][:-1] + b"X")
    sim = RegistrySim(HOST)

    with pytest.raises(IntegrityError) as refused:
        run_import(bundle, sim, STREAMED, jobs=2)

    assert [p.code for p in refused.value.problems] == ["FILE_DIGEST"]
    assert sim.registry_requests("PATCH"), "the big blobs were streamed while they were hashed"
    assert not [r for r in sim.registry_requests() if finishing_put(r)]
    assert not any(sim.blobs.values()) and not any(sim.manifests.values())
    assert sim.uploads == {}, "every session was cancelled"


def test_a_dry_run_hashes_the_big_blobs_and_sends_none(tmp_path) -> None:
    bundle = bundle_of(tmp_path / "b", LAYERS)
    damaged = bundle / "blobs" / "sha256" / sha256_digest(LAYERS[2]).removeprefix("sha256:")
    damaged.write_bytes(LAYERS[2][:-1] + b"X")
    sim = RegistrySim(HOST)

    with pytest.raises(IntegrityError):
        run_import(bundle, sim, STREAMED, dry_run=True)

    assert not sim.registry_requests("POST") and not sim.registry_requests("PATCH")


def test_a_big_blob_that_grows_after_its_size_was_checked_refuses_the_bundle_and_leaves_no_session(
    tmp_path, monkeypatch
) -> None:
    import mirror.importer.streaming as streaming

    bundle = bundle_of(tmp_path / "b", LAYERS)
    grown = bundle / "blobs" / "sha256" / sha256_digest(LAYERS[0]).removeprefix("sha256:")
    real_opened = streaming.opened

    def opened_after_growth(reader, path):
        if path.endswith(grown.name):
            with grown.open("ab") as handle:
                handle.write(b"more")
        return real_opened(reader, path)

    monkeypatch.setattr(streaming, "opened", opened_after_growth)
    sim = RegistrySim(HOST)

    with pytest.raises(IntegrityError) as refused:
        run_import(bundle, sim, STREAMED, jobs=1)

    assert [p.code for p in refused.value.problems] == ["FILE_SIZE"]
    assert grown.name in refused.value.problems[0].message
    assert sim.registry_requests("PATCH"), "the grown blob was streamed up to its size"
    assert not [r for r in sim.registry_requests() if finishing_put(r)]
    assert not any(sim.blobs.values()) and not any(sim.manifests.values())
    assert sim.uploads == {}, "every session was cancelled, the grown blob's too"
