"""The Flux rewrite points sources where the importer lands them, with the same checks: a rewritten GitRepository
never points outside the Git base, a rewritten OCI source never outside a valid repository path."""

from __future__ import annotations

import pytest

from mirror.errors import VerificationError
from mirror.flux.objects import FluxObject
from mirror.flux.rewrite import InternalEndpoints, rewrite_objects
from mirror.landing import git_target_url

ENDPOINTS = InternalEndpoints("registry.internal:5000/mirror", git_base="https://git.internal/fleet")


def _source(kind: str, url: str, **spec: object) -> FluxObject:
    body = {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": kind,
        "metadata": {"name": "src", "namespace": "flux-system"},
        "spec": {"interval": "5m", "url": url, **spec},
    }
    return FluxObject("source.toolkit.fluxcd.io/v1", kind, "src", "flux-system", body, "fleet.yaml", 0)


def _rewritten_url(obj: FluxObject) -> str:
    [rewritten] = rewrite_objects([obj], ENDPOINTS)
    return rewritten.body["spec"]["url"]


@pytest.mark.parametrize(
    "url",
    [
        "http://upstream/a/%2e%2e/%2e%2e/escape.git",
        "https://upstream/%2E%2E/escape.git",
        "https://upstream/a%2f..%2f..%2fescape.git",
        "https://upstream/a/%252e%252e/%252e%252e/escape.git",
        "ssh://git@upstream/../escape.git",
    ],
)
def test_a_git_repository_whose_url_would_leave_the_git_base_is_refused(url):
    with pytest.raises(VerificationError) as refused:
        _rewritten_url(_source("GitRepository", url, ref={"branch": "main"}))
    assert [p.code for p in refused.value.problems] == ["GIT_TARGET_OUTSIDE_BASE"]
    assert refused.value.exit_code == 3


def test_a_git_repository_points_where_the_importer_lands_its_source():
    url = "https://upstream/org/a/%2e%2e/fleet"
    assert _rewritten_url(_source("GitRepository", url)) == "https://git.internal/fleet/org/fleet.git"
    assert _rewritten_url(_source("GitRepository", url)) == git_target_url("https://git.internal/fleet", url)


@pytest.mark.parametrize(
    ("kind", "url", "spec"),
    [
        ("OCIRepository", "oci://upstream.example/a/%2e%2e/b", {}),
        ("OCIRepository", "oci://upstream.example/a/../../b", {}),
        ("OCIRepository", "oci://upstream.example/Team/app", {}),
        ("HelmRepository", "oci://upstream.example/charts/..", {"type": "oci"}),
        ("HelmRepository", "oci://upstream.example/charts/%2e%2e/x", {"type": "oci"}),
    ],
)
def test_an_oci_source_without_a_valid_landing_path_is_refused(kind, url, spec):
    with pytest.raises(VerificationError) as refused:
        _rewritten_url(_source(kind, url, **spec))
    assert [p.code for p in refused.value.problems] == ["LANDING_NAME_INVALID"]
