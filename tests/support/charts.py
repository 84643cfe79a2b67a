"""Real Helm charts for tests: archives, an HTTP chart repository served by nginx, and OCI charts.

- ``build_chart(...)`` makes a deterministic chart archive (.tgz) laid out as ``helm package`` does:
  one top directory ``<name>/`` with ``Chart.yaml``, ``values.yaml``, ``templates/deployment.yaml``
  (image ``{{ .Values.image.repository }}:{{ .Values.image.tag }}``) and vendored ``charts/*.tgz``.
- ``ChartRepo(root, base_url)`` writes chart archives and an ``index.yaml`` into a directory that
  ``scripts/services`` serves over HTTP (``services.charts_dir`` / ``services.charts_url``).
- ``push_oci_chart(tgz, "host/ns/name:tag")`` stores a chart as ``helm push`` does (Helm config and
  chart-content media types, the .tgz bytes unchanged as the only layer) and returns the manifest digest.
- ``seed_charts(services)`` builds the fixed chart catalogue described in its docstring; idempotent.

CLI (from the repository root): ``python -m tests.support.charts`` starts the services if needed, seeds
and prints the result as JSON. Needs only the standard library and PyYAML; never imports ``mirror``.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import re
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

import yaml

from tests.support.images import (
    FIXED_CREATED,
    FIXED_EPOCH,
    SkopeoError,
    digest_of,
    push,
    write_artifact,
)
from tests.support.services import UPSTREAM_REGISTRY

if TYPE_CHECKING:
    from tests.support.services import Services

HELM_CONFIG = "application/vnd.cncf.helm.config.v1+json"
HELM_CHART_LAYER = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
HELM_PROV_LAYER = "application/vnd.cncf.helm.chart.provenance.v1.prov"

#: The image a chart's values point at unless ``values`` says otherwise (exists after tests.support.seed).
DEFAULT_IMAGE_REPOSITORY = f"{UPSTREAM_REGISTRY}/fixtures/app"
DEFAULT_IMAGE_TAG = "1.0"

DEPLOYMENT_TEMPLATE = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}-{{ .Chart.Name }}
  labels:
    app.kubernetes.io/name: {{ .Chart.Name }}
    app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
spec:
  replicas: {{ .Values.replicaCount | default 1 }}
  selector:
    matchLabels:
      app.kubernetes.io/name: {{ .Chart.Name }}
  template:
    metadata:
      labels:
        app.kubernetes.io/name: {{ .Chart.Name }}
    spec:
      containers:
        - name: {{ .Chart.Name }}
          image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}"
          imagePullPolicy: {{ .Values.image.pullPolicy | default "IfNotPresent" }}
"""


class _Dumper(yaml.SafeDumper):
    """Multi-line strings as literal blocks (``|``), as hand-written Chart.yaml annotations are."""


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
    if "\n" in data:
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|")
    return dumper.represent_str(data)


_Dumper.add_representer(str, _represent_str)


def _dump_yaml(obj: Any, *, sort_keys: bool = False) -> bytes:
    return yaml.dump(obj, Dumper=_Dumper, sort_keys=sort_keys, default_flow_style=False, allow_unicode=True).encode()


def _as_bytes(data: bytes | str) -> bytes:
    return data.encode() if isinstance(data, str) else data


def default_values(repository: str = DEFAULT_IMAGE_REPOSITORY, tag: str = DEFAULT_IMAGE_TAG) -> dict[str, Any]:
    """The values.yaml of a chart built without ``values``: one image, ``repository`` + ``tag``."""
    return {"replicaCount": 1, "image": {"repository": repository, "tag": tag, "pullPolicy": "IfNotPresent"}}


