"""YAML as the node configurations are written: by PyYAML's safe dumper, keys in their order, no anchors."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml


def dump_yaml(document: Mapping[str, Any], *, comment: str = "") -> str:
    """`document` as YAML (every string quoted as the dumper needs: a value never becomes structure), after a
    `# comment` line when given."""
    text = yaml.safe_dump(dict(document), sort_keys=False, default_flow_style=False, allow_unicode=True, width=4096)
    return (f"# {comment}\n" if comment else "") + text
