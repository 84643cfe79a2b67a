"""The review as one self-contained HTML file: inline CSS, no scripts, no external fetches, printable.

See docs/review.md ("Outputs").
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from mirror.progress import human_size
from mirror.review.diff import Diff
from mirror.review.found import FOUND_TITLES, found_of
from mirror.review.model import KIND_TITLES, KINDS, Entry, Review
from mirror.review.policycheck import RuleCheck
from mirror.review.signatures import AWAITING, NOT_VERIFIED, REFUSED, SATISFIED, SignatureView
from mirror.review.text import (
    NO_RULE_APPLIES,
    PLAIN_HTTP,
    policy_check_counts,
    sbom_line,
    signature_claim,
    signers_phrase,
    supply_chain_counts,
)
from mirror.review.upstream import Upstream
from mirror.terminal import escape as visible

_CSS = """
:root { --ink:#1b1f24; --muted:#5b6470; --line:#d5dae1; --ok:#1a7f37; --bad:#b42318; --warn:#9a6700; }
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; text-size-adjust: 100%; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--ink); margin: 2rem auto;
  max-width: 1100px; padding: 0 1rem; overflow-wrap: break-word; }
h1 { font-size: 1.45rem; margin: 0 0 .25rem; line-height: 1.25; } h2 { font-size: 1.15rem; margin: 1.8rem 0 .5rem;
  border-bottom: 2px solid var(--line); padding-bottom: .2rem; } h3 { font-size: 1rem; margin: 1.2rem 0 .4rem; }
