"""The `mirror` console script and `python -m mirror`."""

import os
import sys

from mirror import __version__


def _columns() -> int:
    """The width click would read (shutil.get_terminal_size, without importing shutil)."""
    try:
        columns = int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns if columns > 0 else 80


def main() -> None:
    # `mirror --version` and `mirror --help` answer before importing the command line: typer, click and every
    # command's options cost several times Python's own start-up, and a probe needs none of it.
    if sys.argv[1:] == ["--version"]:
        print(f"mirror {__version__}")
        return
    # The stored help is typer's own rendering at 80 columns, which click uses on any terminal at least that wide
    # (tests/unit/test_help_fast_path.py regenerates it from typer and requires equality). Named otherwise (python
    # -m mirror), or on a narrower terminal, typer renders it.
    if sys.argv[1:] == ["--help"] and os.path.basename(sys.argv[0]) == "mirror" and _columns() >= 80:
        from mirror.helptext import MAIN_HELP

        sys.stdout.write(MAIN_HELP)
        return
    from mirror.cli import main as run_cli

    run_cli()


if __name__ == "__main__":
    main()
