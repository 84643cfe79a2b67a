"""The review model: everything `mirror inspect` shows, built once and rendered as text, JSON or HTML.

It reads the inventory, the signatures, and for images and charts their small documents (facts.py); never a
layer. "Since base" is the inventory's own account (base, expected blobs) and, when the base itself is at
hand (`--base PREV`), the full diff against it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from mirror.bundle.inventory import ArtifactRecord
from mirror.bundle.reader import BundleReader
from mirror.egress import is_plain_http, url_host
from mirror.limits import DEFAULT_LIMITS
from mirror.review.diff import Diff, diff_sources, version_of
from mirror.review.facts import ArtifactFacts, artifact_facts
from mirror.review.found import FOUND_TITLES, found_of
from mirror.review.policycheck import PolicyCheck, check_policy
from mirror.review.signatures import SignatureReview, SignatureView, review_signatures
from mirror.review.source import Source, open_source
from mirror.review.upstream import SUPPLY_CHAIN_KINDS, Placed, Upstream, place, upstream_of
from mirror.supplychain.roots import judged_sources
from mirror.trust.policy import load_policy
from mirror.trust.upstream import policy_trusted_roots

KINDS = ("image", "chart", "git", "flux", "file")
KIND_TITLES = {"image": "Images", "chart": "Charts", "git": "Git sources", "flux": "Flux artifacts", "file": "Files"}


@dataclass
class Entry:
    artifact: ArtifactRecord
    found: str
    facts: ArtifactFacts
    in_bundle: bool  # its own document (manifest, git bundle, objects) is carried, not expected from the base
    upstream: Upstream = field(default_factory=Upstream)  # what upstream attached to it; who signed it
    # An OCI chart that is also an image record (the OCI artifact a Flux object names): how that one was found.
    also_found: list[str] = field(default_factory=list)

    @property
    def found_phrase(self) -> str:
        return ", ".join(dict.fromkeys(FOUND_TITLES.get(f, f) for f in (self.found, *self.also_found)))

    @property
    def version(self) -> str | None:
        return version_of(self.artifact)


@dataclass
class Review:
    source: Source
    entries: list[Entry]
    signatures: SignatureReview
    supply_chain: Placed = field(default_factory=lambda: Placed({}, [], []))
    since_base: Diff | None = None
    notes: list[str] = field(default_factory=list)
    policy_check: PolicyCheck | None = None  # the policy's requireSignatures over the images (--trust)

    def group(self, kind: str) -> list[Entry]:
        return [e for e in self.entries if e.artifact.kind == kind]

    @property
    def other_kinds(self) -> list[str]:
        return sorted({e.artifact.kind for e in self.entries} - set(KINDS))

    @property
    def collection(self) -> SignatureView | None:
        """The collection statement to show: a verified one first, otherwise the first as claimed."""
        collections = [s for s in self.signatures.signatures if s.kind == "collection"]
        return next((s for s in collections if s.verified), collections[0] if collections else None)

    @property
    def title(self) -> str:
        """What the bundle is: the MirrorSets collected and who collected it (docs/officer-guide.md)."""
        return ", ".join(self.title_parts)

    @property
    def title_parts(self) -> tuple[str, str]:
        """(`MirrorSets platform, apps`, `collected by NAME with KEY-NAME (key ID)`)."""
        names = self.source.inventory.mirror_sets
        if not names:
            what = "MirrorSets not recorded (an older bundle)"
        else:
            what = ("MirrorSet " if len(names) == 1 else "MirrorSets ") + ", ".join(names)
        collection = self.collection
        if collection is None:
            return what, "not signed by a collector"
        if collection.signer.split(" (", 1)[0] == collection.collector:  # the key is named as the collector
            return what, f"collected by {collection.signer}"
        return what, f"collected by {collection.collector} with {collection.signer}"

    @property
    def plain_http_hosts(self) -> list[str]:
        """Hosts reached in clear text: as the collector recorded them, and (for inventories from before it did)
        the hosts of sources it names by an http:// or git:// URL."""
        inventory = self.source.inventory
        found = [h.host for h in inventory.hosts if h.plain_http]
        for artifact in inventory.artifacts:
            for url in (artifact.source, artifact.extra.get("repo")):
                if isinstance(url, str) and is_plain_http(url):
                    found.append(url_host(url))
        return list(dict.fromkeys(h for h in found if h))

    @property
    def attached_count(self) -> int:
        return sum(e.upstream.count for e in self.entries) + len(self.supply_chain.unplaced)

    @property
    def carried_bytes(self) -> int:
        return self.source.inventory.total_size

    @property
    def expected_bytes(self) -> int:
        return sum(size for _, size in self.source.expected)


