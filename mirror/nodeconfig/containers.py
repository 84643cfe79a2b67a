"""A containers-registries.conf(5) drop-in (registries.conf.d/, version 2 format) for CRI-O, Podman, Buildah and
skopeo: each source registry with the internal registry as its mirror."""

from __future__ import annotations

from mirror.nodeconfig.hosts import MirrorTarget
from mirror.nodeconfig.toml import toml_string

CONTAINERS_DROP_IN = "containers/registries.conf.d/50-mirror.conf"


def registries_conf(target: MirrorTarget, sources: list[str]) -> str:
    """`[[registry]]` per source (prefix and location: the source itself, the fallback), its `[[registry.mirror]]`
    the internal `HOST/PREFIX`, so `SRC/PATH` is pulled from `HOST/PREFIX/PATH`. A plain-HTTP registry is an
    `insecure` mirror; a CA is not a setting of this file (containers-certs.d(5) reads the registry's CA from
    certs.d/HOST/), so none is written."""
    lines = [
        f"# Images of these registries are pulled from {target.location}/<path>, where mirror puts them.",
    ]
    if target.scheme == "https":
        lines.append(f"# The CA of {target.host}: see containers-certs.d(5).")
    for source in sources:
        lines += [
            "",
            "[[registry]]",
            f"prefix = {toml_string(source)}",
            f"location = {toml_string(source)}",
            "",
            "[[registry.mirror]]",
            f"location = {toml_string(target.location)}",
        ]
        if target.scheme == "http":
            lines.append("insecure = true")
    return "\n".join(lines) + "\n"
