"""The `mirror` console script and `python -m mirror`."""

import sys

from mirror import __version__


def main() -> None:
    # `mirror --version` answers before importing the command line: typer, click and every command's options
    # cost several times Python's own start-up, and a version probe (scripts, fleet inventories) needs none of it.
    if sys.argv[1:] == ["--version"]:
        print(f"mirror {__version__}")
        return
    from mirror.cli import main as run_cli

    run_cli()


if __name__ == "__main__":
    main()