def _chart_tar(files: Mapping[str, bytes]) -> bytes:
    """A tar of regular files only (like ``helm package``: no directory entries), sorted by name, mode
    0644, uid/gid 0, a fixed mtime. Same input, same bytes."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(files):
            data = files[name]
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            info.mtime = FIXED_EPOCH
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def build_chart(
    name: str,
    version: str,
    *,
    app_version: str | None = "1.0.0",
    values: Mapping[str, Any] | None = None,
    annotations: Mapping[str, str] | None = None,
    dependencies: Sequence[Mapping[str, Any]] | None = None,
    subcharts: Mapping[str, bytes] | None = None,
    api_version: str = "v2",
    requirements: Sequence[Mapping[str, Any]] | None = None,
    extra_files: Mapping[str, bytes | str] | None = None,
    metadata: Mapping[str, Any] | None = None,
    description: str | None = None,
) -> bytes:
    """A deterministic chart archive (gzip mtime 0, fixed tar mtimes, sorted entries): same arguments,
    same bytes, same sha256.

    - ``values``: the whole values.yaml (default :func:`default_values`); the template reads
      ``image.repository`` and ``image.tag``.
    - ``annotations`` (e.g. ``artifacthub.io/images``, a YAML string) and ``dependencies`` (list of
      ``{name, version, repository, ...}``) go into Chart.yaml; ``requirements`` into requirements.yaml
      (what apiVersion v1 charts use; pass ``api_version="v1"`` with it).
    - ``subcharts``: ``{name: tgz}`` vendored as ``charts/<name>.tgz`` (``name`` may end in ``.tgz``).
    - ``extra_files``: ``{path under <name>/: content}``, e.g. ``crds/crd.yaml`` or ``Chart.lock``;
      overrides generated files of the same path.
    - ``metadata``: further Chart.yaml fields (``kubeVersion``, ``deprecated``, ...), added last.
    """
    chart: dict[str, Any] = {
        "apiVersion": api_version,
        "name": name,
        "description": description if description is not None else f"Test chart {name}",
    }
    if api_version != "v1":
        chart["type"] = "application"
    chart["version"] = version
    if app_version is not None:
        chart["appVersion"] = app_version
    if annotations:
        chart["annotations"] = dict(annotations)
    if dependencies:
        chart["dependencies"] = [dict(d) for d in dependencies]
    chart.update(metadata or {})
    files: dict[str, bytes] = {
        "Chart.yaml": _dump_yaml(chart),
        "values.yaml": _dump_yaml(dict(values) if values is not None else default_values()),
        "templates/deployment.yaml": DEPLOYMENT_TEMPLATE.encode(),
    }
    if requirements:
        files["requirements.yaml"] = _dump_yaml({"dependencies": [dict(r) for r in requirements]})
    for sub, data in (subcharts or {}).items():
        files[f"charts/{sub if sub.endswith('.tgz') else sub + '.tgz'}"] = data
    for path, data in (extra_files or {}).items():
        files[path.strip("/")] = _as_bytes(data)
    tar = _chart_tar({f"{name}/{path}": data for path, data in files.items()})
    return gzip.compress(tar, compresslevel=9, mtime=0)


def read_chart_file(tgz: bytes, path: str = "Chart.yaml") -> bytes:
    """The bytes of ``<top dir>/<path>`` in a chart archive (``KeyError`` if absent)."""
    with tarfile.open(fileobj=io.BytesIO(tgz), mode="r:gz") as tar:
        for member in tar.getmembers():
            top, _, rest = member.name.lstrip("./").partition("/")
            if top and rest == path and member.isfile():
                f = tar.extractfile(member)
                assert f is not None
                return f.read()
    raise KeyError(f"{path} not in chart archive")


def chart_metadata(tgz: bytes) -> dict[str, Any]:
    """The parsed Chart.yaml of a chart archive."""
    meta = yaml.safe_load(read_chart_file(tgz, "Chart.yaml"))
    if not isinstance(meta, dict) or "name" not in meta or "version" not in meta:
        raise ValueError("Chart.yaml without name and version")
    return meta


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write_if_changed(path: Path, data: bytes) -> bool:
    """Atomic write (temp file + rename, so nginx never serves half a file); no-op if identical."""
    try:
        if path.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return True


_SEMVER = re.compile(r"^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$")


def _version_key(version: str) -> tuple[Any, ...]:
    """Semver precedence (prereleases before their release); unparseable versions sort lowest."""
    m = _SEMVER.match(str(version))
    if not m:
        return (0, str(version))
    nums = tuple(int(g or 0) for g in m.group(1, 2, 3))
    pre = m.group(4)
    if pre is None:
        return (1, nums, 1, ())
    ids = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split("."))
    return (1, nums, 0, ids)


# Chart.yaml fields in the order Helm writes them into an index entry / OCI config.
_METADATA_ORDER = (
    "name",
    "home",
    "sources",
    "version",
    "description",
    "keywords",
    "maintainers",
    "icon",
    "apiVersion",
    "condition",
    "tags",
    "appVersion",
    "deprecated",
    "annotations",
    "kubeVersion",
    "dependencies",
    "type",
)


def _ordered_metadata(meta: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: meta[k] for k in _METADATA_ORDER if k in meta}
    out.update({k: v for k, v in meta.items() if k not in out})
    return out


class ChartRepo:
    """An HTTP chart repository in a directory that nginx serves: ``root`` is reachable as ``base_url``.

    ``add()`` writes ``NAME-VERSION.tgz`` and records an index entry; ``write_index()`` writes
    ``index.yaml``. ``entries`` (name -> list of entry dicts) may be edited between the two to make odd
    indexes. A new ``ChartRepo`` starts with no entries (it does not read an existing index.yaml)."""

    def __init__(self, root: str | os.PathLike[str], base_url: str) -> None:
        self.root = Path(root)
        self.base_url = base_url.rstrip("/")
        self.entries: dict[str, list[dict[str, Any]]] = {}
        self.root.mkdir(parents=True, exist_ok=True)

    @property
    def index_url(self) -> str:
        return f"{self.base_url}/index.yaml"

    @property
    def index_path(self) -> Path:
        return self.root / "index.yaml"

    def add(
        self,
        tgz: bytes,
        *,
        relative_url: bool = True,
        url_override: str | None = None,
        digest_override: str | None = None,
        created: str = FIXED_CREATED,
    ) -> dict[str, Any]:
        """Write ``tgz`` as ``root/NAME-VERSION.tgz`` and record its entry (replacing one of the same
        name and version). The entry is Chart.yaml's fields plus ``created``, ``digest`` (sha256 hex of
        ``tgz``, or ``digest_override``) and ``urls``: ``["NAME-VERSION.tgz"]`` if ``relative_url``, else
        ``["<base_url>/NAME-VERSION.tgz"]``; ``url_override`` replaces either (the file is still written
        under its usual name, so point it at this repository's files via another host, or anywhere).
        Returns the entry (the dict that goes into the index)."""
        meta = chart_metadata(tgz)
        name, version = str(meta["name"]), str(meta["version"])
        filename = f"{name}-{version}.tgz"
        _write_if_changed(self.root / filename, tgz)
        if url_override is not None:
            url = url_override
        elif relative_url:
            url = filename
        else:
            url = f"{self.base_url}/{filename}"
        entry = _ordered_metadata(meta)
        entry["created"] = created
        entry["digest"] = digest_override if digest_override is not None else sha256_hex(tgz)
        entry["urls"] = [url]
        versions = [e for e in self.entries.get(name, []) if str(e.get("version")) != version]
        versions.append(entry)
        self.entries[name] = versions
        return entry

    def download_url(self, entry: Mapping[str, Any]) -> str:
        """The absolute URL of an entry's first ``urls`` item, resolved as Helm does (against the
        repository URL with a trailing slash)."""
        return urljoin(self.base_url + "/", entry["urls"][0])

    def write_index(self, *, sort: bool = True, generated: str = FIXED_CREATED) -> Path:
        """Write ``index.yaml`` (``apiVersion: v1``, ``entries``, ``generated``) atomically; unchanged
        content leaves the file alone. Mapping keys are sorted, as in Helm's output. ``sort`` orders each
        chart's versions newest first, as ``helm repo index`` does; otherwise insertion order is kept."""
        names = sorted(self.entries) if sort else list(self.entries)
        entries: dict[str, list[dict[str, Any]]] = {}
        for name in names:
            versions = list(self.entries[name])
            if sort:
                versions.sort(key=lambda e: _version_key(str(e.get("version"))), reverse=True)
            entries[name] = versions
        index = {"apiVersion": "v1", "entries": entries, "generated": generated}
        _write_if_changed(self.index_path, _dump_yaml(index, sort_keys=True))
        return self.index_path


