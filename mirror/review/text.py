"""The review and the diff as plain text for a terminal. Text from the bundle is untrusted: control
characters (escape sequences that could repaint the terminal) are shown as \\x.. escapes."""

from __future__ import annotations

from mirror.progress import human_size
from mirror.review.diff import Diff, SignerChange
from mirror.review.fluxobjects import ObjectChange
from mirror.review.found import FOUND_TITLES, found_of
from mirror.review.model import KIND_TITLES, KINDS, Entry, Review
from mirror.review.policycheck import PolicyCheck, RuleCheck
from mirror.review.signatures import SignatureView
from mirror.review.upstream import Upstream
from mirror.supplychain.summary import AttestationSummary, SbomSummary, SignatureSummary, Signer
from mirror.terminal import escape as clean


def _short(digest: str | None) -> str:
    return (digest or "-").removeprefix("sha256:")[:12]


def event_lines(diff: Diff, indent: str = "") -> list[str]:
    """`supply-chain events (N)` and one line per event, marked ALARM, CHECK or NOTE; or that there are none."""
    events = diff.events
    if not events:
        return [
            f"{indent}supply-chain events: none (no signer changes, moved tags, republished charts or rewritten "
            "history)"
        ]
    lines = [f"{indent}supply-chain events ({len(events)}): check each before approving"]
    for event in events:
        lines.append(f"{indent}  {event.mark}  {clean(event.what)}  {clean(event.source)}  {clean(event.detail)}")
    return lines


def diff_lines(diff: Diff, indent: str = "") -> list[str]:
    lines = [
        f"{indent}from {clean(diff.old)} (bundle {clean(diff.old_bundle_id)}) to {clean(diff.new)}",
        f"{indent}{len(diff.added)} added, {len(diff.removed)} removed, {len(diff.changed)} changed, "
        f"{diff.unchanged} unchanged; {len(diff.new_blobs)} new blob(s), {human_size(diff.new_blob_bytes)}"
        + (f"; {len(diff.signers)} signer change(s)" if diff.signers else "")
        + (f", {len(diff.signer_alarms)} ALARM(s)" if diff.signer_alarms else ""),
    ]
    for change in diff.changed:
        if change.what == "version bump":
            lines.append(
                f"{indent}  chart bumped   {clean(change.source)}  {clean(change.old_version)} -> "
                f"{clean(change.new_version)}"
            )
        elif change.kind == "file":  # its bytes' sha256 in full: what an officer compares with the publisher's
            lines.append(
                f"{indent}  {clean(change.what):<14} {clean(change.source)}  {clean(change.old_version or '-')} -> "
                f"{clean(change.new_version or '-')}"
            )
        else:
            lines.append(
                f"{indent}  {change.what:<14} {clean(change.source)}  {_short(change.old_digest)} -> "
                f"{_short(change.new_digest)}"
            )
    for artifact in diff.added:
        size = diff.size_of(artifact)
        lines.append(
            f"{indent}  added          {clean(artifact.kind):<5} {clean(artifact.source)}  {artifact.digest}  "
            f"{human_size(size) if size is not None else 'size not read'}  "
            f"found: {FOUND_TITLES.get(found_of(artifact), found_of(artifact))}"
        )
    for artifact in diff.removed:
        lines.append(f"{indent}  removed        {clean(artifact.kind):<5} {clean(artifact.source)}  {artifact.digest}")
    if diff.removal_note:
        lines.append(f"{indent}    ({diff.removal_note})")
    for move in diff.refs:
        lines.append(
            f"{indent}  ref moved      {clean(move.source)} {clean(move.ref)}  {_short(move.old)} -> {_short(move.new)}"
        )
        if move.note:
            lines.append(f"{indent}    ({clean(move.note)})")
        for commit in move.commits:
            lines.append(f"{indent}    {commit.id[:12]} {clean(commit.subject)}")
        if move.total > len(move.commits):
            lines.append(f"{indent}    ... and {move.total - len(move.commits)} more commit(s)")
        if move.dropped:
            lines.append(f"{indent}    not a fast-forward: {move.dropped} commit(s) of the old state are gone")
    for fleet in diff.flux:
        lines.append(f"{indent}  flux objects   {clean(fleet.source)} {clean(fleet.path)}")
        lines += [f"{indent}    {clean(object_change_line(change))}" for change in fleet.objects]
        if fleet.note:
            lines.append(f"{indent}    ({clean(fleet.note)})")
    lines += signer_lines(diff, indent)
    for note in diff.notes:
        lines.append(f"{indent}  note: {clean(note)}")
    return lines


