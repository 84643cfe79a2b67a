"""k3s and RKE2's `registries.yaml` (/etc/rancher/k3s/ or /etc/rancher/rke2/): a mirror per source registry."""

from __future__ import annotations

from typing import Any

from mirror.nodeconfig.hosts import MirrorTarget
from mirror.nodeconfig.yamltext import dump_yaml

K3S_REGISTRIES = "k3s/registries.yaml"


def registries_yaml(target: MirrorTarget, sources: list[str], node_ca_path: str | None) -> str:
    """Each source's mirror is the internal endpoint; with a prefix, a rewrite `^(.*)$` → `PREFIX/$1` puts the
    repository where the importer landed it. The CA is the endpoint's TLS setting, under `configs`."""
    mirrors: dict[str, Any] = {}
    for source in sources:
        entry: dict[str, Any] = {"endpoint": [target.endpoint]}
        if target.prefix:
            entry["rewrite"] = {"^(.*)$": f"{target.prefix}/$1"}
        mirrors[source] = entry
    document: dict[str, Any] = {"mirrors": mirrors}
    if node_ca_path:
        document["configs"] = {target.host: {"tls": {"ca_file": node_ca_path}}}
    return dump_yaml(document)
