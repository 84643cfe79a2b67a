"""The relocation's edits on the real fleets of ../shared/realdata: every Flux source they define ends up inside,
and every line the relocation changes is an endpoint line (the rest of each file byte-identical)."""

from __future__ import annotations

import difflib

import pytest
import yaml

from mirror.flux.bootstrap import EndpointAccess
from mirror.flux.relocate import Relocation, relocate_text
from mirror.flux.rewrite import InternalEndpoints
from tests.support.realdata import realdata

GIT = "https://git.internal/mirror"
REGISTRY = "registry.internal/mirror"
_ENDPOINT_LINES = (
    "url:",
    "type: oci",
    "insecure:",
    "provider:",
    "serviceAccountName:",
    "passCredentials:",
    "secretRef:",
    "certSecretRef:",
    "name: mirror-",
)
_SOURCES = ("GitRepository", "HelmRepository", "OCIRepository")


def _documents(text: str) -> list[object]:
    try:
        return list(yaml.safe_load_all(text))
    except yaml.YAMLError:
        return []


@pytest.mark.parametrize(
    "fleet",
    [
        "fluxcd__flux2-kustomize-helm-example",
        "billimek__k8s-gitops",
        "fluxcd__flux2-hub-spoke-example",
        "fluxcd__flux2-multi-tenancy",
        "fluxcd__flux2-monitoring-example",
    ],
)
def test_every_flux_source_of_a_real_fleet_is_relocated_by_endpoint_lines_alone(fleet):
    root = realdata(fleet)
    relocation = Relocation(InternalEndpoints(REGISTRY, GIT), EndpointAccess(ca=True), {})
    relocated = 0
    for path in sorted(p for p in root.rglob("*.y*ml") if p.is_file() and p.suffix in (".yaml", ".yml")):
        text = path.read_text(encoding="utf-8", errors="replace")
        notes: list[str] = []
        out = relocate_text(text, path.relative_to(root).as_posix(), relocation, notes)
        if out is text:
            continue
        changed = [
            line[1:].strip()
            for line in difflib.unified_diff(text.splitlines(), out.splitlines(), lineterm="", n=0)
            if line[:1] in "+-" and not line.startswith(("+++", "---"))
        ]
        assert all(line.startswith(_ENDPOINT_LINES) for line in changed), (path, changed)
        skipped = " ".join(notes)
        for document in _documents(out):
            if isinstance(document, dict) and document.get("kind") in _SOURCES:
                url = str((document.get("spec") or {}).get("url"))
                name = (document.get("metadata") or {}).get("name")
                inside = url.startswith((GIT + "/", "oci://registry.internal/mirror/"))
                assert inside or f"/{name}:" in skipped or f" {name}:" in skipped, (path, name, url)
                relocated += inside
    assert relocated > 0
