import sys

# The one place the version is written: pyproject.toml reads it at build time, and `mirror --version` prints it
# without scanning installed package metadata (importlib.metadata costs tens of milliseconds per run).
__version__ = "0.1.0"

# `import httpx` also imports httpx's own command-line client (click, rich, pygments: about 0.1 s of CPU) whenever
# click is installed, and typer brings click. A None entry makes that optional import fail, as httpx
# expects it to when click is absent, and mirror never runs that client.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
