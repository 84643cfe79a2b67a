"""Every node configuration file, rendered in memory: {relative path: text}."""

from __future__ import annotations

from collections.abc import Iterable

from mirror.errors import UsageError
from mirror.nodeconfig.containerd import hosts_toml, hosts_toml_path
from mirror.nodeconfig.containers import CONTAINERS_DROP_IN, registries_conf
from mirror.nodeconfig.hosts import MirrorTarget, check_node_ca_path, check_source_hosts
from mirror.nodeconfig.k3s import K3S_REGISTRIES, registries_yaml
from mirror.nodeconfig.openshift import OPENSHIFT_DIGESTS, OPENSHIFT_TAGS, image_digest_mirror_set, image_tag_mirror_set

__all__ = ["CONTAINERS_DROP_IN", "K3S_REGISTRIES", "OPENSHIFT_DIGESTS", "OPENSHIFT_TAGS", "render"]


def render(target: MirrorTarget, sources: Iterable[str], *, node_ca_path: str | None = None) -> dict[str, str]:
    """The files that make nodes pull `SRC/PATH` from `target`'s `HOST/PREFIX/PATH` for every source registry
    (the internal registry itself left out): containerd's hosts.toml per source, k3s/RKE2's registries.yaml, a
    containers-registries.conf drop-in and OpenShift's two mirror sets. Every name is checked first: a source
    outside the host grammar is a VerificationError listing them all; a bad target or CA path a UsageError.
    `node_ca_path` is the CA's path on the nodes, written where a format has one (containerd, k3s)."""
    target.check()
    if node_ca_path is not None:
        if target.scheme != "https":
            raise UsageError("--node-ca-path: the registry is plain HTTP; nodes use no CA for it")
        check_node_ca_path(node_ca_path)
    hosts = [host for host in check_source_hosts(sources) if host != target.host]
    files = {hosts_toml_path(host): hosts_toml(target, host, node_ca_path) for host in hosts}
    files[K3S_REGISTRIES] = registries_yaml(target, hosts, node_ca_path)
    files[CONTAINERS_DROP_IN] = registries_conf(target, hosts)
    files[OPENSHIFT_DIGESTS] = image_digest_mirror_set(target, hosts)
    files[OPENSHIFT_TAGS] = image_tag_mirror_set(target, hosts)
    return files
