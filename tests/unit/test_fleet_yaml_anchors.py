"""Fleet YAML that Kubernetes (Go yaml) accepts but PyYAML rejects: an anchor defined twice in one document.

billimek/k8s-gitops' plex.yaml defines `&port` twice; kubectl, kustomize and Flux read it, the later anchor
applying to the aliases after it. mirror reads it the same way instead of skipping the file.
"""

from __future__ import annotations

import pytest
import yaml

from mirror.flux.kustomize import read_tree
from mirror.flux.objects import parse_yaml_documents
from mirror.yamlio import YamlBudgetError
from tests.support.realdata import realdata

REDEFINED = """\
apiVersion: v1
kind: ConfigMap
metadata: {name: ports}
data:
  first: &port "8080"
  first-again: *port
  second: &port "9090"
  second-again: *port
"""


def test_a_redefined_anchor_applies_to_the_aliases_after_it_as_go_yaml_reads_it() -> None:
    [document] = parse_yaml_documents(REDEFINED)
    assert document["data"] == {"first": "8080", "first-again": "8080", "second": "9090", "second-again": "9090"}


def test_a_redefined_anchor_still_reads_yaml_as_kustomize_does() -> None:
    """The fallback keeps the YAML 1.2 reading of the fast path: `yes` and dates stay strings."""
    [document] = parse_yaml_documents(REDEFINED + "  flag: yes\n  day: 2024-05-01\n  on: true\n")
    assert (document["data"]["flag"], document["data"]["day"], document["data"]["on"]) == ("yes", "2024-05-01", True)


def test_a_redefined_anchor_does_not_leak_into_the_next_document() -> None:
    with pytest.raises(yaml.YAMLError, match="undefined alias"):
        parse_yaml_documents(REDEFINED + "---\nkind: Other\nvalue: *port\n")


def test_the_real_plex_release_with_a_redefined_anchor_is_read_not_skipped() -> None:
    plex = realdata("billimek__k8s-gitops", "kubernetes", "default", "plex")
    warnings: list[str] = []
    objects = read_tree(plex, ".", warnings=warnings)
    assert not [w for w in warnings if "plex.yaml" in w]
    [release] = [o for o in objects if o.kind == "HelmRelease"]
    assert release.name == "plex"
    ports = [svc["ports"]["http"]["port"] for svc in release.spec["values"]["service"].values() if "ports" in svc]
    assert ports and all(port == 32400 for port in ports)


def test_a_redefined_anchor_does_not_lift_the_yaml_budget() -> None:
    """The Python fallback is measured like the fast path: an alias bomb beside a redefined anchor is refused."""
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    levels += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    bomb = "\n".join(levels) + "\nfirst: &port 1\nsecond: &port 2\n"
    with pytest.raises(YamlBudgetError, match=r"bomb\.yaml"):
        parse_yaml_documents(bomb, "bomb.yaml")
