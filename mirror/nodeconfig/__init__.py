"""Registry mirror configuration for cluster nodes: what makes them pull `SRC-HOST/PATH` from the internal
registry where the importer lands it. Pure: rendered in memory, written by the importer. See
docs/mirror-config.md."""