def object_change_line(change: ObjectChange) -> str:
    """`HelmRelease apps/web changed: spec.chart.spec.version "1.0.0" -> "1.1.0"` (unescaped)."""
    line = f"{change.name.display} {change.what}"
    if change.fields:
        line += ": " + "; ".join(f.describe(not change.hidden) for f in change.fields)
    if change.more_fields:
        line += f"; and {change.more_fields} more field(s)"
    return line


def signers_phrase(signers: tuple[Signer, ...]) -> str:
    return "; ".join(s.describe() for s in signers) or "none"


def signer_change_line(change: SignerChange) -> str:
    """`signer changed registry/app:1.0  key aa… -> key bb…  (tag moved)`, unescaped."""
    moved = "tag moved" if change.image_moved else "same digest"
    return f"{change.what:<14} {change.source}  {signers_phrase(change.old)} -> {signers_phrase(change.new)}  ({moved})"


def signer_lines(diff: Diff, indent: str = "") -> list[str]:
    """Upstream signer changes, alarms marked first on their line so that no reader can miss one."""
    lines = []
    for change in diff.signers:
        mark = "ALARM " if change.alarm else ""
        lines.append(f"{indent}  {mark}{clean(signer_change_line(change))}")
    if diff.attached_added or diff.attached_removed:
        lines.append(
            f"{indent}  {diff.attached_added} attached manifest(s) added, {diff.attached_removed} removed "
            "(signatures, attestations, SBOMs)"
        )
    return lines


def _entry_lines(entry: Entry) -> list[str]:
    artifact = entry.artifact
    size = entry.facts.content_size if entry.facts.content_size is not None else artifact.size
    lines = [
        f"  {clean(artifact.source)}",
        f"      {clean(entry.version or '-')}  {artifact.digest}  {human_size(size)}  "
        f"found: {entry.found_phrase}" + ("" if entry.in_bundle else "  (in base)"),
    ]
    for platform in entry.facts.platforms:
        arch = "/".join(x for x in (platform.os, platform.architecture, platform.variant) if x) or "unknown platform"
        lines.append(f"      {clean(arch)}  {platform.layers} layer(s)  {len(platform.labels)} label(s)")
    chart = entry.facts.chart
    if chart:
        lines.append(
            f"      Chart.yaml: {clean(chart.name)} {clean(chart.version)}, appVersion {clean(chart.app_version)}"
        )
    extra = artifact.extra
    if artifact.kind == "git":
        lines.append(f"      commit {clean(extra.get('commit', '-'))}, {len(extra.get('heads') or {})} ref(s)")
    if artifact.kind == "flux" and (entry.facts.objects or entry.facts.more_objects):
        lines.append(f"      {len(entry.facts.objects) + entry.facts.more_objects} object(s):")
        lines += [f"        {clean(name.display)}" for name in entry.facts.objects]
        if entry.facts.more_objects:
            lines.append(f"        ... and {entry.facts.more_objects} more")
    if artifact.kind == "chart" and extra.get("requiredBy"):
        lines.append(f"      dependency of {clean(extra['requiredBy'])}")
    if artifact.kind == "file":
        file_size = extra.get("fileSize")
        lines.append(
            f"      file {clean(str(extra.get('name')))}  sha256 {clean(str(extra.get('fileSha256')))}  "
            f"{human_size(file_size) if isinstance(file_size, int) else '-'}, tag {clean(str(extra.get('tag')))}"
        )
    for reason in extra.get("foundBy") or []:
        lines.append(f"      used by {clean(reason)}")
    for note in entry.facts.notes:
        lines.append(f"      note: {clean(note)}")
    return lines + _upstream_lines(entry.upstream)


def signature_claim(signature: SignatureSummary) -> str:
    """What a signature says of its signer (unescaped)."""
    claimed = signature.claimed
    if signature.keyless:
        return f"{signature.form}, keyless" + (
            f", {claimed.describe()} (claimed by its certificate)" if claimed else ""
        )
    if claimed is not None:
        return f"{signature.form}, key hint {claimed.key} (claimed)"
    return f"{signature.form}, key-based (the signature names no key)"


