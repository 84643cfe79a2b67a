# The one place the version is written: pyproject.toml reads it at build time, and `mirror --version` prints it
# without scanning installed package metadata (importlib.metadata costs tens of milliseconds per run).
__version__ = "0.1.0"
