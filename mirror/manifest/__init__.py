"""The MirrorSet manifest: what to collect, parsed into validated, frozen types."""

from mirror.manifest.load import load_mirrorsets
from mirror.manifest.model import ImageSource, MirrorSet

__all__ = ["ImageSource", "MirrorSet", "load_mirrorsets"]
