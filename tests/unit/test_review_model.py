"""The review model on generated bundles: scale (1,000 artifacts, no layer read), strict optional fields,
matching rules of the diff, and output that cannot be steered by what the bundle contains."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path

import pytest

from mirror.bundle import reader as bundle_reader
from mirror.bundle.inventory import (
    ArtifactRecord,
    BaseRecord,
    ExpectedBlob,
    FileRecord,
    Inventory,
    VolumeRecord,
    blob_path,
)
from mirror.errors import BundleFormatError
from mirror.helm.package import HELM_CHART_LAYER, HELM_CONFIG
from mirror.oci import mediatypes as mt
from mirror.oci.digest import sha256_digest
from mirror.review.diff import diff_sources
from mirror.review.html import review_html
from mirror.review.jsonout import review_json
from mirror.review.model import build_review
from mirror.review.source import open_source
from mirror.review.text import clean, review_text

CHART_YAML = b"apiVersion: v2\nname: {name}\nversion: {version}\nappVersion: '1'\ndescription: generated\n"


class _Bundle:
    """A directory bundle written blob by blob; layers are only described, never written."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.files: dict[str, FileRecord] = {}
        self.artifacts: list[ArtifactRecord] = []
        self.layers: set[str] = set()
        (root / "blobs" / "sha256").mkdir(parents=True)

    def blob(self, data: bytes) -> str:
        digest = sha256_digest(data)
        path = blob_path(digest)
        (self.root / path).write_bytes(data)
        self.files[path] = FileRecord(path, digest.removeprefix("sha256:"), len(data))
        return digest

    def phantom_layer(self, seed: str, size: int) -> dict:
        """A layer the inventory lists with a digest and size, and no file: reading it would fail."""
        digest = sha256_digest(seed.encode())
        self.layers.add(digest)
        path = blob_path(digest)
        self.files[path] = FileRecord(path, digest.removeprefix("sha256:"), size)
        return {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest, "size": size}

    def image(self, source: str, label: str, layer_seed: str) -> None:
        config = json.dumps({"os": "linux", "architecture": "amd64", "config": {"Labels": {"note": label}}}).encode()
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": mt.OCI_MANIFEST,
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": self.blob(config)}
                | {"size": len(config)},
                "layers": [self.phantom_layer(layer_seed, 5_000_000)],
            }
        ).encode()
        digest = self.blob(manifest)
        self.artifacts.append(
            ArtifactRecord("image", source, digest, mt.OCI_MANIFEST, len(manifest), {"via": "listed"})
        )

    def chart(self, name: str, version: str) -> None:
        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode="w") as tar:
            data = CHART_YAML.replace(b"{name}", name.encode()).replace(b"{version}", version.encode())
            info = tarfile.TarInfo(f"{name}/Chart.yaml")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        archive = gzip.compress(raw.getvalue(), mtime=0)
        config = json.dumps({"name": name, "version": version}).encode()
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": mt.OCI_MANIFEST,
                "config": {"mediaType": HELM_CONFIG, "digest": self.blob(config), "size": len(config)},
                "layers": [{"mediaType": HELM_CHART_LAYER, "digest": self.blob(archive), "size": len(archive)}],
            }
        ).encode()
        digest = self.blob(manifest)
        extra = {"chart": name, "version": version, "repo": "https://charts.example", "via": "flux"}
        self.artifacts.append(
            ArtifactRecord("chart", f"https://charts.example/{name}-{version}.tgz", digest, mt.OCI_MANIFEST, 9, extra)
        )

    def finish(self, extra_fields: dict | None = None) -> Path:
        inventory = Inventory(
            "b-" + self.root.name, "2026-01-01T00:00:00Z", "test", tuple(self.artifacts), tuple(self.files.values())
        )
        raw = inventory.to_bytes()
        if extra_fields:
            raw = json.dumps({**json.loads(raw), **extra_fields}).encode()
        (self.root / "inventory.json").write_bytes(raw)
        return self.root