# --------------------------------------------------------------------------------------------------
# OCI charts


def oci_tag(version: str) -> str:
    """The tag ``helm push`` uses for a chart version (``+`` is not allowed in tags and becomes ``_``)."""
    return version.replace("+", "_")


def helm_config(tgz: bytes) -> bytes:
    """The config blob ``helm push`` stores: Chart.yaml metadata as compact JSON."""
    return json.dumps(_ordered_metadata(chart_metadata(tgz)), separators=(",", ":")).encode()


def write_oci_chart(
    layout: str | os.PathLike[str],
    ref_name: str,
    tgz: bytes,
    *,
    prov: bytes | None = None,
    created: str = FIXED_CREATED,
) -> str:
    """Write the chart into an OCI layout as ``helm push`` would upload it; returns the manifest digest.

    The manifest carries Helm's annotations (``org.opencontainers.image.created/description/title/
    version``); ``created`` is fixed (Helm uses now), so the digest is deterministic."""
    meta = chart_metadata(tgz)
    annotations = {"org.opencontainers.image.created": created}
    if meta.get("description"):
        annotations["org.opencontainers.image.description"] = str(meta["description"])
    annotations["org.opencontainers.image.title"] = str(meta["name"])
    annotations["org.opencontainers.image.version"] = str(meta["version"])
    layers = [(HELM_CHART_LAYER, tgz)]
    if prov is not None:
        layers.append((HELM_PROV_LAYER, prov))
    return write_artifact(layout, ref_name, HELM_CONFIG, helm_config(tgz), layers, annotations)


