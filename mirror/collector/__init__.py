"""The connected side: `mirror collect` and `mirror resolve`. See docs/collector.md.

Nothing outside cli.py imports this package, and the high side never does (docs/architecture.md).
"""
