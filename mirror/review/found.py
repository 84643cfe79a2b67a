"""How the collector found an artifact: listed in a MirrorSet, or discovered (docs/review.md)."""

from __future__ import annotations

from mirror.bundle.inventory import ArtifactRecord

FOUND_TITLES = {
    "listed": "listed",
    "chart": "chart discovery",
    "flux": "Flux object",
    "dependency": "chart dependency",
}


def found_of(artifact: ArtifactRecord) -> str:
    """How the collector found it; bundles from before `via` was recorded are judged by what they do record."""
    via = artifact.extra.get("via")
    if isinstance(via, str) and via in FOUND_TITLES:
        return via
    if artifact.kind == "chart" and artifact.extra.get("requiredBy"):
        return "dependency"
    if artifact.kind == "image" and artifact.extra.get("foundBy"):
        return "chart"
    if artifact.kind in ("git", "flux"):
        return "listed"
    return "unrecorded"
