"""Platforms (`os/architecture[/variant]`) and the filter applied to multi-arch indexes."""

from __future__ import annotations

import re
from dataclasses import dataclass

from mirror.errors import UsageError

_PART = re.compile(r"[a-z0-9_.-]+")
# Variants that registries leave out because they are the architecture's default.
_DEFAULT_VARIANT = {"arm64": "v8", "arm": "v7"}


@dataclass(frozen=True, order=True)
class Platform:
    os: str
    architecture: str
    variant: str | None = None

    def __str__(self) -> str:
        parts = [self.os, self.architecture] + ([self.variant] if self.variant else [])
        return "/".join(parts)

    def matches(self, candidate: Platform) -> bool:
        """True when `candidate` (from an index) satisfies this filter; a filter without variant takes any."""
        if (self.os, self.architecture) != (candidate.os, candidate.architecture):
            return False
        if self.variant is None:
            return True
        wanted = self.variant
        offered = candidate.variant or _DEFAULT_VARIANT.get(candidate.architecture)
        return wanted == offered


def parse_platform(text: str) -> Platform:
    parts = text.split("/") if isinstance(text, str) else []
    if len(parts) not in (2, 3) or not all(_PART.fullmatch(p) for p in parts):
        raise UsageError(f"invalid platform {text!r}: expected os/architecture[/variant], e.g. linux/arm64")
    return Platform(*parts)


def platform_of_descriptor(descriptor_platform: dict | None) -> Platform | None:
    if not isinstance(descriptor_platform, dict):
        return None
    os_name, arch = descriptor_platform.get("os"), descriptor_platform.get("architecture")
    if not isinstance(os_name, str) or not isinstance(arch, str):
        return None
    variant = descriptor_platform.get("variant")
    return Platform(os_name, arch, variant if isinstance(variant, str) and variant else None)