class _Overlay:
    """A bundle seen through its base: files of the bundle first, then the base's (reads only, for facts)."""

    def __init__(self, primary: BundleReader, fallback: BundleReader) -> None:
        self.location = primary.location
        self._readers = (primary, fallback)
        self._files = {**fallback.files(), **primary.files()}

    def files(self) -> dict[str, int]:
        return self._files

    def open(self, path: str) -> BinaryIO:
        for reader in self._readers:
            if path in reader.files():
                return reader.open(path)
        return self._readers[0].open(path)  # raises, naming the bundle


def build_review(
    bundle: str | Path,
    *,
    trust: Path | None = None,
    base: str | Path | None = None,
    clock: dt.datetime | None = None,
) -> Review:
    # The policy first: a bad one (or a trustedRoot of its own that does not load) is exit 2, before the bundle.
    policy = load_policy(trust) if trust is not None else None
    own_roots = policy_trusted_roots(policy, DEFAULT_LIMITS) if policy is not None else {}
    source = open_source(bundle)
    signatures = review_signatures(
        source.reader,
        source.inventory_sha256,
        source.inventory.bundle_id,
        judged_sources(source.inventory.artifacts),
        policy,
        clock,
    )
    # From the bundle's own reader, never the base's: what verify and import will judge.
    policy_check = check_policy(source, policy, own_roots, DEFAULT_LIMITS) if policy is not None else None
    previous = open_source(base) if base is not None else None
    reader = source.reader
    if reader is not None and previous is not None and previous.reader is not None:
        reader = _Overlay(reader, previous.reader)  # an incremental bundle's unchanged documents are in its base
    carried = source.blob_sizes
    placed = place(source.inventory.artifacts)
    # The signers an inventory records are the collector's word only if its signature over this inventory counts.
    vouched = any(s.kind == "collection" and s.status == "counted" for s in signatures.signatures)
    entries = []
    folded = _oci_charts_as_images(source.inventory.artifacts)
    for artifact in source.inventory.artifacts:
        if artifact.kind in SUPPLY_CHAIN_KINDS:
            continue  # shown with the artifact they belong to (placed), not as artifacts of their own
        if artifact.kind == "image" and (artifact.source, artifact.digest) in folded:
            continue  # the chart's entry says how this record was found too
        in_bundle = artifact.digest in carried
        if in_bundle or reader is not source.reader or reader is None:
            facts = artifact_facts(reader, artifact)
        else:
            facts = ArtifactFacts(notes=["carried by the base chain, not by this bundle (give --base to read it)"])
        upstream = upstream_of(reader, artifact, placed.owned.get(artifact.source, []), vouched=vouched)
        if policy_check is not None:
            upstream.policy = policy_check.of(artifact)
        entry = Entry(artifact, found_of(artifact), facts, in_bundle, upstream)
        if artifact.kind == "chart":
            entry.also_found = folded.get((artifact.source, artifact.digest), [])
        entries.append(entry)
    review = Review(source, entries, signatures, placed, policy_check=policy_check)
    if previous is not None:
        review.since_base = diff_sources(previous, source)
        if source.base is None:
            review.notes.append(f"the inventory names no base; compared with {previous.location} as asked")
    return review


def _oci_charts_as_images(artifacts: tuple[ArtifactRecord, ...]) -> dict[tuple[str, str], list[str]]:
    """OCI charts that are also recorded as images (a Flux OCIRepository names the chart): by (source, digest),
    how each image record was found. One artifact, listed once, under Charts."""
    charts = {(a.source, a.digest) for a in artifacts if a.kind == "chart"}
    folded: dict[tuple[str, str], list[str]] = {}
    for artifact in artifacts:
        key = (artifact.source, artifact.digest)
        if artifact.kind == "image" and key in charts:
            folded.setdefault(key, []).append(found_of(artifact))
    return folded
