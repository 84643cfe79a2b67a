"""--mirror-config DIR: the nodes' registry mirror files (mirror/nodeconfig/) for every registry the bundle's
images and charts came from, rendered while planning and written, after the registry and Git, into a directory
that is new, empty, or as the last night's import left it (mirror/importer/outdir.py). See docs/mirror-config.md."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from mirror.errors import UsageError
from mirror.importer.outdir import RecordedDirectory
from mirror.landing import ImagePlan
from mirror.nodeconfig.hosts import MirrorTarget, check_node_ca_path
from mirror.nodeconfig.render import render
from mirror.oci.reference import parse_reference
from mirror.registry.endpoint import Endpoint

if TYPE_CHECKING:
    from mirror.importer.run import WriteLog

RECORD_NAME = ".mirror-mirror-config.json"
MIRROR_CONFIG = RecordedDirectory(
    "--mirror-config", RECORD_NAME, "mirror.mirror-config/v1", lambda limits: limits.max_mirror_config_record_bytes
)


def source_registries(plans: Iterable[ImagePlan]) -> list[str]:
    """The registry host of every image, OCI chart and attached manifest that lands on the internal registry.
    Charts from HTTP repositories land under charts/, files under files/: no node pulls them from a registry
    they name."""
    hosts = set()
    for plan in plans:
        source = plan.source
        if plan.image.artifact.kind != "file" and not source.startswith(("http://", "https://")):
            hosts.add(parse_reference(source).registry)  # parsed already by the landing plan
    return sorted(hosts)


def plan_node_files(
    plans: Iterable[ImagePlan],
    endpoint: Endpoint,
    *,
    node_ca_path: str | None,
    local_ca: bool,
    warn: Callable[[str], None],
) -> dict[str, str]:
    """The node files for the internal registry `endpoint` ({relative path: text}), rendered in memory; every
    name checked (VerificationError listing every source host outside the grammar)."""
    target = MirrorTarget(endpoint.scheme, endpoint.netloc, endpoint.repo_prefix)
    sources = source_registries(plans)
    if target.host in sources:
        warn(f"images from {target.host} land on the same registry: the node files map no mirror for it")
    if local_ca and node_ca_path is None and target.scheme == "https":
        warn(
            "the node registry mirror files name no CA: the nodes must trust the registry's CA on their own "
            "(give its path on the nodes with --node-ca-path)"
        )
    return render(target, sources, node_ca_path=node_ca_path)


def check_output_flags(
    mirror_config: Path | None, flux_out: Path | None, node_ca_path: str | None, endpoint: Endpoint
) -> None:
    """--node-ca-path: an absolute path, for a TLS registry, with a directory to write it to; --mirror-config
    and --flux-out must not hold each other."""
    if node_ca_path is not None:
        if mirror_config is None and flux_out is None:
            raise UsageError("--node-ca-path is written into the node files: give --mirror-config DIR (or --flux-out)")
        if endpoint.scheme != "https":
            raise UsageError("--node-ca-path: the registry is plain HTTP; nodes use no CA for it")
        check_node_ca_path(node_ca_path)
    if mirror_config is not None and flux_out is not None:
        first, second = Path(mirror_config).absolute(), Path(flux_out).absolute()
        if first == second or first in second.parents or second in first.parents:
            raise UsageError(
                f"--mirror-config {mirror_config} and --flux-out {flux_out}: give two directories, neither in the other"
            )


def write_mirror_config(
    files: Mapping[str, str], directory: Path, written: WriteLog, planned: Mapping[str, str]
) -> None:
    """Write the node files over what the last night wrote (RecordedDirectory.write), counting each."""

    def count() -> None:
        written.mirror_config_files += 1

    MIRROR_CONFIG.write(files, directory, planned, on_file=count)
