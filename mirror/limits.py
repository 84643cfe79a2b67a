"""Every size, count and time limit in one place, so a reviewer can see what bounds the tool."""

from __future__ import annotations

from dataclasses import dataclass

MiB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    # Documents read whole into memory: distribution caps manifests at 4 MiB, so do we.
    max_manifest_bytes: int = 4 * MiB
    max_index_json_bytes: int = 16 * MiB
    max_inventory_bytes: int = 64 * MiB
    max_token_response_bytes: int = 1 * MiB
    max_error_body_bytes: int = 64 * 1024
    # Streaming.
    copy_chunk_bytes: int = 1 * MiB
    # Blobs above this size are uploaded in PATCH chunks of upload_chunk_bytes, each one resumable.
    monolithic_upload_max_bytes: int = 128 * MiB
    upload_chunk_bytes: int = 64 * MiB
    # Network.
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 60.0
    max_attempts: int = 4
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 8.0
    retry_after_max_s: float = 60.0
    max_redirects: int = 5
    max_tag_pages: int = 100
    # Helm repositories and charts.
    max_index_yaml_bytes: int = 64 * MiB
    max_chart_bytes: int = 100 * MiB
    # Import as a transaction (issue 12): the Flux objects blob is read whole and rendered in memory before
    # the first write, so it is bounded here (the same 64 MiB as fluxset's collect-side cap).
    max_flux_objects_bytes: int = 64 * MiB
    # Bundles.
    max_bundle_members: int = 1_000_000
    max_graph_depth: int = 4


DEFAULT_LIMITS = Limits()
