"""Regular expressions written upstream run in linear time (RE2, as Flux runs them), and bad ones are refused."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from mirror.collector.flux import oci_sources
from mirror.errors import UsageError
from mirror.flux.kustomize import apply_patch, selects
from mirror.flux.objects import FluxObject, object_from_document
from mirror.flux.plan import OciArtifact
from mirror.oci.reference import ImageReference

CATASTROPHIC = "(a+)+$"  # exponential in Python's backtracking engine on "aaaa…!"
LONG = "a" * 5000 + "!"


def _object(name: str) -> FluxObject:
    obj = object_from_document({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}}, "fleet.yaml")
    assert obj is not None
    return obj


def test_a_catastrophic_patch_target_name_is_matched_in_linear_time() -> None:
    started = time.monotonic()
    assert not selects(_object(LONG), {"name": CATASTROPHIC})
    assert time.monotonic() - started < 2


def test_a_patch_target_name_is_anchored_as_kustomize_anchors_it() -> None:
    assert selects(_object("app-1"), {"name": "app-.*"})
    assert not selects(_object("my-app-1"), {"name": "app-.*"})


def test_a_patch_target_that_re2_cannot_compile_is_refused_naming_the_object() -> None:
    objects = [_object("app")]
    patch = [{"op": "add", "path": "/data", "value": {}}]
    with pytest.raises(UsageError, match=r"fleet/kustomization.yaml patches\[0\]: target.name"):
        apply_patch(objects, patch, {"name": "(?<=x)app"}, [], "fleet/kustomization.yaml patches[0]")


@dataclass
class _Tags:
    tags: list[str]

    def for_host(self, host: str) -> _Tags:
        return self

    def iter_tags(self, repository: str) -> Iterator[str]:
        return iter(self.tags)


def _artifact(semver_filter: str) -> OciArtifact:
    return OciArtifact(
        key=("OCIRepository", "flux-system", "app"),  # type: ignore[arg-type]
        url="oci://registry.example/app",
        reference=ImageReference("registry.example", "app"),
        semver="1.x",
        semver_filter=semver_filter,
        layer_media_type=None,
        is_chart=False,
        origin="fleet.yaml: OCIRepository flux-system/app",
    )


def test_a_catastrophic_semver_filter_runs_in_linear_time() -> None:
    started = time.monotonic()
    chosen = oci_sources(_Tags(["1.2.0", "1.3.0-" + LONG]), [_artifact("^1\\.2|" + CATASTROPHIC)])  # type: ignore[arg-type]
    assert time.monotonic() - started < 2
    assert chosen[0].reference.tag == "1.2.0"


def test_a_semver_filter_that_re2_cannot_compile_is_refused_naming_the_object() -> None:
    with pytest.raises(UsageError, match=r"OCIRepository flux-system/app: spec\.ref\.semverFilter"):
        oci_sources(_Tags(["1.2.0"]), [_artifact("(?<=v)1")])  # type: ignore[arg-type]
