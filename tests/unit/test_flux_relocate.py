"""The relocation commit's edits: a Flux source's endpoint lines rewritten in place, the rest byte-identical."""

from __future__ import annotations

import yaml

from mirror.flux.bootstrap import EndpointAccess
from mirror.flux.relocate import Relocation, relocate_text
from mirror.flux.rewrite import InternalEndpoints

GIT = "https://git.internal/mirror"
REGISTRY = "registry.internal/mirror"


def _relocation(*, branches: dict[str, frozenset[str]] | None = None, auth: bool = False) -> Relocation:
    return Relocation(
        InternalEndpoints(REGISTRY, GIT),
        EndpointAccess(git_auth=auth, registry_auth=auth, ca=False),
        branches or {},
    )


SOURCES = """\
# the fleet's sources: comments survive
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata:
  name: apps
  namespace: flux-system
spec:
  interval: 1m   # keep me
  url: https://github.com/example/apps
  ref:
    branch: main
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: HelmRepository
metadata:
  name: podinfo
  namespace: flux-system
spec:
  interval: 5m
  url: https://stefanprodan.github.io/podinfo
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: untouched}
"""


def test_a_git_repository_url_line_is_replaced_and_every_other_line_is_kept():
    notes: list[str] = []
    out = relocate_text(SOURCES, "sources.yaml", _relocation(), notes)
    before, after = SOURCES.splitlines(), out.splitlines()
    changed = [(b, a) for b, a in zip(before, after, strict=False) if b != a]
    assert changed[0] == (
        "  url: https://github.com/example/apps",
        "  url: https://git.internal/mirror/example/apps.git",
    )
    assert "# the fleet's sources: comments survive" in after
    assert "  interval: 1m   # keep me" in after
    assert after[-3:] == before[-3:]


def test_a_helm_repository_over_http_becomes_an_oci_repository_on_the_internal_registry():
    out = relocate_text(SOURCES, "sources.yaml", _relocation(), [])
    helm = list(yaml.safe_load_all(out))[1]
    assert helm["spec"]["url"] == "oci://registry.internal/mirror/charts"
    assert helm["spec"]["type"] == "oci"
    assert helm["spec"]["interval"] == "5m"


def test_a_git_repository_of_a_relocated_branch_follows_the_mirror_branch():
    relocation = _relocation(branches={f"{GIT}/example/apps.git": frozenset({"main"})})
    out = relocate_text(SOURCES, "sources.yaml", relocation, [])
    assert next(iter(yaml.safe_load_all(out)))["spec"]["ref"] == {"branch": "mirror/main"}


def test_a_branch_that_is_not_relocated_is_left_as_it_is():
    out = relocate_text(SOURCES, "sources.yaml", _relocation(), [])
    assert next(iter(yaml.safe_load_all(out)))["spec"]["ref"] == {"branch": "main"}


def test_secret_references_the_internal_endpoints_need_are_inserted_under_spec():
    out = relocate_text(SOURCES, "sources.yaml", _relocation(auth=True), [])
    git, helm, _ = list(yaml.safe_load_all(out))
    assert git["spec"]["secretRef"] == {"name": "mirror-git"}
    assert helm["spec"]["secretRef"] == {"name": "mirror-registry"}


def test_a_cloud_provider_line_is_removed_because_it_cannot_authenticate_inside():
    text = (
        "apiVersion: source.toolkit.fluxcd.io/v1beta2\nkind: OCIRepository\nmetadata:\n  name: a\nspec:\n"
        "  provider: aws\n  url: oci://123.dkr.ecr.us-east-1.amazonaws.com/manifests\n  ref:\n    tag: v1\n"
    )
    out = relocate_text(text, "oci.yaml", _relocation(), [])
    spec = yaml.safe_load(out)["spec"]
    assert "provider" not in spec
    assert spec["url"] == "oci://registry.internal/mirror/manifests"
    assert spec["ref"] == {"tag": "v1"}


def test_crlf_line_endings_are_kept_on_the_lines_edited_and_inserted():
    text = SOURCES.replace("\n", "\r\n")
    out = relocate_text(text, "sources.yaml", _relocation(auth=True), [])
    assert "\n" not in out.replace("\r\n", "")
    assert "  url: https://git.internal/mirror/example/apps.git\r\n" in out


def test_a_url_made_by_post_build_substitution_is_left_and_named_in_a_note():
    text = SOURCES.replace("https://github.com/example/apps", "${APPS_URL}")
    notes: list[str] = []
    out = relocate_text(text, "sources.yaml", _relocation(), notes)
    assert "url: ${APPS_URL}" in out
    assert any("sources.yaml" in n and "APPS_URL" in n for n in notes)


def test_a_file_with_no_flux_source_is_returned_unchanged():
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {url: https://example.com}\n"
    assert relocate_text(text, "cm.yaml", _relocation(), []) is text


def test_a_file_that_is_not_yaml_is_returned_unchanged():
    text = "{{ if .Values.x }}\nkind: GitRepository\n{{ end }}\n"
    assert relocate_text(text, "tpl.yaml", _relocation(), []) == text


def test_the_same_text_and_flags_give_the_same_text():
    relocation = _relocation(auth=True, branches={f"{GIT}/example/apps.git": frozenset({"main"})})
    assert relocate_text(SOURCES, "s.yaml", relocation, []) == relocate_text(SOURCES, "s.yaml", relocation, [])