def push_oci_chart(
    tgz: bytes,
    dest_ref: str,
    *,
    tls_verify: bool = False,
    creds: str | tuple[str, str] | None = None,
    cert_dir: str | os.PathLike[str] | None = None,
    prov: bytes | None = None,
    created: str = FIXED_CREATED,
    skip_existing: bool = True,
) -> str:
    """Store ``tgz`` at ``dest_ref`` (``host/ns/name:tag``; see :func:`oci_tag`) as an OCI chart: config
    ``application/vnd.cncf.helm.config.v1+json``, one layer ``application/vnd.cncf.helm.chart.content.v1.tar+gzip``
    holding the .tgz bytes unchanged (plus a provenance layer if ``prov``), an OCI image manifest.
    Written to a temporary OCI layout and copied with ``skopeo copy --preserve-digests``; with
    ``skip_existing`` nothing is pushed when the tag already has this manifest. Returns its digest."""
    with tempfile.TemporaryDirectory(prefix="mirror-ocichart-") as tmp:
        digest = write_oci_chart(tmp, "chart", tgz, prov=prov, created=created)
        if skip_existing:
            try:
                if digest_of(dest_ref, tls_verify=tls_verify, creds=creds, cert_dir=cert_dir) == digest:
                    return digest
            except SkopeoError:
                pass
        push(tmp, "chart", dest_ref, tls_verify=tls_verify, creds=creds, cert_dir=cert_dir)
    return digest


