"""MirrorSet documents for tests and the bench, written the way an operator would write them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


def mirrorset(
    images: list[Any],
    *,
    registries: dict[str, Any] | None = None,
    platforms: Any = None,
    name: str = "test",
    attached: bool | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {"images": images}
    if attached is not None:
        spec["attached"] = attached
    if registries is not None:
        spec["registries"] = registries
    if platforms is not None:
        spec["platforms"] = platforms
    return {"apiVersion": "mirror/v1", "kind": "MirrorSet", "metadata": {"name": name}, "spec": spec}


def write_mirrorset(path: Path, images: list[Any], **options: Any) -> Path:
    path.write_text(yaml.safe_dump(mirrorset(images, **options), sort_keys=False))
    return path