def attestation_line(attestation: AttestationSummary) -> str:
    """An attestation: its predicate type, a provenance's builder, who claims to have attested (unescaped)."""
    line = attestation.predicate_type or "unknown predicate type"
    if attestation.builder:
        line += f"  builder {attestation.builder}"
    if attestation.claimed:
        line += f"  attested by {attestation.claimed.describe()} (claimed)"
    return line


def sbom_line(sbom: SbomSummary) -> tuple[str, tuple[str, ...]]:
    """An SBOM: format, version, package count or why it is not known (unescaped); and its other notes."""
    line = " ".join(x for x in (sbom.format or "unknown format", sbom.version) if x)
    notes = sbom.notes
    if sbom.packages is not None:
        line += f", {sbom.packages} {'components' if sbom.format == 'CycloneDX' else 'packages'}"
    elif notes:
        line, notes = f"{line}, {notes[0]}", notes[1:]
    if sbom.predicate_type:
        line += f" (attested, {sbom.predicate_type})"
    return line, notes


def _upstream_lines(upstream: Upstream) -> list[str]:
    summary = upstream.summary
    lines: list[str] = []

    def notes(found: tuple[str, ...] | list[str]) -> None:
        lines.extend(f"        note: {clean(n)}" for n in found)

    if upstream.signers and not summary.signatures:
        lines.append(f"      signed: {clean(upstream.collector_verified(upstream.signers))}; no signature is carried")
    for signature in summary.signatures:
        lines.append(f"      signature  {clean(signature_claim(signature))}  {clean(upstream.verification(signature))}")
        notes(signature.notes)
    for attestation in summary.attestations:
        lines.append(f"      attestation  {clean(attestation_line(attestation))}")
        notes(attestation.notes)
    for sbom in summary.sboms:
        line, rest = sbom_line(sbom)
        lines.append(f"      SBOM  {clean(line)}")
        notes(rest)
    for other in summary.other:
        lines.append(f"      attached  {clean(other.artifact_type)}")
        notes(other.notes)
    notes(summary.notes)
    for check in upstream.policy or []:
        lines.append(f"      trust policy  {clean(rule_check_line(check))}")
    if upstream.policy == []:
        lines.append(f"      trust policy  {NO_RULE_APPLIES}")
    return lines


NO_RULE_APPLIES = "no requireSignatures rule applies to it"
# Clear text: anyone on the network path could have answered in the upstream's name (docs/officer-guide.md).
PLAIN_HTTP = "PLAIN HTTP"


def rule_check_line(check: RuleCheck) -> str:
    """`requireSignatures[0] (key …): verified, signed by key …`, or `…: REFUSED, CODE: reason` (unescaped)."""
    rule = f"{check.rule} ({check.requires})"
    if check.verified:
        return f"{rule}: verified, signed by {signers_phrase(check.signers)}"
    return f"{rule}: REFUSED, {check.code}: {check.reason}"


def policy_check_counts(check: PolicyCheck) -> str:
    """What the policy's requireSignatures made of the images, in one line; or why nothing was checked."""
    if check.note is not None:
        return check.note
    verified, refused, not_required = check.count()
    return (
        f"{len(check.rules)} requireSignatures rule(s): {verified} image(s) verified, {refused} REFUSED, "
        f"{not_required} not required"
    )


def supply_chain_counts(review: Review) -> str:
    """`6 attached manifest(s) on 1 artifact(s): 2 signature(s), …`, or that nothing is attached."""
    summaries = [e.upstream.summary for e in review.entries if e.upstream.count]
    if not review.attached_count:
        return "nothing attached upstream (no signatures, attestations or SBOMs)"
    return (
        f"{review.attached_count} attached manifest(s) on {len(summaries)} artifact(s): "
        f"{sum(len(s.signatures) for s in summaries)} signature(s), "
        f"{sum(len(s.attestations) for s in summaries)} attestation(s), "
        f"{sum(len(s.sboms) for s in summaries)} SBOM(s), {sum(len(s.other) for s in summaries)} other"
    )


def _supply_chain_lines(review: Review) -> list[str]:
    placed = review.supply_chain
    lines = ["", "upstream supply chain", f"  {supply_chain_counts(review)}"]
    if review.policy_check is not None:
        lines.append(f"  trust policy: {clean(policy_check_counts(review.policy_check))}")
    for root in placed.trusted_roots:
        lines.append(f"  Sigstore trusted root carried ({clean(root.digest)})")
    if placed.unplaced:
        lines.append(f"  {len(placed.unplaced)} attached manifest(s) attached to nothing in this bundle:")
        for attached in placed.unplaced:
            lines.append(f"    {clean(attached.artifact.source)} (subject {clean(attached.subject)})")
    return lines


