"""The import's verification in two parts (issue 19): every check but the hashing of the big image blobs, which
are left in `deferred` for the import to hash while it uploads them; see docs/importer.md ("The transaction")."""

from __future__ import annotations

from pathlib import Path

from mirror.bundle.inventory import blob_path
from mirror.bundle.opening import open_bundle
from mirror.bundle.verify import check_bundle, finish_deferred
from mirror.limits import DEFAULT_LIMITS
from tests.support.images import sha256_digest
from tests.support.signedbundles import SmallBundle

BIG = 4096


def bundle_with_big_layers(root: Path, *layers: bytes) -> SmallBundle:
    bundle = SmallBundle(root)
    for index, layer in enumerate(layers):
        bundle.image(f"registry.example/app{index}:1", layer=layer)
    bundle.finish()
    return bundle


def corrupt_last_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


def layer_file(bundle: SmallBundle, layer: bytes) -> Path:
    return bundle.root / blob_path(sha256_digest(layer))


def test_big_image_blobs_are_left_unhashed_and_everything_else_is_checked(tmp_path) -> None:
    big = b"b" * BIG
    bundle = bundle_with_big_layers(tmp_path / "b", big)
    corrupt_last_byte(layer_file(bundle, big))

    checked = check_bundle(open_bundle(bundle.root), defer_from=BIG)

    assert checked.problems == []
    assert [record.path for record in checked.deferred] == [str(layer_file(bundle, big).relative_to(bundle.root))]
    assert [p.code for p in finish_deferred(checked, jobs=2, limits=DEFAULT_LIMITS)] == ["FILE_DIGEST"]


def test_small_blobs_are_hashed_at_once(tmp_path) -> None:
    small = b"s" * (BIG - 1)
    bundle = bundle_with_big_layers(tmp_path / "b", small)
    corrupt_last_byte(layer_file(bundle, small))

    checked = check_bundle(open_bundle(bundle.root), defer_from=BIG)

    assert [p.code for p in checked.problems] == ["FILE_DIGEST"]
    assert checked.deferred == []


def test_a_bundle_refused_already_hashes_its_big_blobs_too_so_every_problem_is_listed(tmp_path) -> None:
    small, big = b"s" * 10, b"b" * BIG
    bundle = bundle_with_big_layers(tmp_path / "b", small, big)
    corrupt_last_byte(layer_file(bundle, small))
    corrupt_last_byte(layer_file(bundle, big))

    checked = check_bundle(open_bundle(bundle.root), defer_from=BIG)

    assert [p.code for p in checked.problems] == ["FILE_DIGEST", "FILE_DIGEST"]
    assert checked.deferred == []


def test_without_defer_from_every_file_is_hashed(tmp_path) -> None:
    big = b"b" * BIG
    bundle = bundle_with_big_layers(tmp_path / "b", big)
    corrupt_last_byte(layer_file(bundle, big))

    checked = check_bundle(open_bundle(bundle.root))

    assert [p.code for p in checked.problems] == ["FILE_DIGEST"]
    assert checked.deferred == []


def test_a_blob_that_is_also_a_flux_or_git_artifact_is_hashed_at_once_not_deferred(tmp_path) -> None:
    from mirror.bundle.inventory import ArtifactRecord
    from mirror.flux.blob import FLUX_OBJECTS_MEDIA_TYPE

    big = b"b" * BIG
    bundle = SmallBundle(tmp_path / "b")
    bundle.image("registry.example/app:1", layer=big)
    extra = {"path": "./", "git": None, "objects": 0}
    bundle.artifacts.append(
        ArtifactRecord("flux", "fleet", sha256_digest(big), FLUX_OBJECTS_MEDIA_TYPE, len(big), extra)
    )
    bundle.finish()
    corrupt_last_byte(layer_file(bundle, big))

    checked = check_bundle(open_bundle(bundle.root), defer_from=BIG)

    assert checked.deferred == []
    assert "FILE_DIGEST" in [p.code for p in checked.problems]
