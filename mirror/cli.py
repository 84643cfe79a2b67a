"""The `mirror` command: parse flags, call one function, map errors to the contract's exit codes.

Every text line it prints goes through `_say` or `_fail`, which escape it (mirror.terminal): bundle ids, file
and member names, sources, refs and registry messages are untrusted, and must not repaint the terminal or
start a line of their own. JSON output is JSON-escaped; inspect and diff escape their own reports.
"""

# No `from __future__ import annotations`: typer reads every command's annotations on every run, and evaluating
# them from strings costs more than building them once here (docs/development.md, "Start-up").

import contextlib
import functools
import json
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import replace
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from mirror import __version__
from mirror.errors import Interrupted, MirrorError, Problem, problem_count
from mirror.limits import DEFAULT_LIMITS
from mirror.logs import format_line
from mirror.progress import Progress, human_size
from mirror.terminal import escape

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Carry container images into air-gapped networks through verified bundles.",
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # help texts are plain text: `[/PREFIX]` in an option's help is not a markup tag
)

F = TypeVar("F", bound=Callable[..., Any])

Jobs = Annotated[int, typer.Option("--jobs", "-j", min=1, max=64, help="Parallel network transfers.")]
# verify and approve do no network work: --jobs is still accepted from scripts written for older versions.
UnusedJobs = Annotated[int | None, typer.Option("--jobs", "-j", hidden=True)]
CaFile = Annotated[
    Path | None,
    typer.Option("--ca-file", exists=True, dir_okay=False, help="CA bundle for TLS; default: $SSL_CERT_FILE."),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")]
ProxyUrl = Annotated[
    str | None,
    typer.Option(
        "--proxy",
        metavar="URL",
        help="Reach upstreams through this HTTP proxy (http://[user:password@]host:port); HTTPS through CONNECT. "
        "Environment proxies are read only with MIRROR_USE_ENV_PROXY=1.",
        show_default=False,
    ),
]
NoProxy = Annotated[
    str | None,
    typer.Option(
        "--no-proxy",
        metavar="HOSTS",
        help="Comma-separated hosts reached directly, as NO_PROXY: domain (and below), .domain, IP, CIDR, :port, *.",
        show_default=False,
    ),
]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress or log lines.")]
# collect, import and verify: quiet for cron, which mails whatever a job prints.
QuietRun = Annotated[
    bool,
    typer.Option(
        "--quiet", "-q", help="Print nothing when all goes well (--json still prints); warnings and errors still show."
    ),
]


class LogFormat(StrEnum):
    text = "text"
    json = "json"


LogFormatOption = Annotated[
    LogFormat,
    typer.Option(
        "--log-format",
        envvar="MIRROR_LOG_FORMAT",
        help="Log lines on stderr: text, or json (one object per line, no progress bars).",
    ),
]
AllowDiscoveredHosts = Annotated[
    bool,
    typer.Option(
        "--allow-discovered-hosts",
        help="Also contact public hosts found through discovery (chart dependencies, images charts and fleets "
        "name, Flux sources); internal addresses still need spec.allowedHosts.",
    ),
]
ReportFile = Annotated[
    Path | None,
    typer.Option("--report", dir_okay=False, help="Write a JSON summary of the run here, also when it fails."),
]
FluxVars = Annotated[
    list[str] | None,
    typer.Option("--flux-var", help="KEY=VALUE for Flux postBuild variables the cluster would supply; repeatable."),
]


def _log_format(kwargs: dict[str, Any]) -> str:
    log_format = kwargs.get("log_format")
    return log_format.value if isinstance(log_format, LogFormat) else "text"


def _say(line: str = "", *, err: bool = False) -> None:
    """Print one line of text output, escaped: a newline inside it cannot start another line."""
    print(escape(line), file=sys.stderr if err else sys.stdout)


def _fail(error: MirrorError, log_format: str = "text", prefix: str = "error: ") -> None:
    """The error, then each problem on its own line, then the hint; each escaped on its own."""
    problems: list[Problem | str] = list(getattr(error, "problems", None) or [])
    if log_format == "json":
        fields = error.to_json()
        del fields["message"]  # the log line's own message field
        print(format_line("json", "error", "error", error.message, fields), file=sys.stderr)
        return
    _say(f"{prefix}{error.message}", err=True)
    for problem in problems:
        _say(f"  - {problem}", err=True)
    if error.hint:
        _say(f"hint: {error.hint}", err=True)


def handled(command: F) -> F:
    """Turn mirror's errors into their exit codes, and anything else into exit 1 without a traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except MirrorError as error:
            _fail(error, _log_format(kwargs))
            raise typer.Exit(error.exit_code) from None
        except KeyboardInterrupt:
            _fail(Interrupted("interrupted"), _log_format(kwargs), prefix="")
            raise typer.Exit(Interrupted.exit_code) from None
        except typer.Exit:
            raise
        except Exception as error:  # the last resort: report, never show a traceback unless asked
            if os.environ.get("MIRROR_DEBUG"):
                traceback.print_exc()
            internal = MirrorError(
                f"internal error: {type(error).__name__}: {error}",
                hint="set MIRROR_DEBUG=1 for a traceback, and report it",
            )
            _fail(internal, _log_format(kwargs), prefix="")
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def _flux_vars(items: list[str] | None) -> dict[str, str]:
    if not items:
        return {}
    from mirror.flux.substitute import parse_flux_vars  # the Flux walker's imports, only when a variable is given

    return parse_flux_vars(items)


def _ca(ca_file: Path | None) -> str | None:
    return str(ca_file) if ca_file else os.environ.get("SSL_CERT_FILE") or None


def _print_json(data: object) -> None:
    print(json.dumps(data, indent=2))


@app.command()
@handled
def resolve(
    manifests: Annotated[list[Path], typer.Argument(help="MirrorSet files.", exists=True, dir_okay=False)],
    flux_var: FluxVars = None,
    allow_discovered_hosts: AllowDiscoveredHosts = False,
    jobs: Jobs = 4,
    ca_file: CaFile = None,
    proxy: ProxyUrl = None,
    no_proxy: NoProxy = None,
    as_json: AsJson = False,
) -> None:
    """Resolve every source to immutable references and print the lock; touches no bundle."""
    from mirror.collector.run import resolve as resolve_sources
    from mirror.proxy import proxy_settings

    artifacts = resolve_sources(
        manifests,
        jobs=jobs,
        ca_file=_ca(ca_file),
        progress=Progress(quiet=True),
        flux_vars=_flux_vars(flux_var),
        allow_discovered_hosts=allow_discovered_hosts,
        proxy=proxy_settings(proxy, no_proxy),
    )
    if as_json:
        _print_json({"apiVersion": "mirror/v1", "kind": "Lock", "artifacts": artifacts})
        return
    for artifact in artifacts:
        platforms = artifact.get("platforms")
        suffix = f"  [{', '.join(platforms)}]" if isinstance(platforms, list) else ""
        if artifact["kind"] == "file":
            suffix = f"  as {artifact['name']}, {human_size(int(str(artifact['size'])))}"
        _say(f"{artifact['kind']:<6} {artifact['source']}  {artifact['digest']}{suffix}")
        found_by = artifact.get("foundBy")
        for reason in found_by if isinstance(found_by, list) else []:
            _say(f"         used by {reason}")
        if artifact.get("requiredBy"):
            _say(f"         dependency of {artifact['requiredBy']}")
        selected = artifact.get("selectedBy")
        for selector in selected if isinstance(selected, list) else []:
            _say(f"         chosen by tags: {json.dumps(selector)}")


@app.command()
@handled
def collect(
    manifests: Annotated[list[Path], typer.Argument(help="MirrorSet files.", exists=True, dir_okay=False)],
    out: Annotated[Path, typer.Option("--out", "-o", help="Bundle to write: a directory, or a file ending .tar.")],
    key: Annotated[
        Path | None, typer.Option("--key", exists=True, dir_okay=False, help="Sign the bundle as collector.")
    ] = None,
    sequence: Annotated[
        int | None, typer.Option("--sequence", min=1, help="Sequence number; default: one past the key's last.")
    ] = None,
    valid_for: Annotated[str, typer.Option("--valid-for", help="How long the signature stays valid.")] = "30d",
    collector: Annotated[
        str | None, typer.Option("--collector", help="Collector name in the signature; default: the key's name.")
    ] = None,
    state_file: Annotated[
        Path | None,
        typer.Option(
            "--state-file",
            envvar="MIRROR_STATE_FILE",
            dir_okay=False,
            help="The collector's sequence record, one per key; default: $MIRROR_STATE_FILE, else KEY's "
            "NAME.state.json.",
        ),
    ] = None,
    split_size: Annotated[
        str | None,
        typer.Option("--split-size", help="Cut a .tar bundle into volumes OUT.000 (head), OUT.001... of at most SIZE."),
    ] = None,
    max_bundle_size: Annotated[
        str | None,
        typer.Option(
            "--max-bundle-size",
            help="Refuse, before any download, a bundle whose declared sizes exceed SIZE (e.g. 700M, 4G).",
        ),
    ] = None,
    flux_var: FluxVars = None,
    since: Annotated[
        Path | None,
        typer.Option(
            "--since",
            exists=True,
            help="Incremental to PREV: a bundle, or the OUT.inventory.json collect wrote beside it. "
            "Carries only what PREV's chain does not have.",
        ),
    ] = None,
    cache_dir: Annotated[
        Path | None,
        typer.Option(
            "--cache-dir",
            file_okay=False,
            help="Downloaded blobs, reused by the next collect; default: $MIRROR_CACHE_DIR, "
            "else $XDG_CACHE_HOME/mirror, else ~/.cache/mirror.",
        ),
    ] = None,
    no_cache: Annotated[
        bool,
        typer.Option(
            "--no-cache", help="Neither read nor fill the blob cache, nor resume from or keep a .tar's partial tar."
        ),
    ] = False,
    min_pull_quota: Annotated[
        int | None,
        typer.Option(
            "--min-pull-quota",
            min=0,
            help="Stop (exit 4) once a registry says fewer pulls than N are left (ratelimit-remaining); "
            f"default {DEFAULT_LIMITS.min_ratelimit_remaining}, 0: never.",
        ),
    ] = None,
    lock: Annotated[
        Path | None,
        typer.Option(
            "--lock",
            exists=True,
            dir_okay=False,
            help="Collect exactly what this lock (resolve --json) says: images by its digests, charts at its "
            "versions, Git at its commits, no tag list read. A lock that does not match the MirrorSets is refused.",
        ),
    ] = None,
    allow_discovered_hosts: AllowDiscoveredHosts = False,
    report: ReportFile = None,
    jobs: Jobs = 4,
    ca_file: CaFile = None,
    proxy: ProxyUrl = None,
    no_proxy: NoProxy = None,
    as_json: AsJson = False,
    quiet: QuietRun = False,
    log_format: LogFormatOption = LogFormat.text,
) -> None:
    """Resolve, download and write a bundle at OUT; with --key, sign it as collector."""
    from mirror.collector.cache import BlobCache, default_cache_dir
    from mirror.collector.run import CollectorSigning
    from mirror.collector.run import collect as collect_bundle
    from mirror.proxy import proxy_settings
    from mirror.report import collect_fields, reporting
    from mirror.units import parse_size

    progress = Progress(quiet=quiet, log_format=log_format.value)
    with reporting(report, "collect", progress, {"out": str(out)}) as run:
        volume_size = None
        if split_size:
            from mirror.bundle.volumes import MIN_VOLUME_SIZE

            volume_size = parse_size(split_size, "--split-size", minimum=MIN_VOLUME_SIZE)
        size_cap = parse_size(max_bundle_size, "--max-bundle-size") if max_bundle_size else None
        signing = None
        if key is not None:
            from mirror.trust.keys import load_signer  # cryptography: only when signing
            from mirror.trust.policy import parse_duration
            from mirror.trust.sign import reserve_sequence

            signer = load_signer(key)
            validity = parse_duration(valid_for, "--valid-for")
            signing = CollectorSigning(
                signer,
                collector or key.stem,
                reserve_sequence(key, sequence, state_file, _sequence_warn(progress)),
                validity,
            )
        cache = None if no_cache else BlobCache(cache_dir or default_cache_dir())
        result = collect_bundle(
            manifests,
            out,
            jobs=jobs,
            ca_file=_ca(ca_file),
            progress=progress,
            signing=signing,
            flux_vars=_flux_vars(flux_var),
            cache=cache,
            since=since,
            split_size=volume_size,
            max_bundle_size=size_cap,
            allow_discovered_hosts=allow_discovered_hosts,
            on_hosts=lambda hosts: run.context.update(hosts=[h.to_json() for h in hosts]),
            proxy=proxy_settings(proxy, no_proxy),
            lock=lock,
            limits=DEFAULT_LIMITS
            if min_pull_quota is None
            else replace(DEFAULT_LIMITS, min_ratelimit_remaining=min_pull_quota),
        )
        if cache is not None:
            cache.prune()
        if report is not None:  # the diff against the base (mirror.review) only when a report is written
            collect_fields(run, result, cache.use if cache else None)
    if as_json:
        _print_json(result.summary())
        return
    if quiet:
        return
    for artifact in result.inventory.artifacts:
        _say(f"{artifact.kind:<6} {artifact.source}  {artifact.digest}")
    git_count = sum(1 for a in result.inventory.artifacts if a.kind == "git")
    attached = sum(1 for a in result.inventory.artifacts if a.kind == "attached")
    files = sum(1 for a in result.inventory.artifacts if a.kind == "file")
    _say(
        f"bundle {out}: {git_count} git source(s), {len(result.charts)} chart(s), {len(result.images)} image(s), "
        + (f"{files} file(s), " if files else "")
        + f"{attached} attached manifest(s), {human_size(result.inventory.total_size)}"
    )
    if result.inventory.volumes:
        _say(f"  split: head volume {result.out.name} and {len(result.inventory.volumes)} data volume(s)")
    if signing:
        _say(f"signed by collector key {signing.signer.public.key_id}, sequence {signing.sequence}")


def _sequence_warn(progress: Progress) -> Callable[[str], None]:
    from mirror.warncodes import SEQUENCE_RECORD_AHEAD

    return lambda message: progress.warn(message, SEQUENCE_RECORD_AHEAD)


@app.command("import")
@handled
def import_(
    bundle: Annotated[Path, typer.Argument(help="Bundle directory, .tar file or head volume .tar.000.", exists=True)],
    registry: Annotated[str, typer.Option("--registry", help="Target: https://HOST[:PORT][/PREFIX].")],
    trust: Annotated[
        Path | None, typer.Option("--trust", exists=True, dir_okay=False, help="The trust policy to verify against.")
    ] = None,
    allow_unsigned: Annotated[
        bool, typer.Option("--allow-unsigned", help="Import on checksums alone, for labs; warns.")
    ] = False,
    git: Annotated[str | None, typer.Option("--git", help="Git server for Git sources: https://HOST/BASE.")] = None,
    force_git: Annotated[
        bool, typer.Option("--force-git", help="Allow non-fast-forward updates of internal branches and tags.")
    ] = False,
    flux_out: Annotated[
        Path | None, typer.Option("--flux-out", file_okay=False, help="Write the Flux objects, rewritten, here.")
    ] = None,
    mirror_config: Annotated[
        Path | None,
        typer.Option(
            "--mirror-config",
            file_okay=False,
            help="Write the nodes' registry mirror configuration here: containerd hosts.toml, k3s/RKE2 "
            "registries.yaml, a containers-registries.conf drop-in, OpenShift Image{Digest,Tag}MirrorSets.",
        ),
    ] = None,
    node_ca_path: Annotated[
        str | None,
        typer.Option(
            "--node-ca-path",
            help="The registry's CA as the nodes see it (an absolute path), for the mirror configuration; "
            "--ca-file's path is never written there.",
        ),
    ] = None,
    files_out: Annotated[
        Path | None,
        typer.Option("--files-out", file_okay=False, help="Also write each file the bundle carries (spec.files) here."),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Verify and report what would change.")] = False,
    lock_timeout: Annotated[
        float | None,
        typer.Option(
            "--lock-timeout", min=0, help="Seconds to wait for another import of the same trust state; default: wait."
        ),
    ] = None,
    importer_key: Annotated[
        Path | None,
        typer.Option(
            "--importer-key", exists=True, dir_okay=False, help="Sign each import journal entry with this key."
        ),
    ] = None,
    report: ReportFile = None,
    jobs: Jobs = 4,
    ca_file: CaFile = None,
    as_json: AsJson = False,
    quiet: QuietRun = False,
    log_format: LogFormatOption = LogFormat.text,
) -> None:
    """Verify the bundle completely, then load its images into the registry."""
    from mirror.importer.run import import_bundle
    from mirror.report import import_fields, redact_url, reporting

    progress = Progress(quiet=quiet, log_format=log_format.value)
    context: dict[str, object] = {"bundle": str(bundle), "registry": redact_url(registry), "dryRun": dry_run}
    with reporting(report, "import", progress, context) as run:
        result = import_bundle(
            bundle,
            registry,
            trust=trust,
            allow_unsigned=allow_unsigned,
            git_url=git,
            force_git=force_git,
            flux_out=flux_out,
            mirror_config=mirror_config,
            node_ca_path=node_ca_path,
            jobs=jobs,
            dry_run=dry_run,
            ca_file=_ca(ca_file),
            progress=progress,
            lock_timeout=lock_timeout,
            importer_key=importer_key,
            files_out=files_out,
        )
        import_fields(run, result)
    if as_json:
        _print_json(result.to_json())
        return
    if quiet:
        return
    for image in result.images:
        _say(f"{image.target}@{image.digest}  {image.status}")
    for repository in result.git:
        refs = repository["refs"]
        changes = ", ".join(f"{ref} {r['outcome']}" for ref, r in refs.items()) if isinstance(refs, dict) else ""
        _say(f"{repository['target']}  {changes or 'staged (dry run)'}")
    counts = result.counts
    if dry_run:
        _say(
            f"would import {len(result.images)} artifact(s) into {result.registry}: would upload "
            f"{counts.blobs_uploaded} blob(s) ({human_size(counts.bytes_uploaded)}) and mount "
            f"{counts.blobs_mounted}; {counts.blobs_present} already present"
        )
    else:
        _say(
            f"imported {len(result.images)} artifact(s) into {result.registry}: "
            f"{counts.blobs_uploaded} blob(s) uploaded ({human_size(counts.bytes_uploaded)}), "
            f"{counts.blobs_mounted} mounted, {counts.blobs_present} already present"
        )
    attached = result.attached
    if attached.pushed or attached.present:
        _say(
            f"attached manifests (signatures, attestations, SBOMs): {attached.pushed} "
            f"{'to push' if dry_run else 'pushed'}, {attached.present} already present"
        )
    if result.mirror_config is not None:
        files = result.mirror_config_files
        _say(f"{'would write' if dry_run else 'wrote'} {len(files)} registry mirror file(s) to {mirror_config}:")
        for name in files:
            _say(f"  {name}")


Trust = Annotated[Path, typer.Option("--trust", exists=True, dir_okay=False, help="The trust policy.")]
ImporterKey = Annotated[
    Path | None,
    typer.Option("--importer-key", exists=True, dir_okay=False, help="Sign each import journal entry with this key."),
]
LockTimeout = Annotated[
    float | None,
    typer.Option(
        "--lock-timeout", min=0, help="Seconds to wait for another run on the same trust state; default: wait."
    ),
]


@app.command()
@handled
def prune(
    trust: Trust,
    registry: Annotated[str, typer.Option("--registry", help="The import target: https://HOST[:PORT][/PREFIX].")],
    keep: Annotated[int, typer.Option("--keep", min=1, help="Keep what the last N imported bundles use.")],
    yes: Annotated[bool, typer.Option("--yes", help="Delete; without it, only say what would be deleted.")] = False,
    importer_key: Annotated[
        Path | None,
        typer.Option(
            "--importer-key", exists=True, dir_okay=False, help="Sign the prune's journal entry with this key."
        ),
    ] = None,
    lock_timeout: LockTimeout = None,
    jobs: Jobs = 4,
    ca_file: CaFile = None,
    as_json: AsJson = False,
    quiet: Quiet = False,
) -> None:
    """Delete the manifests only bundles older than the last N imported use, as the journal records them; a dry
    run unless --yes. Blobs stay until the registry's garbage collection."""
    from mirror.prune.run import prune_target

    result = prune_target(
        registry,
        trust=trust,
        keep=keep,
        yes=yes,
        ca_file=_ca(ca_file),
        jobs=jobs,
        progress=Progress(quiet=quiet or as_json),
        lock_timeout=lock_timeout,
        importer_key=importer_key,
    )
    if as_json:
        _print_json(result.to_json())
        return
    kept = ", ".join(b.bundle_id for b in result.kept)
    _say(f"keeping what the last {len(result.kept)} bundle(s) imported to {result.target} use: {kept}")
    verb = "would delete" if result.dry_run else "deleted"
    for decision in result.decisions:
        candidate = decision.candidate
        where = f"{candidate.repository}@{candidate.digest}"
        tags = f"  (tags: {', '.join(decision.tags)})" if decision.tags else ""
        if decision.action == "delete":
            _say(f"{verb:<12} {where}{tags}")
        elif decision.action == "gone":
            _say(f"{'gone':<12} {where}  (already deleted)")
        else:
            _say(f"{'left':<12} {where}{tags}")
    count = len(result.to_delete) if result.dry_run else len(result.deleted)
    _say(
        f"{verb} {count} manifest(s), {len(result.gone)} already gone, {len(result.skipped)} left; "
        "blobs stay until the registry's garbage collection (docs/day-two.md)"
    )
    if result.dry_run and count:
        _say("dry run: nothing was deleted; run again with --yes to delete")


@app.command()
@handled
def restore(
    bundles: Annotated[
        list[Path], typer.Argument(help="Every bundle of the chain, full and incrementals, in any order.", exists=True)
    ],
    trust: Trust,
    registry: Annotated[str, typer.Option("--registry", help="The empty target: https://HOST[:PORT][/PREFIX].")],
    git: Annotated[str | None, typer.Option("--git", help="The Git server for Git sources: https://HOST/BASE.")] = None,
    force_git: Annotated[
        bool, typer.Option("--force-git", help="Allow non-fast-forward updates, as the original imports did.")
    ] = False,
    importer_key: ImporterKey = None,
    lock_timeout: LockTimeout = None,
    jobs: Jobs = 4,
    ca_file: CaFile = None,
    as_json: AsJson = False,
    quiet: Quiet = False,
    log_format: LogFormatOption = LogFormat.text,
) -> None:
    """Import again, in order, the bundles the journal lists as imported, into targets that lost them."""
    from mirror.importer.restore import restore_chain

    result = restore_chain(
        bundles,
        registry,
        trust=trust,
        git_url=git,
        force_git=force_git,
        jobs=jobs,
        ca_file=_ca(ca_file),
        progress=Progress(quiet=quiet or as_json, log_format=log_format.value),
        lock_timeout=lock_timeout,
        importer_key=importer_key,
    )
    if as_json:
        _print_json(result.to_json())
        return
    for restored in result.restored:
        imported = restored.report
        _say(
            f"restored {restored.bundle_id} ({restored.bundle}): {len(imported.images)} artifact(s), "
            f"{imported.counts.blobs_uploaded} blob(s) uploaded, {len(imported.git)} Git source(s)"
        )
    for note in result.notes:
        _say(f"note: {note}")
    git_flag = f" --git {result.git}" if result.git else ""
    _say(f"restored {len(result.restored)} bundle(s) into {result.registry}; compare the targets with the journal:")
    _say(f"  mirror audit --trust {trust} --registry {result.registry}{git_flag}")


@app.command()
@handled
def serve(
    bundles: Annotated[
        list[Path],
        typer.Argument(
            help="Bundles (directory, .tar or head volume .tar.000): a full one, then its incrementals in order.",
            exists=True,
        ),
    ],
    trust: Annotated[
        Path | None, typer.Option("--trust", exists=True, dir_okay=False, help="The trust policy to verify against.")
    ] = None,
    allow_unsigned: Annotated[
        bool, typer.Option("--allow-unsigned", help="Serve on checksums alone, for labs; warns.")
    ] = False,
    listen: Annotated[
        str, typer.Option("--listen", help="HOST:PORT to listen on ([::1]:PORT for IPv6; port 0 picks one).")
    ] = "127.0.0.1:5000",
    tls_cert: Annotated[
        Path | None, typer.Option("--tls-cert", exists=True, dir_okay=False, help="Serve HTTPS: the certificate (PEM).")
    ] = None,
    tls_key: Annotated[
        Path | None, typer.Option("--tls-key", exists=True, dir_okay=False, help="The certificate's key (PEM).")
    ] = None,
    jobs: Annotated[
        int, typer.Option("--jobs", "-j", min=1, max=64, help="Parallel hashing while the bundles are verified.")
    ] = 4,
    as_json: AsJson = False,
    quiet: Quiet = False,
    log_format: LogFormatOption = LogFormat.text,
) -> None:
    """Verify the bundles, then serve them read-only over the OCI distribution API until stopped."""
    from mirror.serve.run import Listening, serve_bundles
    from mirror.serve.server import RequestLog

    def ready(listening: Listening) -> None:
        if as_json:
            print(json.dumps(listening.to_json()), flush=True)
        else:
            signed = "verified by the trust policy" if listening.signed else "UNSIGNED, checksums only"
            _say(
                f"listening on {listening.url}: {listening.repositories} repositories, {listening.tags} tags, "
                f"{listening.blobs} blobs from {listening.bundles} bundle(s), {signed}; read-only"
            )
            sys.stdout.flush()

    try:
        serve_bundles(
            bundles,
            trust=trust,
            allow_unsigned=allow_unsigned,
            listen=listen,
            tls_cert=tls_cert,
            tls_key=tls_key,
            jobs=jobs,
            progress=Progress(quiet=quiet, log_format=log_format.value),
            log=RequestLog(log_format=log_format.value, quiet=quiet),
            on_ready=ready,
        )
    except KeyboardInterrupt:
        if _stop_signal != signal.SIGTERM:
            raise  # Ctrl-C: 130, as every command
    # SIGTERM is how a service manager stops a server: a clean stop, exit 0.
    _say("stopped", err=True)


@app.command()
@handled
def audit(
    trust: Annotated[
        Path, typer.Option("--trust", exists=True, dir_okay=False, help="The trust policy: its state file's journal.")
    ],
    registry: Annotated[
        str, typer.Option("--registry", help="The registry the imports wrote to: https://HOST[:PORT][/PREFIX].")
    ],
    git: Annotated[
        str | None, typer.Option("--git", help="The Git server the imports pushed to: https://HOST/BASE.")
    ] = None,
    only_journaled: Annotated[
        bool,
        typer.Option(
            "--only-journaled",
            help="Check only what the journal says was written: no tag, ref or repository it never wrote is looked "
            "for (a shared registry without a prefix of its own, or a journal adopted on an older installation).",
        ),
    ] = False,
    statement: Annotated[
        Path | None,
        typer.Option(
            "--statement", dir_okay=False, help="When clean, write a signed in-toto statement of what was held here."
        ),
    ] = None,
    key: Annotated[
        Path | None, typer.Option("--key", exists=True, dir_okay=False, help="The key that signs --statement.")
    ] = None,
    jobs: Jobs = 8,  # small read-only requests: latency, not bandwidth, bounds an audit
    ca_file: CaFile = None,
    as_json: AsJson = False,
    quiet: Quiet = False,
    log_format: LogFormatOption = LogFormat.text,
) -> None:
    """Compare the targets with what the import journal says was imported; exit 5 on drift."""
    from mirror.audit.run import audit as audit_targets

    report = audit_targets(
        trust,
        registry,
        git_url=git,
        jobs=jobs,
        ca_file=_ca(ca_file),
        only_journaled=only_journaled,
        statement=statement,
        key=key,
        progress=Progress(quiet=quiet, log_format=log_format.value),
    )
    if as_json:
        _print_json(report.to_json())
    else:
        _print_audit(report)
    report.require_clean()


def _print_audit(report: Any) -> None:
    git = f" and {report.git}" if report.git else ""
    head = f" (sha256 {report.journal_head[:12]})" if report.journal_head else ""
    _say(f"audit of {report.registry}{git} against {report.journal_entries} journal entr(y/ies){head}")
    _say(f"  bundles held: {len(report.bundles)}, sequences {report.sequences}")
    checked = report.registry_checked
    _say(
        f"  checked: {checked.tags} tag(s), {checked.manifests} manifest(s), {checked.blobs} blob(s), "
        f"{checked.repositories} tag list(s), {report.refs_checked} Git ref(s)"
    )
    for note in report.notes:
        _say(f"  note: {note}")
    for drift in report.drift.sorted():
        _say(f"DRIFT {drift}")
    if report.drift.omitted:
        counts = ", ".join(f"{code} x{n}" for code, n in sorted(report.drift.counts.items()))
        _say(f"DRIFT ... and {report.drift.omitted} more, not listed (in all: {counts})")
    if report.clean:
        _say(
            f"clean: the targets hold what the {len(report.bundles)} bundle(s) put there (sequences {report.sequences})"
        )
    if report.statement:
        _say(f"wrote the signed statement {report.statement}")


@app.command()
@handled
def keygen(
    name: Annotated[str, typer.Argument(help="Writes NAME.key and NAME.pub.")],
    algorithm: Annotated[str, typer.Option("--algorithm", help="ecdsa-p256 or ed25519.")] = "ecdsa-p256",
) -> None:
    """Write a signing key pair; the private key is encrypted when MIRROR_KEY_PASSWORD is set."""
    from mirror.trust.keys import PASSWORD_VARIABLE, encrypts_new_keys, generate

    encrypted = encrypts_new_keys()
    key_path, pub_path, key_id = generate(name, algorithm)
    _say(key_id)
    _say(f"wrote {key_path} (private, keep it secret) and {pub_path} (public)", err=True)
    if encrypted:
        _say(f"{key_path} is encrypted with {PASSWORD_VARIABLE}", err=True)
    else:
        _say(
            f"warning: {key_path} is written unencrypted ({PASSWORD_VARIABLE} is not set): whoever can read the "
            "file can sign with it; keep it on an encrypted volume, or set the variable and run keygen again",
            err=True,
        )


@app.command()
@handled
def verify(
    bundle: Annotated[Path, typer.Argument(help="Bundle directory, .tar file or head volume .tar.000.", exists=True)],
    trust: Annotated[Path, typer.Option("--trust", exists=True, dir_okay=False, help="The trust policy.")],
    jobs: UnusedJobs = None,
    as_json: AsJson = False,
    quiet: QuietRun = False,
) -> None:
    """Check every checksum, signature, threshold, age and sequence rule; changes nothing."""
    from mirror.trust.check import check_trust

    _unused_jobs("verify", jobs)
    report = check_trust(bundle, trust, progress=Progress(quiet=quiet or as_json))
    if as_json:
        _print_json(report.to_json())
    elif not (quiet and report.ok):  # a refusal is always shown
        _print_trust_report(report)
    if not report.ok:
        raise typer.Exit(3)


def _unused_jobs(command: str, jobs: int | None) -> None:
    if jobs is not None:
        _say(f"note: {command} does no network work: --jobs is no longer used, and will be removed", err=True)


def _print_trust_report(report: Any) -> None:
    from mirror.supplychain.attached import ATTACHED

    inventory = report.checked.inventory
    _say(f"bundle {report.checked.reader.location}")
    _say(f"  id {inventory.bundle_id}, inventory sha256 {report.checked.inventory_sha256}")
    attached = sum(1 for a in inventory.artifacts if a.kind == ATTACHED)  # counted apart, as inspect and import do
    counted = f"{len(inventory.artifacts) - attached} artifact(s)" + (
        f" and {attached} attached manifest(s)" if attached else ""
    )
    _say(f"  {counted}, {len(inventory.files)} files, {human_size(inventory.total_size)}")
    for signature in report.verdict.signatures:
        who = f"{signature.role or 'unknown'} {signature.key_id or ''}".strip()
        detail = f": {signature.detail}" if signature.detail else ""
        _say(f"  signature {signature.file}: {signature.status} ({who}){detail}")
    required = [image for image in report.upstream if image.rules]
    if required:
        verified = sum(1 for image in required if not image.problems)
        _say(f"  upstream signatures: {verified} of {len(required)} image(s) requireSignatures matches verified")
    if report.ok:
        _say("verified: every file, signature and policy rule holds")
        return
    from mirror.trust.check import files_not_checked

    _say(f"REFUSED: {problem_count(report.problems)} problem(s)")
    for problem in report.problems:
        _say(f"  - {problem}")
    if not report.files_checked:
        _say(f"  ({files_not_checked(report.problems)})")


@app.command()
@handled
def approve(
    bundle: Annotated[Path, typer.Argument(help="Bundle directory, .tar file or head volume .tar.000.", exists=True)],
    key: Annotated[Path, typer.Option("--key", exists=True, dir_okay=False, help="The approver's private key.")],
    trust: Annotated[
        Path | None, typer.Option("--trust", exists=True, dir_okay=False, help="Check the collector by this policy.")
    ] = None,
    collector_key: Annotated[
        list[Path] | None,
        typer.Option("--collector-key", exists=True, dir_okay=False, help="Or check it against this public key."),
    ] = None,
    comment: Annotated[str, typer.Option("--comment", help="Recorded in the approval.")] = "",
    jobs: UnusedJobs = None,
    as_json: AsJson = False,
) -> None:
    """Check the bundle and its collector signature, then add this key's approval to it in place."""
    from mirror.trust.approve import approve_bundle
    from mirror.trust.keys import load_public_key, load_signer

    _unused_jobs("approve", jobs)
    signer = load_signer(key)
    collectors = [load_public_key(path) for path in collector_key or []]
    result = approve_bundle(bundle, signer, comment=comment, trust=trust, collector_keys=collectors)
    if as_json:
        _print_json(result.to_json())
        return
    verb = "was already approved" if result.already_approved else "approved"
    _say(f"{bundle} {verb} by {result.key_id}")
    _say(f"  bundle {result.bundle_id}, inventory sha256 {result.inventory_sha256}")
    _say(f"  collector signature(s) checked: {', '.join(result.collectors)}")
    if result.required is None:
        _say("  approvals: pass --trust POLICY to count the approvals it requires")
    elif result.approvals is not None and result.approvals >= result.required:
        _say(
            f"  approval {result.approvals} of {result.required} required: "
            "the bundle has every approval the policy requires"
        )
    else:
        _say(f"  approval {result.approvals} of {result.required} required")


@app.command()
@handled
def inspect(
    bundle: Annotated[
        Path, typer.Argument(help="Bundle directory, .tar, first volume, or an inventory file.", exists=True)
    ],
    trust: Annotated[
        Path | None,
        typer.Option("--trust", exists=True, dir_okay=False, help="Verify the signatures against this policy."),
    ] = None,
    base: Annotated[
        Path | None, typer.Option("--base", exists=True, help="The base bundle or its inventory: list the changes.")
    ] = None,
    html: Annotated[Path | None, typer.Option("--html", dir_okay=False, help="Write a self-contained report.")] = None,
    as_json: AsJson = False,
) -> None:
    """What is inside, who signed it, and what changed since its base; reads no layer."""
    from mirror.errors import UsageError
    from mirror.review.html import review_html
    from mirror.review.jsonout import review_json
    from mirror.review.model import build_review
    from mirror.review.text import review_text

    if html is not None and not html.parent.is_dir():
        raise UsageError(f"{html.parent}: no such directory", hint="--html names the report file to write")
    review = build_review(bundle, trust=trust, base=base)
    if html is not None:
        from mirror.report import write_text_atomically

        write_text_atomically(html, review_html(review))
    if as_json:
        _print_json(review_json(review))
    elif html is None:
        print(review_text(review), end="")
    else:
        _say(f"wrote {html}", err=True)


@app.command()
@handled
def diff(
    old: Annotated[Path, typer.Argument(help="The earlier bundle or inventory file.", exists=True)],
    new: Annotated[Path, typer.Argument(help="The later bundle or inventory file.", exists=True)],
    as_json: AsJson = False,
) -> None:
    """Artifacts added, removed and changed between two bundles or inventories; moved tags and Git refs."""
    from mirror.review.diff import diff_sources
    from mirror.review.jsonout import diff_json
    from mirror.review.source import open_source
    from mirror.review.text import diff_text

    result = diff_sources(open_source(old), open_source(new))
    if as_json:
        _print_json(diff_json(result))
    else:
        print(diff_text(result), end="")


def _version(value: bool) -> None:
    if value:
        print(f"mirror {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """mirror: verified bundles of images for air-gapped networks."""


_interrupting = False
_stop_signal: int | None = None  # the signal that interrupted the run: serve stops cleanly on SIGTERM


def _interrupted(signum: int, frame: object) -> None:
    """SIGTERM (systemd, Kubernetes) and Ctrl-C: stop every transfer now, then unwind like Ctrl-C.

    netguard.cancel() shuts every open socket and kills every git, so worker threads blocked in a transfer
    return at once and queued work fails at its first request; the main thread then unwinds, collect removes
    its staging area and --report is written. Later signals are ignored: the clean-up must not be cut short.
    Only SIGKILL leaves a staging area behind (never a bundle at OUT).
    """
    global _interrupting, _stop_signal
    if _interrupting:
        return
    _interrupting = True
    _stop_signal = signum
    guard = sys.modules.get("mirror.netguard")  # not loaded: nothing has touched the network yet
    if guard is not None:
        guard.cancel()
    raise KeyboardInterrupt


def _leave_after_interrupt(code: object) -> None:
    """Give the worker threads a moment to unwind, then exit without joining those that did not.

    At exit, Python joins every worker thread of concurrent.futures; one blocked where no cancel reaches it
    (a read from a stuck file system) would keep an interrupted process alive.
    """
    deadline = time.monotonic() + DEFAULT_LIMITS.interrupt_grace_s
    for thread in threading.enumerate():
        if thread is not threading.main_thread() and not thread.daemon:
            # A pool worker still starting when the signal landed cannot be joined yet (RuntimeError).
            with contextlib.suppress(RuntimeError):
                thread.join(max(0.0, deadline - time.monotonic()))
    if any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code if isinstance(code, int) else 130)


def main() -> None:
    signal.signal(signal.SIGTERM, _interrupted)
    signal.signal(signal.SIGINT, _interrupted)
    try:
        app()
    except SystemExit as done:
        if not _interrupting:
            raise
        # A signal that lands outside a command's own handling (just before or after it) reaches click, which
        # calls it "Aborted!" and exits 1; an interrupted run exits 130 wherever the signal landed.
        code = 130 if done.code == 1 else done.code
        _leave_after_interrupt(code)
        raise SystemExit(code) from None
