"""Day two on the high side: `mirror prune` deletes the manifests no kept bundle uses, as the journal records them.

See docs/day-two.md. This package imports nothing from mirror.collector, nor mirror.importer (docs/architecture.md).
"""
