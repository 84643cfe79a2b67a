"""containerd's registry host configuration: `certs.d/<source>/hosts.toml`, one per source registry, in the
directory containerd's CRI `config_path` names (usually /etc/containerd/certs.d)."""

from __future__ import annotations

from mirror.nodeconfig.hosts import MirrorTarget
from mirror.nodeconfig.toml import toml_string
from mirror.oci.reference import DOCKER_HUB

_DOCKER_HUB_SERVER = "registry-1.docker.io"  # docker.io names Docker Hub; its registry API is served here


def hosts_toml_path(source: str) -> str:
    return f"containerd/certs.d/{source}/hosts.toml"


def hosts_toml(target: MirrorTarget, source: str, node_ca_path: str | None) -> str:
    """The internal registry as a pull/resolve host for `source`, the upstream `server` as the fallback. With a
    prefix, the host URL holds `/v2/PREFIX` and `override_path = true`, so containerd asks for
    `/v2/PREFIX/PATH/manifests/…`."""
    upstream = _DOCKER_HUB_SERVER if source == DOCKER_HUB else source
    host_url = target.endpoint + (f"/v2/{target.prefix}" if target.prefix else "")
    lines = [
        f"# {source} images are pulled from {target.location}/<path>, where mirror puts them",
        f"server = {toml_string('https://' + upstream)}",
        "",
        f"[host.{toml_string(host_url)}]",
        '  capabilities = ["pull", "resolve"]',
    ]
    if target.prefix:
        lines.append("  override_path = true")
    if node_ca_path:
        lines.append(f"  ca = {toml_string(node_ca_path)}")
    return "\n".join(lines) + "\n"