def _generated(tmp_path: Path, name: str, images: int, charts: int, moved: int = 0) -> Path:
    bundle = _Bundle(tmp_path / name)
    for i in range(images):
        bundle.image(f"registry.example/team/app{i}:1.{i}", f"app {i}", f"layer-{i}-{'moved' if i < moved else 'v'}")
    for i in range(charts):
        bundle.chart(f"chart{i}", "1.0.0")
    return bundle.finish()


@pytest.fixture
def opened_paths(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every path the review opens in a directory bundle."""
    seen: list[str] = []
    original = bundle_reader.DirectoryBundle.open

    def spy(self, path: str):
        seen.append(path)
        return original(self, path)

    monkeypatch.setattr(bundle_reader.DirectoryBundle, "open", spy)
    return seen


def test_a_thousand_artifacts_render_as_text_json_and_html_without_reading_a_layer(tmp_path, opened_paths):
    root = _generated(tmp_path, "big", images=900, charts=100)
    layers = {blob_path(d) for d in _layer_digests(root)}

    review = build_review(root)
    text, data, page = review_text(review), review_json(review), review_html(review)

    assert data["totals"]["artifacts"] == 1000 and data["totals"]["byKind"]["image"] == 900
    assert all(not a["notes"] for a in data["artifacts"])  # every config and Chart.yaml was read
    assert data["artifacts"][0]["contentSize"] > 5_000_000  # the layer's size, as its descriptor states it
    assert "registry.example/team/app899:1.899" in text and "registry.example/team/app899:1.899" in page
    assert "Images (900)" in text and "Charts (100)" in text
    assert opened_paths and not layers & set(opened_paths)


def _layer_digests(root: Path) -> set[str]:
    present = {p.name for p in (root / "blobs" / "sha256").iterdir()}
    inventory = json.loads((root / "inventory.json").read_text())
    return {"sha256:" + f["sha256"] for f in inventory["files"] if f["sha256"] not in present}


def test_a_thousand_artifacts_diff_without_reading_a_blob(tmp_path, opened_paths):
    old = _generated(tmp_path, "old", images=900, charts=100)
    new = _generated(tmp_path, "new", images=900, charts=100, moved=10)
    opened_paths.clear()
    diff = diff_sources(open_source(old), open_source(new))
    assert len(diff.moved_tags) == 10 and diff.unchanged == 990
    assert len(diff.new_blobs) == 20  # per moved image: its layer and manifest (the config is the same)
    assert opened_paths == ["inventory.json", "inventory.json"]


def test_labels_and_sources_cannot_inject_markup_or_terminal_escapes(tmp_path):
    bundle = _Bundle(tmp_path / "hostile")
    bundle.image("registry.example/x:1", "<script>alert(1)</script>\x1b[2J", "l")
    review = build_review(bundle.finish())
    page = review_html(review)
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "\x1b" not in review_text(review) and "\x1b" not in clean("a\x1bb")


def test_a_chart_family_with_one_version_out_and_one_in_is_a_bump_and_a_second_new_version_is_added(tmp_path):
    old = _Bundle(tmp_path / "old")
    old.chart("web", "1.0.0")
    new = _Bundle(tmp_path / "new")
    new.chart("web", "1.1.0")
    diff = diff_sources(open_source(old.finish()), open_source(new.finish()))
    assert [(c.what, c.old_version, c.new_version) for c in diff.changed] == [("version bump", "1.0.0", "1.1.0")]
    two = _Bundle(tmp_path / "two")
    two.chart("web", "1.1.0")
    two.chart("web", "2.0.0")
    diff = diff_sources(open_source(tmp_path / "old"), open_source(two.finish()))
    assert diff.changed == [] and len(diff.added) == 2 and len(diff.removed) == 1


def test_incremental_and_volume_fields_come_from_the_parsed_inventory(tmp_path):
    base = BaseRecord("sha256:" + "a" * 64, "prev", "2026-01-01T00:00:00Z")
    volume = VolumeRecord("night.tar.001", "c" * 64, 9)
    inventory = Inventory(
        "b", "2026-01-02T00:00:00Z", "mirror", (), (), base, (ExpectedBlob("sha256:" + "b" * 64, 7),), (volume,)
    )
    path = tmp_path / "b.inventory.json"
    path.write_bytes(inventory.to_bytes())
    source = open_source(path)
    assert source.base == base and source.expected == (("sha256:" + "b" * 64, 7),) and source.volumes == (volume,)
    assert review_json(build_review(path))["volumes"] == [volume.to_json()]


def test_incremental_fields_are_read_strictly(tmp_path):
    body = json.loads(Inventory("b", "2026-01-02T00:00:00Z", "mirror", (), ()).to_bytes())
    path = tmp_path / "b.inventory.json"
    path.write_text(
        json.dumps({**body, "base": {"inventory": "nope", "bundleId": "p", "created": "t"}, "expected": []})
    )
    with pytest.raises(BundleFormatError, match=r"base\.inventory"):
        open_source(path)
    base = {"inventory": "sha256:" + "a" * 64, "bundleId": "p", "created": "t"}
    path.write_text(json.dumps({**body, "base": base, "expected": [{"digest": "md5:1", "size": 1}]}))
    with pytest.raises(BundleFormatError, match="expected\\[0\\]"):
        open_source(path)


def test_an_inventory_file_is_reviewed_without_signatures_or_blob_facts(tmp_path):
    root = _generated(tmp_path, "b", images=2, charts=1)
    beside = tmp_path / "b.inventory.json"
    beside.write_bytes((root / "inventory.json").read_bytes())
    data = review_json(build_review(beside))
    assert data["bundle"]["form"] == "inventory" and data["totals"]["artifacts"] == 3
    assert data["signing"]["signatures"] == [] and data["artifacts"][0]["platforms"] == []


def test_documents_a_bundle_leaves_to_its_base_are_read_from_the_base_when_given(tmp_path):
    old = _Bundle(tmp_path / "old")
    old.image("registry.example/app:1", "from the base", "layer")
    old.finish()
    new = _Bundle(tmp_path / "new")
    new.artifacts = list(old.artifacts)  # the same image, its blobs not carried again
    new.finish()

    alone = review_json(build_review(tmp_path / "new"))["artifacts"][0]
    assert alone["inBundle"] is False and alone["platforms"] == [] and "base" in alone["notes"][0]
    with_base = review_json(build_review(tmp_path / "new", base=tmp_path / "old"))["artifacts"][0]
    assert with_base["platforms"][0]["labels"] == {"note": "from the base"} and with_base["notes"] == []


def test_an_artifact_kind_cannot_inject_terminal_escapes(tmp_path):
    root = _generated(tmp_path, "k", images=1, charts=0)
    inventory = json.loads((root / "inventory.json").read_bytes())
    inventory["artifacts"][0]["kind"] = "x\x1b[1A\x1b[2Kevil"
    hostile = tmp_path / "hostile.inventory.json"
    hostile.write_text(json.dumps(inventory))
    text = review_text(build_review(hostile))
    assert "\x1b" not in text and "\\x1b[1A" in text


def test_an_image_config_that_does_not_match_its_digest_is_not_shown(tmp_path):
    bundle = _Bundle(tmp_path / "altered")
    bundle.image("registry.example/x:1", "signed label", "l")
    root = bundle.finish()
    configs = [p for p in (root / "blobs" / "sha256").iterdir() if b'"Labels"' in p.read_bytes()]
    for config in configs:
        config.write_bytes(config.read_bytes().replace(b"signed label", b"forged label"))
    data = review_json(build_review(root))
    [image] = [a for a in data["artifacts"] if a["kind"] == "image"]
    assert "forged label" not in json.dumps(data)
    assert any("does not match its digest" in note for note in image["notes"])