code, .mono { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 12px; word-break: break-all; }
table { border-collapse: collapse; width: 100%; margin: .3rem 0 1rem; }
th, td { text-align: left; vertical-align: top; padding: .3rem .45rem; border-bottom: 1px solid var(--line); }
th { background: #f3f5f8; font-weight: 600; }
.summary td:first-child { width: 13rem; color: var(--muted); }
.status { display: inline-block; padding: .1rem .5rem; border-radius: 3px; font-weight: 600; }
.mark { white-space: nowrap; }
.ok { background: #dafbe1; color: var(--ok); } .bad { background: #ffebe9; color: var(--bad); }
.warn { background: #fff8c5; color: var(--warn); }
.muted { color: var(--muted); } .small { font-size: 12px; }
.verdict { font-size: 1.05rem; margin: .6rem 0 .2rem; } .byline { margin: 0 0 .2rem; }
ul.plain { margin: .2rem 0; padding-left: 1.1rem; }
.labels { width: auto; margin: 0 0 .3rem; } .labels td { border: 0; padding: 0 .6rem 0 0; font-size: 12px; }
tr.alarm td { background: #ffebe9; color: var(--bad); font-weight: 600; }
tr.alarm td:first-child { border-left: 4px solid var(--bad); }
tr.check td:first-child { border-left: 4px solid var(--warn); }
.entry { border: 1px solid var(--line); border-radius: 4px; padding: .45rem .6rem; margin: 0 0 .6rem; }
.entry .head { font-weight: 600; } .entry .head code { font-size: 13px; }
.entry .meta { color: var(--muted); font-size: 12px; margin: .1rem 0 .3rem; }
.platforms { display: flex; flex-wrap: wrap; gap: .3rem 1.2rem; }
.upstream { margin-top: .3rem; border-top: 1px dotted var(--line); padding-top: .2rem; }
@media (max-width: 700px) {
  body { margin: 1rem auto; padding: 0 .6rem; }
  h1 { font-size: 1.2rem; }
  table.stack thead { display: none; }
  table.stack, table.stack tbody, table.stack tr, table.stack td { display: block; width: 100%; }
  table.stack tr { border-bottom: 2px solid var(--line); padding: .25rem 0; }
  table.stack td { border: 0; padding: .1rem .3rem; }
  table.stack td:empty { display: none; }
  table.stack td[data-label]::before { content: attr(data-label); display: block; font-size: 11px;
    color: var(--muted); text-transform: uppercase; letter-spacing: .03em; }
  .summary, .summary tbody, .summary tr, .summary td { display: block; width: 100%; }
  .summary td { border: 0; padding: .05rem .3rem; }
  .summary td:first-child { width: auto; font-size: 11px; text-transform: uppercase; letter-spacing: .03em;
    padding-top: .4rem; }
  .summary tr { border-bottom: 1px solid var(--line); padding-bottom: .3rem; }
}
@media print {
  body { margin: 0; max-width: none; font-size: 10pt; }
  h2 { break-after: avoid; } tr, .entry { break-inside: avoid; }
  th { background: none; } .status { border: 1px solid currentColor; }
  a { color: inherit; text-decoration: none; }
}
"""


def _e(value: object) -> str:
    # Controls and bytes that were not UTF-8 shown as \x.. first, as on the terminal; then the markup escaped.
    return escape(visible("" if value is None else str(value)), quote=True)


def _status(text: str, tone: str) -> str:
    return f'<span class="status {tone}">{_e(text)}</span>'


def _signature_tone(status: str) -> str:
    return {"counted": "ok", "duplicate": "ok", "unverified": "warn", "untrusted": "warn"}.get(status, "bad")


_VERDICT_TONES = {NOT_VERIFIED: "warn", SATISFIED: "ok", AWAITING: "warn", REFUSED: "bad"}


def _base(review: Review) -> str:
    base = review.source.base
    if base is not None:
        return f"<code>{_e(base.inventory)}</code> (bundle {_e(base.bundle_id)}, created {_e(base.created)})"
    if review.since_base is not None:
        return f"none in the inventory (a full bundle); compared with <code>{_e(review.since_base.old)}</code>"
    return "none (a full bundle)"


def _summary(review: Review) -> str:
    source = review.source
    inventory = source.inventory
    collection = review.collection
    verdict = review.signatures
    tone = _VERDICT_TONES[verdict.state]
    claim = "" if collection is None or collection.verified else " (claimed, not verified)"
    counts = ", ".join(f"{len(review.group(k))} {KIND_TITLES[k].lower()}" for k in KINDS)
    rows = [
        ("Bundle", f"<code>{_e(source.location)}</code>"),
        ("Bundle id", f"<code>{_e(inventory.bundle_id)}</code>"),
        ("Inventory sha256", f"<code>{_e(source.inventory_sha256)}</code>"),
        ("Created", _e(inventory.created) + f' <span class="muted">by {_e(inventory.tool)}</span>'),
        ("Expires", _e(collection.expires if collection else "no collector signature") + _e(claim)),
        ("Sequence", _e(collection.sequence if collection else "-") + _e(claim)),
        ("Base", _base(review)),
        ("Artifacts", f"{len(review.entries)}: {_e(counts)}"),
        ("Carried", f"{len(inventory.files)} files, {_e(human_size(review.carried_bytes))}"),
        ("Signatures", _status(verdict.verdict, tone)),
        ("Plain HTTP", _plain_http(review)),
        ("Upstream supply chain", _supply_chain(review)),
    ]
    if source.expected:
        rows.insert(
            7, ("Expected from base", f"{len(source.expected)} blob(s), {_e(human_size(review.expected_bytes))}")
        )
    body = "".join(f"<tr><td>{k}</td><td>{v}</td></tr>" for k, v in rows)
    return f'<table class="summary">{body}</table>'


def _supply_chain(review: Review) -> str:
    placed = review.supply_chain
    parts = [_e(supply_chain_counts(review))]
    check = review.policy_check
    if check is not None:
        refused = check.count()[1]
        tone = "warn" if check.note is not None else ("bad" if refused else "ok")
        parts.append(f"<br>trust policy: {_status(policy_check_counts(check), tone)}")
    parts += [f"<br>Sigstore trusted root carried (<code>{_e(r.digest)}</code>)" for r in placed.trusted_roots]
    if placed.unplaced:
        items = "".join(
            f"<li><code>{_e(a.artifact.source)}</code> (subject <code>{_e(a.subject)}</code>)</li>"
            for a in placed.unplaced
        )
        parts.append(
            f"<br><span class='warn'>{len(placed.unplaced)} attached manifest(s) attached to nothing in this "
            f"bundle:</span><ul class='plain'>{items}</ul>"
        )
    return "".join(parts)


def _hosts(review: Review) -> str:
    hosts = review.source.inventory.hosts
    plain = review.plain_http_hosts
    if not hosts:
        return "<p>Not recorded (an inventory from before the egress policy).</p>"
    rows = [
        (
            f"<code>{_e(h.host)}</code>",
            _e(h.how),
            _status(f"{PLAIN_HTTP}: no TLS", "bad") if h.host in plain else "",
        )
        for h in hosts
    ]
    return _table(("Host", "How it came to be contacted", "Transport"), rows)


def _plain_http(review: Review) -> str:
    plain = review.plain_http_hosts
    if not plain:
        return "none recorded"
    return (
        _status(f"{PLAIN_HTTP}: {len(plain)} host(s) reached without TLS", "bad")
        + "<br>"
        + ", ".join(f"<code>{_e(h)}</code>" for h in plain)
    )


def _diff(diff: Diff) -> str:
    parts = [
        f"<p>Compared with <code>{_e(diff.old)}</code> (bundle {_e(diff.old_bundle_id)}): "
        f"{len(diff.added)} added, {len(diff.removed)} removed, {len(diff.changed)} changed, "
        f"{diff.unchanged} unchanged; {len(diff.new_blobs)} new blob(s), {_e(human_size(diff.new_blob_bytes))}."
        + (f" {_status(f'{len(diff.signer_alarms)} supply-chain ALARM(s)', 'bad')}" if diff.signer_alarms else "")
        + "</p>"
    ]
    if diff.changed:
        rows = [
            (
                _e(c.what),
                _e(c.kind),
                f"<code>{_e(c.source)}</code>",
                f"{_e(c.old_version or '')} <code>{_e(c.old_digest)}</code>",
                f"{_e(c.new_version or '')} <code>{_e(c.new_digest)}</code>",
            )
            for c in diff.changed
        ]
        parts.append("<h3>Changed</h3>" + _table(("Change", "Kind", "Source", "Before", "Now"), rows))
    if diff.added:
        rows = [
            (
                _e(a.kind),
                f"<code>{_e(a.source)}</code>",
                f"<code>{_e(a.digest)}</code>",
                _e(human_size(size) if (size := diff.size_of(a)) is not None else "not read"),
                _e(FOUND_TITLES.get(found_of(a), found_of(a))),
            )
            for a in diff.added
        ]
        parts.append("<h3>Added</h3>" + _table(("Kind", "Source", "Digest", "Size", "Found by"), rows))
    if diff.removed:
        removed = [(_e(a.kind), f"<code>{_e(a.source)}</code>", f"<code>{_e(a.digest)}</code>") for a in diff.removed]
        parts.append("<h3>Removed</h3>" + _table(("Kind", "Source", "Digest"), removed))
        parts.append(f"<p class='small'>{_e(diff.removal_note)}</p>")
    parts.append(_signer_changes(diff))
    parts.append(_fleet_changes(diff))
    for move in diff.refs:
        commits = "".join(f"<li><code>{_e(c.id[:12])}</code> {_e(c.subject)}</li>" for c in move.commits)
        more = move.total - len(move.commits)
        extra = f"<li class='muted'>and {more} more commit(s)</li>" if more > 0 else ""
        dropped = (
            f"<p class='bad status'>not a fast-forward: {move.dropped} commit(s) of the old state are gone</p>"
            if move.dropped
            else ""
        )
        note = f"<p class='muted'>{_e(move.note)}</p>" if move.note else ""
        parts.append(
            f"<h3>Git ref moved: <code>{_e(move.source)}</code> {_e(move.ref)}</h3>"
            f"<p><code>{_e(move.old or 'absent')}</code> &rarr; <code>{_e(move.new or 'absent')}</code></p>"
            f"{note}{dropped}<ul class='plain'>{commits}{extra}</ul>"
        )
    parts += [f"<p class='warn'>{_e(n)}</p>" for n in diff.notes]
    return "".join(parts)


def _fleet_changes(diff: Diff) -> str:
    """Per Flux fleet: each object added, removed or changed, with the fields that changed."""
    parts = []
    for fleet in diff.flux:
        rows = [
            (
                _e(c.name.kind),
                f"<code>{_e(c.name.display.partition(' ')[2])}</code>",
                _e(c.what),
                "<br>".join(_e(f.describe(not c.hidden)) for f in c.fields)
                + (f"<br><span class='muted'>and {c.more_fields} more field(s)</span>" if c.more_fields else ""),
            )
            for c in fleet.objects
        ]
        note = f"<p class='muted'>{_e(fleet.note)}</p>" if fleet.note else ""
        table = _table(("Kind", "Object", "Change", "Fields"), rows) if rows else ""
        parts.append(f"<h3>Flux objects: <code>{_e(fleet.source)}</code> {_e(fleet.path)}</h3>{note}{table}")
    return "".join(parts)


def _signer_changes(diff: Diff) -> str:
    """Upstream signer changes: an alarm row is styled apart and says ALARM, should the page be printed grey."""
    parts = []
    if diff.signers:
        rows = [
            (
                f"{'ALARM ' if c.alarm else ''}{_e(c.what)}",
                f"<code>{_e(c.source)}</code>",
                _e(signers_phrase(c.old)),
                _e(signers_phrase(c.new)),
                "tag moved" if c.image_moved else "same digest",
            )
            for c in diff.signers
        ]
        classes = ["alarm" if c.alarm else "entry" for c in diff.signers]
        parts.append(
            "<h3>Upstream signers</h3>" + _table(("Change", "Source", "Before", "Now", "Image"), rows, classes)
        )
    if diff.attached_added or diff.attached_removed:
        parts.append(
            f"<p>{diff.attached_added} attached manifest(s) added, {diff.attached_removed} removed (signatures, "
            "attestations, SBOMs).</p>"
        )
    return "".join(parts)


def _events(review: Review) -> str:
    """Supply-chain events first, each marked ALARM, CHECK or NOTE in words as well as in colour."""
    if review.since_base is None:
        return (
            "<p>Not compared: give <code>--base PREV</code> (the bundle before this one) to see moved tags, "
            "republished charts, rewritten history and changed signers.</p>"
        )
    events = review.since_base.events
    if not events:
        return "<p>None: no signer changes, moved tags, republished charts or rewritten history.</p>"
    rows = [
        (
            f"<span class='mark'>{_status(e.mark, {'ALARM': 'bad', 'CHECK': 'warn'}.get(e.mark, 'ok'))}</span>",
            _e(e.what),
            f"<code>{_e(e.source)}</code>",
            f"<span class='mono'>{_e(e.detail)}</span>",
        )
        for e in events
    ]
    classes = ["alarm" if e.alarm else "check" if e.mark == "CHECK" else "" for e in events]
    return f"<p>{len(events)} event(s): check each before approving (see the officer guide).</p>" + _table(
        ("", "Event", "Source", "Detail"), rows, classes
    )


def _since_base(review: Review) -> str:
    source = review.source
    if review.since_base is not None:
        return _diff(review.since_base)
    if source.base is not None:
        return (
            f"<p>Incremental to <code>{_e(source.base.inventory)}</code> (bundle {_e(source.base.bundle_id)}, "
            f"created {_e(source.base.created)}); {len(source.expected)} blob(s), "
            f"{_e(human_size(review.expected_bytes))}, are expected on the high side from the base chain. "
            "The base was not given (<code>--base PREV</code>), so the changes are not listed.</p>"
        )
    return "<p>None: a full bundle, and no base was given to compare with.</p>"


def _signatures(review: Review) -> str:
    verdict = review.signatures
    rows = [
        (
            f"{_e(s.kind if s.kind != 'unknown' else 'signature')} by <b>{_e(s.key_name or s.role or '')}</b>"
            f"{'' if s.key_name or s.verified else ' <span class=muted>(claimed)</span>'}"
            f"<br><code>{_e(', '.join(s.key_ids) or 'no key id')}</code>",
            _e(s.time or s.created or ""),
            _status(s.status, _signature_tone(s.status))
            + (f" <span class='muted'>{_e(s.role)}</span>" if s.role else ""),
            _signature_detail(s),
            f"<code>{_e(s.file)}</code>",
        )
        for s in verdict.in_order
    ]
    table = (
        _table(("Signature", "Time", "Status", "Comment and detail", "File"), rows) if rows else "<p>No signatures.</p>"
    )
    problems = "".join(f"<li>{_e(p)}</li>" for p in verdict.problems)
    policy = f"<p>Policy: <code>{_e(verdict.policy)}</code></p>" if verdict.policy else ""
    tone = "warn" if verdict.state == AWAITING else "bad"
    return policy + table + (f"<ul class='plain {tone}'>{problems}</ul>" if problems else "")


def _signature_detail(signature: SignatureView) -> str:
    parts = []
    if signature.kind == "collection":
        parts.append(
            f"collector <b>{_e(signature.collector)}</b>, sequence {_e(signature.sequence)}, "
            f"expires {_e(signature.expires)}"
        )
    if signature.comment:
        parts.append(f"&ldquo;{_e(signature.comment)}&rdquo;")
    if signature.detail:
        parts.append(f"<span class='muted'>{_e(signature.detail)}</span>")
    return "<br>".join(parts)


def _table(headers: tuple[str, ...], rows: Sequence[tuple[str, ...]], row_classes: Sequence[str] = ()) -> str:
    """A table that stacks into labelled blocks on a narrow screen (each cell names its column: data-label)."""
    head = "".join(f"<th>{h}</th>" for h in headers)
    body = "".join(
        (f"<tr class='{row_classes[i]}'>" if i < len(row_classes) else "<tr>")
        + "".join(f"<td data-label='{h}'>{cell}</td>" for h, cell in zip(headers, row, strict=True))
        + "</tr>"
        for i, row in enumerate(rows)
    )
    return f"<table class='stack'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _labels(labels: dict[str, str]) -> str:
    if not labels:
        return "<span class='muted'>no labels</span>"
    rows = "".join(f"<tr><td><code>{_e(k)}</code></td><td>{_e(v)}</td></tr>" for k, v in sorted(labels.items()))
    return f"<table class='labels'>{rows}</table>"


def _facts(entry: Entry) -> str:
    parts = []
    platforms = []
    for platform in entry.facts.platforms:
        arch = "/".join(x for x in (platform.os, platform.architecture, platform.variant) if x) or "unknown"
        platforms.append(
            f"<div><b>{_e(arch)}</b> <span class='muted small'>{platform.layers} layer(s), "
            f"{_e(human_size(platform.size))}</span>{_labels(platform.labels)}</div>"
        )
    if platforms:
        parts.append(f"<div class='platforms'>{''.join(platforms)}</div>")
    chart = entry.facts.chart
    if chart:
        deps = "".join(f"<li>{_e(d)}</li>" for d in chart.dependencies)
        parts.append(
            f"<div>Chart.yaml: <b>{_e(chart.name)}</b> {_e(chart.version)}, appVersion {_e(chart.app_version)}"
            f"<br><span class='muted'>{_e(chart.description)}</span>"
            + (f"<br>dependencies:<ul class='plain'>{deps}</ul>" if deps else "")
            + "</div>"
        )
    extra = entry.artifact.extra
    if entry.artifact.kind == "git":
        heads = extra.get("heads")
        if not isinstance(heads, dict):
            heads = {}
        parts.append(
            f"<div>commit <code>{_e(extra.get('commit'))}</code>; refs: "
            + ", ".join(_e(r) for r in sorted(heads))
            + "</div>"
        )
    if entry.artifact.kind == "file":
        size = extra.get("fileSize")
        parts.append(
            f"<div>file <code>{_e(extra.get('name'))}</code>, sha256 <code>{_e(extra.get('fileSha256'))}</code>, "
            f"{_e(human_size(size) if isinstance(size, int) else '-')}, tag <code>{_e(extra.get('tag'))}</code></div>"
        )
    if entry.artifact.kind == "flux":
        facts = entry.facts
        names = "".join(
            f"<li>{_e(o.kind)} <code>{_e(f'{o.namespace}/{o.name}' if o.namespace else o.name)}</code></li>"
            for o in facts.objects
        )
        more = f"<li class='muted'>and {facts.more_objects} more</li>" if facts.more_objects else ""
        parts.append(
            f"<div>{_e(extra.get('objects'))} object(s) from {_e(extra.get('git') or 'a local path')}</div>"
            + (f"<ul class='plain'>{names}{more}</ul>" if names or more else "")
        )
    for reason in extra.get("foundBy") or []:
        parts.append(f"<div class='small muted'>used by {_e(reason)}</div>")
    if extra.get("requiredBy"):
        parts.append(f"<div class='small muted'>dependency of {_e(extra['requiredBy'])}</div>")
    parts += [f"<div class='small warn'>{_e(n)}</div>" for n in entry.facts.notes]
    return "".join(parts) + _upstream(entry.upstream)


def _notes(notes: tuple[str, ...] | list[str]) -> str:
    return "".join(f"<div class='small warn'>{_e(n)}</div>" for n in notes)


def _upstream(upstream: Upstream) -> str:
    """What upstream attached to the artifact: each signature with its verification, attestations, SBOMs."""
    summary = upstream.summary
    parts = []
    signed_tone = "ok" if upstream.vouched else "warn"
    if upstream.signers and not summary.signatures:
        verified = upstream.collector_verified(upstream.signers)
        parts.append(f"<div>{_status(verified, signed_tone)} no signature is carried</div>")
    for signature in summary.signatures:
        tone = signed_tone if upstream.verified_by(signature) else "warn"
        parts.append(
            f"<div>signature {_status(upstream.verification(signature), tone)} {_e(signature_claim(signature))}</div>"
            + _notes(signature.notes)
        )
    for attestation in summary.attestations:
        builder = f" builder <code>{_e(attestation.builder)}</code>" if attestation.builder else ""
        claimed = (
            f" <span class='muted'>attested by {_e(attestation.claimed.describe())} (claimed)</span>"
            if attestation.claimed
            else ""
        )
        kind = f"<code>{_e(attestation.predicate_type)}</code>" if attestation.predicate_type else "unknown predicate"
        parts.append(f"<div>attestation {kind}{builder}{claimed}</div>" + _notes(attestation.notes))
    for sbom in summary.sboms:
        line, rest = sbom_line(sbom)
        parts.append(f"<div>SBOM {_e(line)}</div>" + _notes(rest))
    for other in summary.other:
        parts.append(f"<div>attached <code>{_e(other.artifact_type)}</code></div>" + _notes(other.notes))
    parts.append(_notes(summary.notes))
    parts += [_rule_check(c) for c in upstream.policy or []]
    if upstream.policy == []:
        parts.append(f"<div class='small muted'>trust policy: {_e(NO_RULE_APPLIES)}</div>")
    return f"<div class='upstream'>{''.join(parts)}</div>" if any(parts) else ""


def _rule_check(check: RuleCheck) -> str:
    """The policy's verdict under one rule: the signer in the ok style, or the problem in the bad style."""
    rule = f"<span class='muted'>{_e(check.rule)} ({_e(check.requires)})</span>"
    if check.verified:
        return f"<div>trust policy {_status(f'verified: {signers_phrase(check.signers)}', 'ok')} {rule}</div>"
    return f"<div>trust policy {_status(f'REFUSED, {check.code}', 'bad')} {rule}: {_e(check.reason)}</div>"


def _listing(review: Review) -> str:
    parts = []
    for kind in (*KINDS, *review.other_kinds):
        group = review.group(kind)
        if not group:
            continue
        cards = "".join(_entry(e) for e in group)
        parts.append(f"<h3>{_e(KIND_TITLES.get(kind, kind))} ({len(group)})</h3>{cards}")
    return "".join(parts)


def _entry(entry: Entry) -> str:
    artifact = entry.artifact
    size = entry.facts.content_size if entry.facts.content_size is not None else artifact.size
    version = f" <span class='muted'>{_e(entry.version)}</span>" if entry.version else ""
    return (
        f"<div class='entry'><div class='head'><code>{_e(artifact.source)}</code>{version}</div>"
        f"<div class='meta'>{_e(human_size(size))} &middot; found: {_e(entry.found_phrase)}"
        f"{' &middot; in base' if not entry.in_bundle else ''} &middot; <code>{_e(artifact.digest)}</code></div>"
        f"{_facts(entry)}</div>"
    )


def review_html(review: Review) -> str:
    title = review.title
    source = review.source
    notes = "".join(f"<p class='warn'>{_e(n)}</p>" for n in review.notes)
    verdict = review.signatures
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; style-src 'unsafe-inline'\">"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>Bundle review: {_e(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{_e(review.title_parts[0])}</h1><p class='byline'>{_e(review.title_parts[1])}</p>"
        f"<p class='muted small'>bundle <code>{_e(source.location)}</code>, id <code>{_e(source.inventory.bundle_id)}"
        f"</code>, created {_e(source.inventory.created)}</p>"
        f"<p class='verdict'>{_status(verdict.verdict, _VERDICT_TONES[verdict.state])}</p>"
        "<p class='muted small'>Written by mirror inspect. Signatures are checked against the inventory; file "
        "contents are checked by <code>mirror verify</code>.</p>"
        f"<h2>Summary</h2>{_summary(review)}"
        f"<h2>Supply-chain events</h2>{_events(review)}"
        f"<h2>Changes since base</h2>{_since_base(review)}"
        f"<h2>Signatures</h2>{_signatures(review)}"
        f"<h2>Hosts contacted</h2>{_hosts(review)}"
        f"<h2>Contents</h2>{_listing(review)}{notes}"
        "</body></html>\n"
    )
