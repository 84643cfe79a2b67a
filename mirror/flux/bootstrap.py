"""What an operator applies once to bring a fleet up on the high side, rendered in memory (`_bootstrap/`).

For each `flux:` entry read from a Git source: the root GitRepository (on the internal Git server, the entry's
ref) and the Kustomization that builds the entry's path from it. When the fleet defines its own root (the
`flux-system` objects of `flux bootstrap`: a GitRepository whose internal URL is the entry's), the bootstrap
objects take its names and credentials reference, so the fleet's own objects take them over on the first
reconciliation instead of fighting them.

The cluster reaches the internal endpoints as the import did: where the import had credentials for the Git
server or the registry, `reference_internal_secrets` gives every source of that endpoint without one a
`secretRef` (`mirror-git`, `mirror-registry`) and, with a private CA (--ca-file) and TLS, HelmRepository and
OCIRepository a `certSecretRef` (`mirror-ca`; a GitRepository's secret carries `ca.crt` itself). The bootstrap
then holds a Secret *template* for every name a source refers to: the keys Flux reads, every value empty. No
credential is ever written; the operator fills them in. Pure: nothing here reads or writes a file.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mirror.errors import UsageError
from mirror.flux.rewrite import InternalEndpoints, RewrittenObject, dump_object
from mirror.terminal import escape

BOOTSTRAP_DIR = "_bootstrap"  # under the --flux-out directory; no namespace can be named so
ROOT_NAMESPACE = "flux-system"
GIT_SECRET = "mirror-git"
REGISTRY_SECRET = "mirror-registry"
CA_SECRET = "mirror-ca"
_OCI_SOURCES = ("HelmRepository", "OCIRepository")
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")


@dataclass(frozen=True)
class EndpointAccess:
    """What the cluster needs to reach the internal endpoints: as the import itself did (credentials for the Git
    server, for the registry), and whether their certificates come from a private CA (--ca-file)."""

    git_auth: bool = True
    registry_auth: bool = True
    ca: bool = False

    def authenticates(self, kind: str) -> bool:
        return self.git_auth if kind == "GitRepository" else self.registry_auth


@dataclass(frozen=True)
class FleetRoot:
    """A `flux:` entry read from a Git source: that source's name, URL and ref, and the path built."""

    git: str
    url: str
    ref: Mapping[str, str] = field(default_factory=dict)
    path: str = ""


def reference_internal_secrets(
    objects: Sequence[RewrittenObject], endpoints: InternalEndpoints, access: EndpointAccess
) -> list[RewrittenObject]:
    """The objects, each source given the Secret references the internal endpoints need (existing names kept)."""
    result = []
    for item in objects:
        kind = item.source.kind
        if kind not in ("GitRepository", *_OCI_SOURCES) or not isinstance(item.body.get("spec"), dict):
            result.append(item)
            continue
        body = copy.deepcopy(item.body)
        spec = body["spec"]
        if not isinstance(spec.get("secretRef"), dict) and access.authenticates(kind):
            spec["secretRef"] = {"name": GIT_SECRET if kind == "GitRepository" else REGISTRY_SECRET}
        if (
            kind in _OCI_SOURCES
            and access.ca
            and not endpoints.plain_http
            and not isinstance(spec.get("certSecretRef"), dict)
        ):
            spec["certSecretRef"] = {"name": CA_SECRET}
        result.append(RewrittenObject(item.path, body, item.source))
    return result


def bootstrap_files(
    roots: Sequence[FleetRoot], objects: Sequence[RewrittenObject], endpoints: InternalEndpoints, access: EndpointAccess
) -> dict[str, str]:
    """`_bootstrap/<git>.yaml` per fleet root, `_bootstrap/secrets.yaml` and their `kustomization.yaml`."""
    files: dict[str, str] = {}
    bodies = [item.body for item in objects]
    for root in roots:
        if not _DNS_LABEL.fullmatch(root.git):
            raise UsageError(f"flux entry of git source {escape(root.git)!r}: not usable as a file name")
        name = f"{BOOTSTRAP_DIR}/{root.git}-{_path_label(root.path)}.yaml"
        if name in files:
            raise UsageError(f"two flux entries read {escape(root.git)}:{escape(root.path)}; one is enough")
        documents = _root_objects(root, objects, endpoints, access)
        bodies += documents
        files[name] = "---\n".join(dump_object(d) for d in documents)
    secrets = _secret_templates(bodies, endpoints, access)
    if secrets:
        files[f"{BOOTSTRAP_DIR}/secrets.yaml"] = (
            "# Secret templates: fill in every empty value before applying; mirror writes no credential.\n"
            + "---\n".join(dump_object(s) for s in secrets)
        )
    index = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": sorted(n.removeprefix(BOOTSTRAP_DIR + "/") for n in files),
    }
    files[f"{BOOTSTRAP_DIR}/kustomization.yaml"] = dump_object(index)
    return files


