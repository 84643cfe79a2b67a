"""Incremental bundles, pure logic: `base` and `expected` in the inventory, the have-set of a base chain, what a
new bundle leaves to its base, moved tags, and where the inventory copy beside a bundle goes."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from mirror.bundle.inventory import ArtifactRecord, BaseRecord, ExpectedBlob, FileRecord, Inventory, parse_inventory
from mirror.bundle.layout import LayoutWriter
from mirror.collector.incremental import beneath, beside_path, chain_from_inventory, leave_to_base, load_base, to_list
from mirror.errors import BundleFormatError, UsageError
from mirror.oci import mediatypes as mt
from mirror.oci.document import ManifestDocument, parse_manifest


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


CARRIED = b"carried layer"
INHERITED = b"layer the base expected from its own base"
BASE = BaseRecord("sha256:" + "c" * 64, "night-0", "2026-01-01T00:00:00Z")


def image(source: str, top: str) -> ArtifactRecord:
    return ArtifactRecord("image", source, top, mt.OCI_MANIFEST, 500)


def git(url: str, heads: dict[str, str], unchanged: dict[str, str] | None = None, name: str = "fleet"):
    extra: dict[str, Any] = {"name": name, "heads": heads, "prerequisites": []}
    if unchanged:
        extra["unchanged"] = unchanged
    return ArtifactRecord("git", url, "sha256:" + "9" * 64, "application/vnd.mirror.git.bundle", 10, extra)


def inventory(*artifacts: ArtifactRecord, base: BaseRecord | None = BASE, expected=()) -> Inventory:
    files = (
        FileRecord(f"blobs/sha256/{digest(CARRIED)[7:]}", digest(CARRIED)[7:], len(CARRIED)),
        FileRecord("index.json", "a" * 64, 300),
        FileRecord("oci-layout", "b" * 64, 31),
    )
    return Inventory("night-1", "2026-01-02T00:00:00Z", "mirror 0.1.0", artifacts, files, base, tuple(expected))


def incremental(**changes: Any) -> bytes:
    body = json.loads(inventory(expected=[ExpectedBlob(digest(INHERITED), len(INHERITED))]).to_bytes())
    body.update(changes)
    return json.dumps(body).encode()


# --- inventory fields ---------------------------------------------------------------------------------------------


def test_base_and_expected_parse_back_as_written():
    written = inventory(expected=[ExpectedBlob(digest(INHERITED), len(INHERITED))])
    assert parse_inventory(written.to_bytes()) == written


def test_full_bundle_writes_neither_base_nor_expected():
    body = json.loads(inventory(base=None).to_bytes())
    assert "base" not in body and "expected" not in body


@pytest.mark.parametrize(
    "changes",
    [
        {"base": "sha256:" + "c" * 64},
        {"base": {"inventory": "sha256:" + "c" * 64, "bundleId": "night-0"}},
        {"base": {"inventory": "md5:abc", "bundleId": "night-0", "created": "2026-01-01T00:00:00Z"}},
        {"base": {"inventory": "sha256:" + "c" * 64, "bundleId": "", "created": "2026-01-01T00:00:00Z"}},
        {"base": {**BASE.to_json(), "extra": 1}},
    ],
    ids=["not-an-object", "missing-created", "bad-digest", "empty-bundle-id", "unknown-field"],
)
def test_malformed_base_is_refused(changes):
    with pytest.raises(BundleFormatError, match="base"):
        parse_inventory(incremental(**changes))


@pytest.mark.parametrize(
    ("expected", "problem"),
    [
        ({"digest": "sha256:" + "1" * 64}, "exactly digest and size"),
        ([{"digest": "sha256:" + "1" * 64, "size": -1}], "non-negative"),
        ([{"digest": "sha1:" + "1" * 40, "size": 1}], "not a sha256 digest"),
        ([{"digest": "sha256:" + "2" * 64, "size": 1}, {"digest": "sha256:" + "1" * 64, "size": 1}], "not sorted"),
        ([{"digest": "sha256:" + "1" * 64, "size": 1}, {"digest": "sha256:" + "1" * 64, "size": 1}], "twice"),
        ([{"digest": digest(CARRIED), "size": len(CARRIED)}], "carried in files and expected too"),
    ],
    ids=["not-a-list-of-objects", "negative-size", "other-algorithm", "unsorted", "duplicate", "also-carried"],
)
def test_malformed_expected_is_refused(expected, problem):
    if isinstance(expected, dict):
        expected = [expected]
    with pytest.raises(BundleFormatError, match=problem):
        parse_inventory(incremental(expected=expected))


def test_expected_without_base_is_refused():
    body = json.loads(incremental())
    del body["base"]
    with pytest.raises(BundleFormatError, match="lists both"):
        parse_inventory(json.dumps(body).encode())


# --- the base chain -----------------------------------------------------------------------------------------------


def test_have_set_is_what_the_base_carried_plus_what_it_expected():
    raw = inventory(expected=[ExpectedBlob(digest(INHERITED), len(INHERITED))]).to_bytes()
    chain = chain_from_inventory(raw, "prev")
    assert chain.have == {digest(CARRIED): len(CARRIED), digest(INHERITED): len(INHERITED)}
    assert chain.record == BaseRecord(digest(raw), "night-1", "2026-01-02T00:00:00Z")


def test_git_base_commits_are_the_heads_and_unchanged_refs_of_that_url():
    chain = chain_from_inventory(
        inventory(
            git("https://git/a.git", {"refs/heads/main": "1" * 40}, {"refs/tags/v1": "2" * 40}),
            git("https://git/b.git", {"refs/heads/main": "3" * 40}, name="other"),
        ).to_bytes(),
        "prev",
    )
    assert chain.git_commits("https://git/a.git") == ["1" * 40, "2" * 40]
    assert chain.git_record("https://git/a.git", "fleet").source == "https://git/a.git"
    assert chain.git_record("https://git/c.git", "fleet") is None


def test_a_source_on_another_digest_than_in_the_base_is_reported_moved():
    chain = chain_from_inventory(inventory(image("r/app:1", "sha256:" + "1" * 64)).to_bytes(), "prev")
    now = [image("r/app:1", "sha256:" + "2" * 64), image("r/new:1", "sha256:" + "3" * 64)]
    [moved] = chain.moved(now)
    assert (moved.source, moved.old, moved.new) == ("r/app:1", "sha256:" + "1" * 64, "sha256:" + "2" * 64)
    assert chain.moved([image("r/app:1", "sha256:" + "1" * 64)]) == []


def test_new_bundle_drops_what_the_chain_has_and_expects_it(tmp_path):
    chain = chain_from_inventory(inventory(expected=[ExpectedBlob(digest(INHERITED), 42)]).to_bytes(), "prev")
    writer = LayoutWriter(tmp_path / "layout")
    fresh, kept = b"a new layer", CARRIED
    for data in (fresh, kept):
        writer.put_bytes(digest(data), data)
    never_downloaded = {digest(INHERITED): 42}
    expected = leave_to_base(chain, writer, never_downloaded)
    assert expected == (*sorted([ExpectedBlob(digest(INHERITED), 42), ExpectedBlob(digest(CARRIED), len(CARRIED))],
                                key=lambda e: e.digest),)  # fmt: skip
    assert writer.has(digest(fresh)) and not writer.has(digest(kept))
    assert not writer.blob_location(digest(kept)).exists()


def test_blobs_to_keep_stay_carried_even_if_the_chain_has_them(tmp_path):
    chain = chain_from_inventory(inventory().to_bytes(), "prev")
    writer = LayoutWriter(tmp_path / "layout")
    writer.put_bytes(digest(CARRIED), CARRIED)
    assert leave_to_base(chain, writer, {}, keep=[digest(CARRIED)]) == ()
    assert writer.has(digest(CARRIED))


def test_since_reads_a_bundle_directory_or_the_inventory_file_beside_it(tmp_path):
    raw = inventory().to_bytes()
    (tmp_path / "night").mkdir()
    (tmp_path / "night" / "inventory.json").write_bytes(raw)
    (tmp_path / "night.inventory.json").write_bytes(raw)
    assert load_base(tmp_path / "night").record == load_base(tmp_path / "night.inventory.json").record


def test_since_refuses_a_file_that_is_not_an_inventory(tmp_path):
    (tmp_path / "x.json").write_text('{"apiVersion": "mirror/v1"}')
    with pytest.raises(UsageError, match="--since"):
        load_base(tmp_path / "x.json")
    with pytest.raises(UsageError, match="no such bundle"):
        load_base(tmp_path / "missing.json")


@pytest.mark.parametrize(
    ("out", "beside"),
    [
        ("night.tar", "night.tar.inventory.json"),
        ("night", "night.inventory.json"),
        ("a.b.tar", "a.b.tar.inventory.json"),
    ],
)
def test_the_inventory_copy_goes_beside_the_bundle_named_after_its_whole_name(out, beside):
    assert beside_path(Path("/x") / out) == Path("/x") / beside


def _document(body: dict) -> ManifestDocument:
    raw = json.dumps(body).encode()
    return parse_manifest(raw, declared_type=None, where="test", digest=digest(raw))


def test_a_changed_artifact_carries_every_manifest_of_nested_indexes_and_an_unchanged_one_none():
    leaf = _document(
        {
            "schemaVersion": 2,
            "mediaType": mt.OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest(b"c"), "size": 1},
            "layers": [],
        }
    )
    leaf_ref = {"mediaType": mt.OCI_MANIFEST, "digest": leaf.digest, "size": leaf.size}
    inner = _document({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": [leaf_ref]})
    inner_ref = {"mediaType": mt.OCI_INDEX, "digest": inner.digest, "size": inner.size}
    outer = _document({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": [inner_ref]})
    documents = {d.digest: d for d in (leaf, inner, outer)}
    chain = chain_from_inventory(inventory(image("r.example/app:1", "sha256:" + "1" * 64)).to_bytes(), "prev")

    changed = chain.changed_manifests([(image("r.example/app:1", outer.digest), outer)], documents.get)
    assert changed == {outer.digest, inner.digest, leaf.digest}
    unchanged = image("r.example/app:1", "sha256:" + "1" * 64)
    assert chain.changed_manifests([(unchanged, outer)], documents.get) == set()


# --- what an incremental inventory lists under `expected` ---------------------------------------------------------


def _manifest(layer: bytes, config: bytes = b"{}") -> ManifestDocument:
    body = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest(config), "size": 2},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest(layer), "size": 5}],
    }
    raw = json.dumps(body).encode()
    return parse_manifest(raw, declared_type=mt.OCI_MANIFEST, where="test", digest=digest(raw))


def _index(*children: ManifestDocument) -> ManifestDocument:
    entries = [{"mediaType": mt.OCI_MANIFEST, "digest": c.digest, "size": c.size} for c in children]
    raw = json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": entries}).encode()
    return parse_manifest(raw, declared_type=mt.OCI_INDEX, where="test", digest=digest(raw))


def _listed(expected: dict[str, int], graphs, carried: set[str], documents: dict[str, ManifestDocument]) -> set[str]:
    everything = {d for _, doc in graphs for d in [doc.digest, *beneath(doc, documents.get)]}
    listed = to_list(
        [ExpectedBlob(d, s) for d, s in sorted(expected.items())],
        [a for a, _ in graphs],
        graphs,
        documents.get,
        carried.__contains__,
        everything,
    )
    return {e.digest for e in listed}


def test_an_unchanged_image_is_expected_whole_and_nothing_of_it_is_listed():
    manifest = _manifest(b"layer")
    graphs = [(ArtifactRecord("image", "r/app:1", manifest.digest, mt.OCI_MANIFEST, manifest.size), manifest)]
    expected = {manifest.digest: manifest.size, **beneath(manifest, lambda _: None)}
    assert _listed(expected, graphs, carried=set(), documents={}) == set()


def test_a_changed_image_lists_the_blob_it_shares_with_the_chain():
    manifest = _manifest(b"shared base layer")
    graphs = [(ArtifactRecord("image", "r/app:2", manifest.digest, mt.OCI_MANIFEST, manifest.size), manifest)]
    carried = {manifest.digest, digest(b"{}")}
    assert _listed({digest(b"shared base layer"): 5}, graphs, carried, {}) == {digest(b"shared base layer")}


def test_a_changed_index_lists_its_unchanged_child_but_nothing_beneath_that_child():
    old_child, new_child = _manifest(b"amd64 layer"), _manifest(b"arm64 layer, rebuilt")
    index = _index(old_child, new_child)
    graphs = [(ArtifactRecord("image", "r/app:1", index.digest, mt.OCI_INDEX, index.size), index)]
    carried = {index.digest, new_child.digest, digest(b"arm64 layer, rebuilt"), digest(b"{}")}
    expected = {old_child.digest: old_child.size, digest(b"amd64 layer"): 5}
    documents = {old_child.digest: old_child, new_child.digest: new_child}
    assert _listed(expected, graphs, carried, documents) == {old_child.digest}


def test_what_is_in_no_graph_stays_listed():
    manifest = _manifest(b"layer")
    graphs = [(ArtifactRecord("image", "r/app:1", manifest.digest, mt.OCI_MANIFEST, manifest.size), manifest)]
    upstream_index = "sha256:" + "7" * 64  # the bytes of an index a platform filter narrowed
    assert _listed({upstream_index: 900}, graphs, carried=set(), documents={}) == {upstream_index}
