"""The high side: `mirror import`, a transaction that plans and checks everything, and only then writes.

See docs/importer.md. This package imports nothing from mirror.collector (docs/architecture.md).
"""
