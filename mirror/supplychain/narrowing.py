"""Whether an index a platform filter narrowed is the upstream index less some of its children: so that what is
attached to the upstream index (its signatures) can vouch for the narrowed index the target receives."""

from __future__ import annotations

from mirror.errors import InvalidDocumentError
from mirror.oci.document import ManifestDocument, parse_manifest


def narrowed_from(narrowed: ManifestDocument, upstream_raw: bytes) -> bool:
    """True when `narrowed` is the index `upstream_raw` with some of its children left out, and nothing else
    changed: the same media type and fields, each child listed once, described exactly as upstream lists it."""
    try:
        upstream = parse_manifest(upstream_raw, declared_type=None, where="upstream index")
    except InvalidDocumentError:
        return False
    if not (upstream.is_index and narrowed.is_index) or upstream.media_type != narrowed.media_type:
        return False
    if {k: v for k, v in narrowed.body.items() if k != "manifests"} != {
        k: v for k, v in upstream.body.items() if k != "manifests"
    }:
        return False
    offered = [dict(child.raw) for child in upstream.manifests]
    kept = [dict(child.raw) for child in narrowed.manifests]
    return all(kept.count(child) == 1 and child in offered for child in kept)