# --------------------------------------------------------------------------------------------------
# the seeded catalogue


def _values_for(image: str) -> dict[str, Any]:
    repository, _, tag = image.rpartition(":")
    return default_values(repository, tag)


def seed_charts(
    services: Services,
    *,
    subdir: str = "seed",
    oci_namespace: str = "charts",
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Build the chart catalogue, serve it from ``services.charts_dir/<subdir>`` and push the OCI charts
    to ``<services.upstream>/<oci_namespace>/<name>:<tag>``. Idempotent: identical files are not
    rewritten and tags already holding the expected manifest are not pushed. Also seeds the upstream
    images (tests.support.seed), since every image the charts reference must exist there.

    HTTP repository ``<charts_url>/seed`` (index.yaml sorted like ``helm repo index``):

    - ``app`` 1.0.0 (relative url), 1.1.0 (absolute url), 1.2.0-beta.1 (relative), 2.0.0 (absolute url
      on the second host, ``charts_url2``); images ``fixtures/app:1.0`` (1.0.0, 1.1.0) and
      ``fixtures/app:2.0`` (the others);
    - ``withdeps`` 0.1.0: Chart.yaml depends on ``app`` ``>=1.0.0 <2.0.0`` from this repository
      (resolves to 1.1.0: the prerelease is excluded) and on ``ocichart`` ``~0.1.0`` from
      ``oci://<upstream>/charts`` (resolves to 0.1.0); own image ``fixtures/shared-a:1.0``;
    - ``annotated`` 0.1.0: ``artifacthub.io/images`` lists ``fixtures/multi:1.0`` and
      ``fixtures/docker:1.0``; values use ``fixtures/multi:1.0``;
    - ``vendored`` 0.1.0: own image ``fixtures/app:1.0``, vendors ``charts/sub-0.1.0.tgz`` (image
      ``fixtures/shared-b:1.0``) which itself vendors ``charts/nested-0.1.0.tgz`` (image
      ``fixtures/dockerlist:1.0``); no dependencies declared;
    - ``legacy`` 0.1.0: apiVersion v1, requirements.yaml depends on ``app`` ``~1.0.0`` from this
      repository (resolves to 1.0.0); image ``fixtures/docker:1.0``.

    OCI: ``<upstream>/charts/ocichart`` tags ``0.1.0`` (image ``fixtures/app:1.0``), ``0.2.0``
    (``fixtures/app:2.0``) and ``0.3.0_build.1`` (chart version ``0.3.0+build.1``, ``fixtures/shared-a:1.0``).

    Returns::

        {"repo": {"name", "dir", "url", "url2", "index_url", "index_path"},
         "charts": {name: {version: {"name", "version", "app_version", "filename", "path", "url" (as in
                    index.yaml), "url_kind" ("relative" | "absolute" | "other-host"), "download_url",
                    "digest" (sha256 hex of the tgz, as in the index), "size", "images" (refs in this
                    archive, vendored subcharts included), "dependencies" ([{"name", "version",
                    "repository", "source" ("Chart.yaml" | "requirements.yaml"), "resolves_to"}]),
                    "subcharts" (["sub-0.1.0.tgz", "sub-0.1.0.tgz/nested-0.1.0.tgz"]),
                    "images_with_dependencies"}}},
         "oci": {name: {version: {"name", "version", "repository", "tag", "ref", "digest" (manifest),
                 "config_digest", "layer_digest" ("sha256:" + tgz sha256), "size" (of the tgz),
                 "images"}}},
         "images": {ref: manifest digest in upstream}}

    Image refs are ``<upstream>/fixtures/...:tag``; ``resolves_to`` is ``{"kind": "http" | "oci",
    "name", "version"}``."""
    from tests.support.seed import seed_upstream

    say = log or (lambda _msg: None)
    upstream = services.upstream
    upstream_images = seed_upstream(upstream, log=log)
    digests = {entry["ref"]: entry["digest"] for entry in upstream_images.values()}

    def img(path: str) -> str:
        ref = f"{upstream}/{path}"
        if ref not in digests:
            raise RuntimeError(f"{ref} is not in the upstream fixture catalogue")
        return ref

    repo_dir = Path(services.charts_dir) / subdir
    repo_url = f"{services.charts_url}/{subdir}"
    repo_url2 = f"{services.charts_url2}/{subdir}"
    repo = ChartRepo(repo_dir, repo_url)
    oci_repo = f"{upstream}/{oci_namespace}"

    # OCI charts first: withdeps depends on one.
    oci_specs = [
        ("ocichart", "0.1.0", img("fixtures/app:1.0")),
        ("ocichart", "0.2.0", img("fixtures/app:2.0")),
        ("ocichart", "0.3.0+build.1", img("fixtures/shared-a:1.0")),
    ]
    oci: dict[str, dict[str, Any]] = {}
    for name, version, image in oci_specs:
        tgz = build_chart(name, version, app_version=version.split("+")[0], values=_values_for(image))
        ref = f"{oci_repo}/{name}:{oci_tag(version)}"
        say(f"oci chart {ref}")
        with tempfile.TemporaryDirectory(prefix="mirror-ocichart-") as tmp:
            expected = write_oci_chart(tmp, "chart", tgz)
            config_digest = "sha256:" + hashlib.sha256(helm_config(tgz)).hexdigest()
        digest = push_oci_chart(tgz, ref)
        if digest != expected:
            raise RuntimeError(f"{ref}: pushed {digest}, expected {expected}")
        oci.setdefault(name, {})[version] = {
            "name": name,
            "version": version,
            "repository": f"{oci_repo}/{name}",
            "tag": oci_tag(version),
            "ref": ref,
            "digest": digest,
            "config_digest": config_digest,
            "layer_digest": "sha256:" + sha256_hex(tgz),
            "size": len(tgz),
            "images": [image],
        }

    charts: dict[str, dict[str, Any]] = {}

    def add(
        tgz: bytes,
        url_kind: str,
        images: list[str],
        *,
        dependencies: list[dict[str, Any]] | None = None,
        subcharts: list[str] | None = None,
    ) -> None:
        if url_kind == "relative":
            entry = repo.add(tgz)
        elif url_kind == "absolute":
            entry = repo.add(tgz, relative_url=False)
        else:
            meta = chart_metadata(tgz)
            entry = repo.add(tgz, url_override=f"{repo_url2}/{meta['name']}-{meta['version']}.tgz")
        name, version = entry["name"], str(entry["version"])
        charts.setdefault(name, {})[version] = {
            "name": name,
            "version": version,
            "app_version": entry.get("appVersion"),
            "filename": f"{name}-{version}.tgz",
            "path": str(repo_dir / f"{name}-{version}.tgz"),
            "url": entry["urls"][0],
            "url_kind": url_kind,
            "download_url": repo.download_url(entry),
            "digest": entry["digest"],
            "size": len(tgz),
            "images": images,
            "dependencies": dependencies or [],
            "subcharts": subcharts or [],
        }

    app_specs = [
        ("1.0.0", "1.0", img("fixtures/app:1.0"), "relative"),
        ("1.1.0", "1.0", img("fixtures/app:1.0"), "absolute"),
        ("1.2.0-beta.1", "2.0", img("fixtures/app:2.0"), "relative"),
        ("2.0.0", "2.0", img("fixtures/app:2.0"), "other-host"),
    ]
    for version, app_version, image, url_kind in app_specs:
        add(build_chart("app", version, app_version=app_version, values=_values_for(image)), url_kind, [image])

    withdeps_deps = [
        {"name": "app", "version": ">=1.0.0 <2.0.0", "repository": repo_url},
        {"name": "ocichart", "version": "~0.1.0", "repository": f"oci://{oci_repo}"},
    ]
    withdeps_image = img("fixtures/shared-a:1.0")
    add(
        build_chart("withdeps", "0.1.0", values=_values_for(withdeps_image), dependencies=withdeps_deps),
        "relative",
        [withdeps_image],
        dependencies=[
            {
                **withdeps_deps[0],
                "source": "Chart.yaml",
                "resolves_to": {"kind": "http", "name": "app", "version": "1.1.0"},
            },
            {
                **withdeps_deps[1],
                "source": "Chart.yaml",
                "resolves_to": {"kind": "oci", "name": "ocichart", "version": "0.1.0"},
            },
        ],
    )

    multi, docker = img("fixtures/multi:1.0"), img("fixtures/docker:1.0")
    hint = [
        {"name": "multi", "image": multi, "platforms": ["linux/amd64", "linux/arm64"]},
        {"name": "docker", "image": docker, "whitelisted": True},
    ]
    add(
        build_chart(
            "annotated",
            "0.1.0",
            values=_values_for(multi),
            annotations={"artifacthub.io/images": _dump_yaml(hint).decode(), "category": "test"},
        ),
        "absolute",
        [multi, docker],
    )

    nested_image, sub_image, vendored_image = (
        img("fixtures/dockerlist:1.0"),
        img("fixtures/shared-b:1.0"),
        img("fixtures/app:1.0"),
    )
    nested = build_chart("nested", "0.1.0", values=_values_for(nested_image))
    sub = build_chart("sub", "0.1.0", values=_values_for(sub_image), subcharts={"nested-0.1.0": nested})
    add(
        build_chart("vendored", "0.1.0", values=_values_for(vendored_image), subcharts={"sub-0.1.0": sub}),
        "relative",
        [vendored_image, sub_image, nested_image],
        subcharts=["sub-0.1.0.tgz", "sub-0.1.0.tgz/nested-0.1.0.tgz"],
    )

    legacy_req = {"name": "app", "version": "~1.0.0", "repository": repo_url}
    legacy_image = img("fixtures/docker:1.0")
    add(
        build_chart("legacy", "0.1.0", api_version="v1", values=_values_for(legacy_image), requirements=[legacy_req]),
        "relative",
        [legacy_image],
        dependencies=[
            {
                **legacy_req,
                "source": "requirements.yaml",
                "resolves_to": {"kind": "http", "name": "app", "version": "1.0.0"},
            }
        ],
    )

    index_path = repo.write_index()
    say(f"index {repo.index_url}")

    for versions in charts.values():
        for info in versions.values():
            images = list(info["images"])
            for dep in info["dependencies"]:
                target = dep["resolves_to"]
                source = charts if target["kind"] == "http" else oci
                images += [i for i in source[target["name"]][target["version"]]["images"] if i not in images]
            info["images_with_dependencies"] = images

    referenced = sorted(
        {i for vs in charts.values() for v in vs.values() for i in v["images"]}
        | {i for vs in oci.values() for v in vs.values() for i in v["images"]}
    )
    return {
        "repo": {
            "name": subdir,
            "dir": str(repo_dir),
            "url": repo_url,
            "url2": repo_url2,
            "index_url": repo.index_url,
            "index_path": str(index_path),
        },
        "charts": charts,
        "oci": oci,
        "images": {ref: digests[ref] for ref in referenced},
    }


def main(argv: list[str] | None = None) -> int:
    from tests.support.services import ensure_services

    parser = argparse.ArgumentParser(prog="python -m tests.support.charts", description=__doc__.split("\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    args = parser.parse_args(argv)
    start = time.monotonic()
    log = (lambda msg: print(msg, file=sys.stderr)) if args.verbose else None
    result = seed_charts(ensure_services(), log=log)
    json.dump(result, sys.stdout, indent=2)
    print()
    if args.verbose:
        print(f"seeded in {time.monotonic() - start:.2f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