def signature_heading(signature: SignatureView) -> str:
    """`approval by officer-a (key ab12…), 2026-01-01T00:00:00Z: counted` (unescaped)."""
    what = signature.kind if signature.kind != "unknown" else "signature"
    when = signature.time or signature.created
    return f"{what} by {signature.signer}" + (f", {when}" if when else "") + f": {signature.status}"


def _signature_lines(signature: SignatureView) -> list[str]:
    lines = [f"  {clean(signature_heading(signature))}"]
    if signature.kind == "collection":
        lines.append(
            f"      collector {clean(signature.collector)}, sequence {signature.sequence}, "
            f"expires {clean(signature.expires)}"
        )
    if signature.comment:
        lines.append(f"      comment: {clean(signature.comment)}")
    if signature.detail:
        lines.append(f"      {clean(signature.detail)}")
    lines.append(f"      file {clean(signature.file)}")
    return lines


def review_text(review: Review) -> str:
    source = review.source
    inventory = source.inventory
    collection = review.collection
    lines = [
        clean(review.title),
        f"bundle {clean(source.location)}",
        f"  id {clean(inventory.bundle_id)}, inventory sha256 {source.inventory_sha256}",
        f"  created {clean(inventory.created)} by {clean(inventory.tool)}",
    ]
    if collection:
        claim = "" if collection.verified else " (claimed by the collector signature, not verified)"
        lines.append(
            f"  sequence {collection.sequence}, expires {clean(collection.expires)}, collector "
            f"{clean(collection.collector)}{claim}"
        )
    else:
        lines.append("  no collector signature: no sequence or expiry")
    counts = ", ".join(f"{len(review.group(k))} {KIND_TITLES[k].lower()}" for k in KINDS)
    lines.append(
        f"  {len(review.entries)} artifact(s): {counts}; {len(inventory.files)} files, "
        f"{human_size(review.carried_bytes)} carried"
    )
    plain = review.plain_http_hosts
    if plain:
        lines.append(f"  {PLAIN_HTTP}: {len(plain)} host(s) reached without TLS: {clean(', '.join(plain))}")
    lines.append("")
    if review.since_base is not None:
        lines += event_lines(review.since_base)
    else:
        lines.append("supply-chain events: give --base PREV (the bundle before this one) to see them")
    lines += ["", "since base"]
    if source.base:
        lines.append(
            f"  base {clean(source.base.inventory)} (bundle {clean(source.base.bundle_id)}, "
            f"created {clean(source.base.created)})"
        )
        lines.append(
            f"  {len(source.expected)} blob(s), {human_size(review.expected_bytes)}, expected from the base chain"
        )
    elif review.since_base is None:
        lines.append("  none: a full bundle")
    if review.since_base is not None:
        lines += diff_lines(review.since_base, "  ")
    elif source.base:
        lines.append("  (give --base PREV to list what changed)")
    if source.volumes:
        lines.append(f"  {len(source.volumes)} data volume(s)")
    lines += ["", f"signatures: {review.signatures.verdict}"]
    for signature in review.signatures.in_order:
        lines += _signature_lines(signature)
    if not review.signatures.signatures:
        lines.append("  none")
    for problem in review.signatures.problems:
        lines.append(f"  - {clean(problem)}")
    lines += _supply_chain_lines(review)
    lines += ["", f"hosts contacted by the collector ({len(inventory.hosts)})"]
    for host in inventory.hosts:
        lines.append(f"  {clean(host.host)}  {clean(host.how)}" + (f"  {PLAIN_HTTP}" if host.host in plain else ""))
    if not inventory.hosts:
        lines.append("  not recorded (an inventory from before the egress policy)")
    for kind in (*KINDS, *review.other_kinds):
        group = review.group(kind)
        if not group:
            continue
        lines += ["", f"{clean(KIND_TITLES.get(kind, kind))} ({len(group)})"]
        for entry in group:
            lines += _entry_lines(entry)
    for note in review.notes:
        lines.append(f"note: {clean(note)}")
    return "\n".join(lines) + "\n"


def diff_text(diff: Diff) -> str:
    lines = diff_lines(diff)
    return "\n".join([*lines[:2], *event_lines(diff), *lines[2:]]) + "\n"
