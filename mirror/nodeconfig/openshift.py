"""OpenShift's cluster-wide mirror objects (config.openshift.io/v1): an ImageDigestMirrorSet for pulls by digest
and an ImageTagMirrorSet for pulls by tag, each mapping every source registry to the internal registry."""

from __future__ import annotations

import hashlib
import re
from typing import Any

from mirror.nodeconfig.hosts import MirrorTarget
from mirror.nodeconfig.yamltext import dump_yaml

OPENSHIFT_DIGESTS = "openshift/imagedigestmirrorset.yaml"
OPENSHIFT_TAGS = "openshift/imagetagmirrorset.yaml"
API_VERSION = "config.openshift.io/v1"
# A DNS-1123 subdomain, as Kubernetes requires of a cluster-scoped object's name.
_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_MAX_NAME = 253  # Kubernetes' bound on a DNS-1123 subdomain


def object_name(target: MirrorTarget) -> str:
    """`mirror-HOST-PORT-PREFIX`, lowercased, with `:`, `/` and `_` written as `-`: one pair of objects per
    internal registry and prefix, replaced by the next night's. A name past Kubernetes' bound is `mirror-` and
    a digest of it."""
    name = "mirror-" + re.sub(r"[:/_]", "-", target.location.lower())
    if len(name) > _MAX_NAME or not _SUBDOMAIN.fullmatch(name):
        name = "mirror-" + hashlib.sha256(target.location.encode()).hexdigest()[:32]
    return name


def _mirror_set(kind: str, field: str, target: MirrorTarget, sources: list[str]) -> str:
    document: dict[str, Any] = {
        "apiVersion": API_VERSION,
        "kind": kind,
        "metadata": {"name": object_name(target)},
        "spec": {field: [{"source": source, "mirrors": [target.location]} for source in sources]},
    }
    comment = f"Images of these registries are pulled from {target.location}/<path>, where mirror puts them"
    return dump_yaml(document, comment=comment)


def image_digest_mirror_set(target: MirrorTarget, sources: list[str]) -> str:
    return _mirror_set("ImageDigestMirrorSet", "imageDigestMirrors", target, sources)


def image_tag_mirror_set(target: MirrorTarget, sources: list[str]) -> str:
    return _mirror_set("ImageTagMirrorSet", "imageTagMirrors", target, sources)
