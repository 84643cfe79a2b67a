"""Validated, frozen types for a MirrorSet."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from mirror.oci.platform import Platform
from mirror.oci.reference import ImageReference
from mirror.registry.endpoint import RegistrySettings


@dataclass(frozen=True)
class ImageSource:
    reference: ImageReference
    platforms: tuple[Platform, ...] | None  # None keeps every platform of a multi-arch image
    origin: str  # file and field it came from, for messages


@dataclass(frozen=True)
class MirrorSet:
    name: str
    path: str
    platforms: tuple[Platform, ...] | None
    registries: Mapping[str, RegistrySettings] = field(default_factory=dict)
    images: tuple[ImageSource, ...] = ()
