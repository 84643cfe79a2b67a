"""A chart archive from an HTTP repository, stored as an OCI Helm chart: its bytes unchanged as the one layer.

The manifest is built deterministically (no `created` annotation, unlike `helm push`), so the same archive
always gives the same digest, night after night.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from mirror.oci import mediatypes as mt
from mirror.oci.digest import sha256_digest

HELM_CONFIG = "application/vnd.cncf.helm.config.v1+json"
HELM_CHART_LAYER = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"


def chart_config(metadata: Mapping[str, Any]) -> bytes:
    """Helm's config blob: the Chart.yaml metadata as JSON."""
    return json.dumps(dict(metadata), sort_keys=True, separators=(",", ":"), default=str).encode()


def chart_manifest(config: bytes, archive_digest: str, archive_size: int, name: str, version: str) -> bytes:
    body = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "config": {"mediaType": HELM_CONFIG, "digest": sha256_digest(config), "size": len(config)},
        "layers": [{"mediaType": HELM_CHART_LAYER, "digest": archive_digest, "size": archive_size}],
        "annotations": {"org.opencontainers.image.title": name, "org.opencontainers.image.version": version},
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