def _path_label(path: str) -> str:
    label = re.sub(r"[^a-z0-9]+", "-", path.lower()).strip("-")[:40].strip("-")
    return label or "root"


def _normal_path(path: object) -> str:
    return str(path or "").strip().removeprefix("./").strip("/")


def _root_objects(
    root: FleetRoot, objects: Sequence[RewrittenObject], endpoints: InternalEndpoints, access: EndpointAccess
) -> list[dict[str, Any]]:
    url = endpoints.git_url(root.url)
    own = next(
        (o for o in objects if o.source.kind == "GitRepository" and o.body.get("spec", {}).get("url") == url), None
    )
    if own is not None:
        namespace, name = own.source.namespace or "default", own.source.name
        secret = copy.deepcopy(own.body["spec"].get("secretRef"))
    else:
        namespace, name, secret = ROOT_NAMESPACE, ROOT_NAMESPACE, None
    if secret is None and access.git_auth:
        secret = {"name": GIT_SECRET}
    kustomization_name = name
    for o in objects:
        spec = o.body.get("spec") or {}
        ref = spec.get("sourceRef") or {}
        if (
            o.source.kind == "Kustomization"
            and ref.get("kind") == "GitRepository"
            and ref.get("name") == name
            and (ref.get("namespace") or o.source.namespace or "default") == namespace
            and _normal_path(spec.get("path")) == _normal_path(root.path)
        ):
            kustomization_name = o.source.name
            break
    source: dict[str, Any] = {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "GitRepository",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"interval": "1m0s", "url": url},
    }
    if secret:
        source["spec"]["secretRef"] = secret
    if root.ref:
        source["spec"]["ref"] = dict(root.ref)
    kustomization = {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": kustomization_name, "namespace": namespace},
        "spec": {
            "interval": "10m0s",
            "path": "./" + _normal_path(root.path),
            "prune": True,
            "sourceRef": {"kind": "GitRepository", "name": name, "namespace": namespace},
        },
    }
    return [source, kustomization]


def _secret_templates(
    bodies: Sequence[Mapping[str, Any]], endpoints: InternalEndpoints, access: EndpointAccess
) -> list[dict[str, Any]]:
    """One Secret per (namespace, name) a source refers to, with the keys Flux reads there and empty values."""
    _, registry_host, _ = endpoints.parts
    wanted: dict[tuple[str, str], dict[str, str]] = {}
    docker: set[tuple[str, str]] = set()
    for body in bodies:
        kind, spec = body.get("kind"), body.get("spec")
        metadata = body.get("metadata") or {}
        if kind not in ("GitRepository", *_OCI_SOURCES) or not isinstance(spec, dict):
            continue
        namespace = metadata.get("namespace") or "default"
        secret_ref, cert_ref = spec.get("secretRef"), spec.get("certSecretRef")
        if isinstance(secret_ref, dict) and isinstance(secret_ref.get("name"), str):
            key = (namespace, secret_ref["name"])
            keys = wanted.setdefault(key, {})
            if kind == "GitRepository":
                keys.update({"username": "", "password": ""})
                if access.ca and (endpoints.git_base or "").startswith("https://"):
                    keys["ca.crt"] = ""
            else:
                docker.add(key)
                auths = {"auths": {registry_host: {"username": "", "password": ""}}}
                keys[".dockerconfigjson"] = json.dumps(auths, sort_keys=True)
        if isinstance(cert_ref, dict) and isinstance(cert_ref.get("name"), str):
            wanted.setdefault((namespace, cert_ref["name"]), {})["ca.crt"] = ""
    secrets = []
    for (namespace, name), keys in sorted(wanted.items()):
        only_docker = (namespace, name) in docker and set(keys) == {".dockerconfigjson"}
        secrets.append(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": name, "namespace": namespace},
                "type": "kubernetes.io/dockerconfigjson" if only_docker else "Opaque",
                "stringData": dict(sorted(keys.items())),
            }
        )
    return secrets


def rewrites(objects: Sequence[RewrittenObject]) -> list[dict[str, Any]]:
    """What was rewritten in each source, for the import report: its `url` (from, to) and the Secret references
    added; sorted by object. Objects with nothing rewritten are left out."""
    listed = []
    for item in objects:
        before, after = item.source.body.get("spec"), item.body.get("spec")
        if not isinstance(before, dict) or not isinstance(after, dict):
            continue
        entry: dict[str, Any] = {}
        if before.get("url") != after.get("url"):
            entry["url"] = {"from": before.get("url"), "to": after.get("url")}
        for field_name in ("secretRef", "certSecretRef"):
            if not isinstance(before.get(field_name), dict) and isinstance(after.get(field_name), dict):
                entry[field_name] = after[field_name].get("name")
        if entry:
            where = f"{item.source.kind} {item.source.namespace or 'default'}/{item.source.name}"
            listed.append({"object": where, "file": item.source.file, **entry})
    return sorted(listed, key=lambda e: (e["object"], e["file"]))
