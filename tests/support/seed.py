"""Idempotent seeding of the plain-HTTP upstream registry with the fixture catalogue.

``seed_upstream(services.upstream)`` pushes (only what is missing or different):

- ``fixtures/multi:1.0``      OCI index: linux/amd64, linux/arm64/v8, linux/arm/v7; one base layer shared by
                               all three plus one distinct layer per platform;
- ``fixtures/docker:1.0``     Docker schema 2 manifest (converted by ``skopeo --format v2s2``);
- ``fixtures/dockerlist:1.0`` Docker manifest list of two Docker schema 2 manifests (``--all --format v2s2``
                               on an OCI index);
- ``fixtures/shared-a:1.0``, ``fixtures/shared-b:1.0``  single OCI images sharing one base layer;
- ``fixtures/app:1.0``, ``fixtures/app:2.0``  two different small OCI images;
- ``other/app:1.0``           identical to ``fixtures/app:1.0`` (for cross-repository mounts).

CLI (from the repository root): ``python -m tests.support.seed HOST`` prints the result as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.support.images import (
    DOCKER_CONFIG,
    DOCKER_LAYER_GZIP,
    DOCKER_LIST,
    DOCKER_MANIFEST,
    Image,
    Index,
    Layer,
    Layout,
    SkopeoError,
    inspect_raw,
    push,
    sha256_digest,
)

MULTI_PLATFORMS = ("linux/amd64", "linux/arm64/v8", "linux/arm/v7")
DOCKERLIST_PLATFORMS = ("linux/amd64", "linux/arm64/v8")


def _image(name: str, platform: str, *layer_seeds: str, shared: Layer | None = None) -> Image:
    layers = ([shared] if shared else []) + [Layer.from_seed(s) for s in layer_seeds]
    return Image(
        layers,
        platform=platform,
        labels={
            "org.opencontainers.image.title": name,
            "mirror.test.fixture": name,
            "mirror.test.platform": platform,
        },
    )


def _multi(name: str, platforms: tuple[str, ...]) -> tuple[Index, Layer]:
    base = Layer.from_seed(f"{name}/base")
    images = [_image(name, p, f"{name}/{p}", shared=base) for p in platforms]
    return Index(images, annotations={"org.opencontainers.image.title": name}), base


@dataclass
class Fixture:
    key: str
    repository: str
    tag: str
    obj: Image | Index
    fmt: str | None = None  # None: pushed as-is with preserved digests; "v2s2": converted by skopeo
    shared_layer: str | None = None

    @property
    def layout_ref(self) -> str:
        return self.key


def catalogue() -> list[Fixture]:
    """The fixed fixture set (deterministic: same objects and digests on every call)."""
    multi, multi_base = _multi("multi", MULTI_PLATFORMS)
    dockerlist, dockerlist_base = _multi("dockerlist", DOCKERLIST_PLATFORMS)
    shared_base = Layer.from_seed("shared/base", files=4)
    app1 = _image("app-1.0", "linux/amd64", "app/1.0/bin", "app/1.0/etc")
    app2 = _image("app-2.0", "linux/amd64", "app/2.0/bin", "app/2.0/etc")
    docker = _image("docker", "linux/amd64", "docker/a", "docker/b")
    shared_a = _image("shared-a", "linux/amd64", "shared/a", shared=shared_base)
    shared_b = _image("shared-b", "linux/amd64", "shared/b", shared=shared_base)
    return [
        Fixture("multi", "fixtures/multi", "1.0", multi, shared_layer=multi_base.digest),
        Fixture("docker", "fixtures/docker", "1.0", docker, fmt="v2s2"),
        Fixture("dockerlist", "fixtures/dockerlist", "1.0", dockerlist, "v2s2", dockerlist_base.digest),
        Fixture("shared_a", "fixtures/shared-a", "1.0", shared_a, shared_layer=shared_base.digest),
        Fixture("shared_b", "fixtures/shared-b", "1.0", shared_b, shared_layer=shared_base.digest),
        Fixture("app_1", "fixtures/app", "1.0", app1),
        Fixture("app_2", "fixtures/app", "2.0", app2),
        Fixture("other_app", "other/app", "1.0", app1),
    ]


# --------------------------------------------------------------------------------------------------
# checking what the registry already holds


def _fetch(ref: str) -> bytes | None:
    try:
        return inspect_raw(ref)
    except SkopeoError:
        return None


def _docker_manifest_matches(raw: bytes, image: Image) -> bool:
    """A skopeo v2s2 conversion keeps the config and layer blobs; check the manifest points at ours."""
    m = json.loads(raw)
    return (
        m.get("mediaType") == DOCKER_MANIFEST
        and m.get("config", {}).get("mediaType") == DOCKER_CONFIG
        and m["config"].get("digest") == image.config.digest
        and [(lay.get("mediaType"), lay.get("digest")) for lay in m.get("layers", [])]
        == [(DOCKER_LAYER_GZIP, layer.digest) for layer in image.layers]
    )


def _existing(host: str, fx: Fixture) -> dict[str, Any] | None:
    """Describe ``fx`` as the registry holds it, or ``None`` if it is missing or not what we expect."""
    ref = f"{host}/{fx.repository}:{fx.tag}"
    raw = _fetch(ref)
    if raw is None:
        return None
    digest = sha256_digest(raw)
    if fx.fmt is None:
        return _describe(host, fx, raw) if digest == fx.obj.digest else None
    if isinstance(fx.obj, Image):
        return _describe(host, fx, raw) if _docker_manifest_matches(raw, fx.obj) else None
    lst = json.loads(raw)
    if lst.get("mediaType") != DOCKER_LIST:
        return None
    by_platform = {_platform_str(d.get("platform", {})): d for d in lst.get("manifests", [])}
    if set(by_platform) != {img.platform for img in fx.obj.images}:
        return None
    for img in fx.obj.images:
        child = _fetch(f"{host}/{fx.repository}@{by_platform[img.platform]['digest']}")
        if child is None or not _docker_manifest_matches(child, img):
            return None
    return _describe(host, fx, raw)


def _platform_str(p: dict[str, Any]) -> str:
    parts = [p.get("os", ""), p.get("architecture", "")]
    if p.get("variant"):
        parts.append(p["variant"])
    return "/".join(parts)


def _describe(host: str, fx: Fixture, raw: bytes) -> dict[str, Any]:
    """The result entry, derived from the stored manifest bytes (not from what we meant to push)."""
    doc = json.loads(raw)
    entry: dict[str, Any] = {
        "ref": f"{host}/{fx.repository}:{fx.tag}",
        "repository": fx.repository,
        "tag": fx.tag,
        "digest": sha256_digest(raw),
        "media_type": doc.get("mediaType"),
        "size": len(raw),
    }
    if "manifests" in doc:
        entry["platforms"] = {_platform_str(d["platform"]): d["digest"] for d in doc["manifests"]}
    else:
        entry["config"] = doc["config"]["digest"]
        entry["layers"] = [layer["digest"] for layer in doc["layers"]]
        if isinstance(fx.obj, Image):
            entry["platform"] = fx.obj.platform
    if fx.shared_layer:
        entry["shared_layer"] = fx.shared_layer
    return entry


# --------------------------------------------------------------------------------------------------


def seed_upstream(host: str, *, log: Callable[[str], None] | None = None) -> dict[str, dict[str, Any]]:
    """Push the fixture catalogue to ``host`` (plain HTTP or TLS without verification) and describe it.

    Already-correct tags are left alone, so a second run only reads. Returns ``{key: entry}`` with
    keys ``multi, docker, dockerlist, shared_a, shared_b, app_1, app_2, other_app``; each entry has
    ``ref, repository, tag, digest, media_type, size`` and either ``platforms`` (platform -> child
    digest, for indexes/lists) or ``config``, ``layers`` and ``platform`` (single images), plus
    ``shared_layer`` where a layer is shared on purpose."""
    say = log or (lambda _msg: None)
    result: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="mirror-seed-") as tmp:
        layout: Layout | None = None
        for fx in catalogue():
            entry = _existing(host, fx)
            if entry is None:
                if layout is None:
                    layout = Layout(tmp)
                layout.add(fx.layout_ref, fx.obj)
                say(f"pushing {host}/{fx.repository}:{fx.tag}")
                push(tmp, fx.layout_ref, f"{host}/{fx.repository}:{fx.tag}", fmt=fx.fmt)
                entry = _existing(host, fx)
                if entry is None:
                    raise RuntimeError(f"{host}/{fx.repository}:{fx.tag} is not as expected after pushing")
            else:
                say(f"up to date {host}/{fx.repository}:{fx.tag}")
            result[fx.key] = entry
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.support.seed", description=__doc__.split("\n")[0])
    parser.add_argument("host", help="registry host:port, e.g. $MIRROR_TEST_UPSTREAM")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    args = parser.parse_args(argv)
    start = time.monotonic()
    log = (lambda msg: print(msg, file=sys.stderr)) if args.verbose else None
    result = seed_upstream(args.host, log=log)
    json.dump(result, sys.stdout, indent=2)
    print()
    if args.verbose:
        print(f"seeded in {time.monotonic() - start:.2f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
