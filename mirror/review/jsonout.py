"""The JSON forms of a review and a diff: stable schemas, listed in the README and docs/review.md."""

from __future__ import annotations

from collections import Counter
from typing import Any

from mirror.review.diff import Diff, summary_counts
from mirror.review.facts import ArtifactFacts
from mirror.review.model import Entry, Review
from mirror.review.policycheck import PolicyCheck
from mirror.review.upstream import Upstream
from mirror.supplychain.summary import Signer

SCHEMA_VERSION = 1
_CORE = {"kind", "source", "digest", "mediaType", "size", "via"}


def _facts(facts: ArtifactFacts) -> dict[str, Any]:
    chart = facts.chart
    return {
        "contentSize": facts.content_size,
        "platforms": [
            {
                "manifest": p.manifest,
                "os": p.os,
                "architecture": p.architecture,
                "variant": p.variant,
                "labels": p.labels,
                "layers": p.layers,
                "size": p.size,
            }
            for p in facts.platforms
        ],
        "chart": None
        if chart is None
        else {
            "name": chart.name,
            "version": chart.version,
            "appVersion": chart.app_version,
            "description": chart.description,
            "dependencies": list(chart.dependencies),
        },
        "objects": [o.to_json() for o in facts.objects],
        "moreObjects": facts.more_objects,
        "notes": list(facts.notes),
    }


def _signer(signer: Signer | None) -> dict[str, str] | None:
    return None if signer is None else signer.to_json()


def upstream_json(upstream: Upstream) -> dict[str, Any]:
    summary = upstream.summary
    return {
        "count": upstream.count,
        "signers": [s.to_json() for s in upstream.signers],
        "signatures": [
            {
                "manifest": s.manifest,
                "form": s.form,
                "keyless": s.keyless,
                "claimedSigner": _signer(s.claimed),
                "signs": s.signs,
                "verified": bool(verified),
                "verifiedBy": [v.to_json() for v in verified],
                "notes": list(s.notes),
            }
            for s in summary.signatures
            for verified in [upstream.verified_by(s)]
        ],
        "attestations": [
            {
                "manifest": a.manifest,
                "predicateType": a.predicate_type,
                "builder": a.builder,
                "claimedSigner": _signer(a.claimed),
                "notes": list(a.notes),
            }
            for a in summary.attestations
        ],
        "sboms": [
            {
                "manifest": s.manifest,
                "format": s.format,
                "version": s.version,
                "packages": s.packages,
                "predicateType": s.predicate_type,
                "notes": list(s.notes),
            }
            for s in summary.sboms
        ],
        "other": [
            {"manifest": o.manifest, "artifactType": o.artifact_type, "notes": list(o.notes)} for o in summary.other
        ],
        "notes": list(summary.notes),
        "policyCheck": None if upstream.policy is None else [c.to_json() for c in upstream.policy],
    }


def _policy_check(check: PolicyCheck | None) -> dict[str, Any] | None:
    if check is None:
        return None
    verified, refused, not_required = check.count()
    return {
        "rules": [{"rule": rule, "requires": requires} for rule, requires in check.rules],
        "note": check.note,
        "verified": verified,
        "refused": refused,
        "notRequired": not_required,
    }


def _supply_chain(review: Review) -> dict[str, Any]:
    placed = review.supply_chain
    return {
        "attached": review.attached_count,
        "trustedRoots": [{"source": r.source, "digest": r.digest} for r in placed.trusted_roots],
        "unplaced": [
            {"source": a.artifact.source, "subject": a.subject, "image": a.image, "artifactType": a.artifact_type}
            for a in placed.unplaced
        ],
        "policyCheck": _policy_check(review.policy_check),
    }


def entry_json(entry: Entry) -> dict[str, Any]:
    artifact = entry.artifact
    return {
        "kind": artifact.kind,
        "source": artifact.source,
        "version": entry.version,
        "digest": artifact.digest,
        "mediaType": artifact.media_type,
        "size": artifact.size,
        "found": entry.found,
        "alsoFound": list(entry.also_found),
        "inBundle": entry.in_bundle,
        "details": {k: v for k, v in artifact.extra.items() if k not in _CORE},
        **_facts(entry.facts),
        "attached": upstream_json(entry.upstream),
    }


def diff_json(diff: Diff) -> dict[str, Any]:
    return {"schemaVersion": SCHEMA_VERSION, "kind": "BundleDiff", "summary": summary_counts(diff), **diff.to_json()}


def review_json(review: Review) -> dict[str, Any]:
    source = review.source
    inventory = source.inventory
    collection = review.collection
    kinds = Counter(e.artifact.kind for e in review.entries)
    plain = review.plain_http_hosts
    return {
        "schemaVersion": SCHEMA_VERSION,
        "kind": "BundleReview",
        "bundle": {
            "location": source.location,
            "title": review.title,
            "mirrorSets": list(inventory.mirror_sets),
            "form": "bundle" if source.reader is not None else "inventory",
            "bundleId": inventory.bundle_id,
            "inventorySha256": source.inventory_sha256,
            "created": inventory.created,
            "tool": inventory.tool,
        },
        "totals": {
            "artifacts": len(review.entries),
            "byKind": {kind: kinds.get(kind, 0) for kind in sorted({"image", "chart", "git", "flux", *kinds})},
            "files": len(inventory.files),
            "bytes": review.carried_bytes,
            "expectedBlobs": len(source.expected),
            "expectedBytes": review.expected_bytes,
        },
        "signing": {
            "policy": review.signatures.policy,
            "verdict": review.signatures.verdict,
            "state": review.signatures.state,
            "approvals": None
            if review.signatures.policy is None
            else {"given": review.signatures.approvals_given, "required": review.signatures.approvals_required},
            "problems": list(review.signatures.problems),
            "collector": collection.collector if collection else None,
            "sequence": collection.sequence if collection else None,
            "created": collection.created if collection else None,
            "expires": collection.expires if collection else None,
            "verified": bool(collection and collection.verified),
            "signatures": [s.to_json() for s in review.signatures.signatures],
        },
        "base": None
        if source.base is None
        else {"inventory": source.base.inventory, "bundleId": source.base.bundle_id, "created": source.base.created},
        "sinceBase": None if review.since_base is None else diff_json(review.since_base),
        "volumes": [v.to_json() for v in source.volumes],
        "hosts": [{"host": h.host, "how": h.how, "plainHTTP": h.host in plain} for h in inventory.hosts],
        "plainHTTPHosts": plain,
        "supplyChain": _supply_chain(review),
        "artifacts": [entry_json(e) for e in review.entries],
        "notes": list(review.notes),
    }
