"""The `mirror` command: parse flags, call one function, map errors to the contract's exit codes."""

from __future__ import annotations

import functools
import json
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from mirror import __version__
from mirror.errors import MirrorError
from mirror.progress import Progress, human_size

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Carry container images into air-gapped networks through verified bundles.",
    pretty_exceptions_enable=False,
)

F = TypeVar("F", bound=Callable[..., Any])

Jobs = Annotated[int, typer.Option("--jobs", "-j", min=1, max=64, help="Parallel network transfers.")]
CaFile = Annotated[
    Path | None,
    typer.Option("--ca-file", exists=True, dir_okay=False, help="CA bundle for TLS; default: $SSL_CERT_FILE."),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress or log lines.")]


def _fail(error: MirrorError) -> None:
    print(f"error: {error}", file=sys.stderr)
    if error.hint:
        print(f"hint: {error.hint}", file=sys.stderr)


def handled(command: F) -> F:
    """Turn mirror's errors into their exit codes, and anything else into exit 1 without a traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except MirrorError as error:
            _fail(error)
            raise typer.Exit(error.exit_code) from None
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            raise typer.Exit(130) from None
        except Exception as error:  # the last resort: report, never show a traceback unless asked
            if os.environ.get("MIRROR_DEBUG"):
                traceback.print_exc()
            print(f"internal error: {type(error).__name__}: {error}", file=sys.stderr)
            print("hint: set MIRROR_DEBUG=1 for a traceback, and report it", file=sys.stderr)
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def _ca(ca_file: Path | None) -> str | None:
    return str(ca_file) if ca_file else os.environ.get("SSL_CERT_FILE") or None


def _print_json(data: object) -> None:
    print(json.dumps(data, indent=2))


def _write_report(path: Path, data: object) -> None:
    temporary = path.with_name(f".{path.name}.partial")
    temporary.write_text(json.dumps(data, indent=2) + "\n")
    temporary.replace(path)


@app.command()
@handled
def resolve(
    manifests: Annotated[list[Path], typer.Argument(help="MirrorSet files.", exists=True, dir_okay=False)],
    jobs: Jobs = 4,
    ca_file: CaFile = None,
    as_json: AsJson = False,
) -> None:
    """Resolve every source to immutable references and print the lock; touches no bundle."""
    from mirror.collect import resolve as resolve_sources

    images = resolve_sources(manifests, jobs=jobs, ca_file=_ca(ca_file))
    lock = {"apiVersion": "mirror/v1", "kind": "Lock", "artifacts": [i.lock_entry() for i in images]}
    if as_json:
        _print_json(lock)
        return
    for image in images:
        platforms = f"  [{', '.join(image.platforms)}]" if image.platforms else ""
        print(f"{image.source}  {image.digest}{platforms}")


@app.command()
@handled
def collect(
    manifests: Annotated[list[Path], typer.Argument(help="MirrorSet files.", exists=True, dir_okay=False)],
    out: Annotated[Path, typer.Option("--out", "-o", help="Bundle to write: a directory, or a file ending .tar.")],
    jobs: Jobs = 4,
    ca_file: CaFile = None,
    as_json: AsJson = False,
    quiet: Quiet = False,
) -> None:
    """Resolve, download and write a bundle at OUT."""
    from mirror.collect import collect as collect_bundle

    result = collect_bundle(manifests, out, jobs=jobs, ca_file=_ca(ca_file), progress=Progress(quiet=quiet))
    if as_json:
        _print_json(result.summary())
        return
    for image in result.images:
        print(f"{image.source}  {image.digest}")
    print(f"bundle {out}: {len(result.images)} image(s), {human_size(result.inventory.total_size)}")


@app.command("import")
@handled
def import_(
    bundle: Annotated[Path, typer.Argument(help="Bundle directory or .tar file.", exists=True)],
    registry: Annotated[str, typer.Option("--registry", help="Target: https://HOST[:PORT][/PREFIX].")],
    allow_unsigned: Annotated[
        bool, typer.Option("--allow-unsigned", help="Import on checksums alone, for labs; warns.")
    ] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Verify and report what would change.")] = False,
    report: Annotated[Path | None, typer.Option("--report", help="Write the JSON report to this file.")] = None,
    jobs: Jobs = 4,
    ca_file: CaFile = None,
    as_json: AsJson = False,
    quiet: Quiet = False,
) -> None:
    """Verify the bundle completely, then load its images into the registry."""
    from mirror.importer import import_bundle

    result = import_bundle(
        bundle,
        registry,
        allow_unsigned=allow_unsigned,
        jobs=jobs,
        dry_run=dry_run,
        ca_file=_ca(ca_file),
        progress=Progress(quiet=quiet),
    )
    data = result.to_json()
    if report:
        _write_report(report, data)
    if as_json:
        _print_json(data)
        return
    for image in result.images:
        print(f"{image.target}@{image.digest}  {image.status}")
    counts = result.counts
    print(
        f"{'would import' if dry_run else 'imported'} {len(result.images)} image(s) into {result.registry}: "
        f"{counts.blobs_uploaded} blob(s) uploaded ({human_size(counts.bytes_uploaded)}), "
        f"{counts.blobs_mounted} mounted, {counts.blobs_present} already present"
    )


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


def main() -> None:
    app()
