"""Reading MirrorSet files: every field checked, unknown fields refused, each error naming file and field."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from mirror.egress import HostPattern, parse_host_pattern
from mirror.errors import ManifestError, ReferenceError_, UsageError
from mirror.fsutil import require_regular_file
from mirror.manifest.chartvalues import FIELDS as _CHART_VALUES_FIELDS
from mirror.manifest.chartvalues import chart_values
from mirror.manifest.files import check_one_name, parse_files
from mirror.manifest.model import (
    ChartImages,
    ChartSource,
    FluxEntry,
    GitSource,
    ImageSource,
    MirrorSet,
    UrlRewrite,
)
from mirror.manifest.tagselect import TagSelector, parse_tag_selector
from mirror.oci.platform import Platform, parse_platform
from mirror.oci.reference import parse_reference
from mirror.registry.endpoint import RegistrySettings, parse_endpoint_url
from mirror.supplychain.rules import VerifyRule, parse_rules, trusted_root_file
from mirror.urlpath import source_path_problem
from mirror.warncodes import ACKNOWLEDGEABLE, Acknowledgement
from mirror.yamlio import load_yaml_documents

API_VERSION = "mirror/v1"
KIND = "MirrorSet"

_TOP_FIELDS = {"apiVersion", "kind", "metadata", "spec"}
_METADATA_FIELDS = {"name", "labels", "annotations"}
_SPEC_FIELDS = {
    *("platforms", "registries", "images", "charts", "git", "flux", "allowedHosts", "rewrite"),
    *("verify", "trustedRoot", "attached", "acknowledge", "files"),
}
_ACKNOWLEDGE_FIELDS = {"code", "match", "reason"}
_REWRITE_FIELDS = {"from", "to"}
_FLUX_FIELDS = {"git", "path", "gitRepository"}
_OBJECT_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")
_GIT_FIELDS = {"name", "url", "ref"}
_GIT_REF_FIELDS = {"branch", "tag", "semver", "commit", "name"}
_GIT_NAME = re.compile(r"[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?")
_COMMIT = re.compile(r"[0-9a-f]{40}")
_CHART_FIELDS = {"name", "repo", "version", "images", "dependencies", *_CHART_VALUES_FIELDS}
_CHART_IMAGE_FIELDS = {"discover", "include", "exclude"}
_CHART_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,252}")
_REGISTRY_FIELDS = {"plainHTTP", "endpoint", "caFile"}
_IMAGE_FIELDS = {"ref", "platforms", "verify", "tags"}


class _Checker:
    """Validation helpers bound to one file, so every error names it."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, field: str, problem: str, hint: str | None = None) -> ManifestError:
        return ManifestError(str(self.path), field, problem, hint=hint)

    def mapping(self, value: Any, field: str, allowed: set[str]) -> Mapping[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(field, f"expected a mapping, got {type(value).__name__}")
        unknown = sorted(str(k) for k in value if k not in allowed)
        if unknown:
            raise self.fail(
                f"{field}.{unknown[0]}" if field else unknown[0],
                "unknown field",
                hint=f"allowed fields here: {', '.join(sorted(allowed))}",
            )
        return value

    def string(self, value: Any, field: str) -> str:
        if not isinstance(value, str) or not value:
            raise self.fail(field, f"expected a non-empty string, got {value!r}")
        return value

    def platforms(self, value: Any, field: str) -> tuple[Platform, ...] | None:
        if value is None or value == "all":
            return None
        if not isinstance(value, list) or not value:
            raise self.fail(field, "expected 'all' or a non-empty list of os/architecture[/variant]")
        result = []
        for i, item in enumerate(value):
            try:
                result.append(parse_platform(item))
            except UsageError as exc:
                raise self.fail(f"{field}[{i}]", str(exc)) from exc
        return tuple(dict.fromkeys(result))


def _registries(check: _Checker, value: Any) -> dict[str, RegistrySettings]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise check.fail("spec.registries", "expected a mapping of registry host to settings")
    result = {}
    for host, settings in value.items():
        field = f"spec.registries[{host!r}]"
        try:
            if not isinstance(host, str) or "/" in host:
                raise ReferenceError_(f"{host!r} has a path")
            host = parse_reference(f"{host}/probe").registry  # index.docker.io and docker.io are one registry
        except ReferenceError_ as exc:
            raise check.fail(field, f"{host!r} is not a registry host[:port]") from exc
        if host in result:
            raise check.fail(field, f"settings for {host} are given twice")
        settings = check.mapping(settings or {}, field, _REGISTRY_FIELDS)
        plain_http = settings.get("plainHTTP", False)
        if not isinstance(plain_http, bool):
            raise check.fail(f"{field}.plainHTTP", f"expected true or false, got {plain_http!r}")
        endpoint = settings.get("endpoint")
        if endpoint is not None:
            try:
                parse_endpoint_url(check.string(endpoint, f"{field}.endpoint"), "endpoint")
            except UsageError as exc:
                raise check.fail(f"{field}.endpoint", exc.message.removeprefix("endpoint: "), hint=exc.hint) from exc
            if plain_http:
                raise check.fail(field, "plainHTTP and endpoint both set", hint="give the scheme in the endpoint URL")
        ca_file = settings.get("caFile")
        if ca_file is not None:
            ca_path = check.path.parent / check.string(ca_file, f"{field}.caFile")
            if not ca_path.is_file():
                raise check.fail(f"{field}.caFile", f"{ca_path} is not a file")
            ca_file = str(ca_path)
        result[host] = RegistrySettings(plain_http=plain_http, endpoint=endpoint, ca_file=ca_file)
    return result


def _images(
    check: _Checker, value: Any, default_platforms: tuple[Platform, ...] | None, trusted_root: Path | None
) -> tuple[ImageSource, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise check.fail("spec.images", "expected a list of references or {ref, platforms, verify} entries")
    result: list[ImageSource] = []
    for i, item in enumerate(value):
        field = f"spec.images[{i}]"
        platforms = default_platforms
        verify = None
        if isinstance(item, dict):
            item = check.mapping(item, field, _IMAGE_FIELDS)
            if "ref" not in item:
                raise check.fail(f"{field}.ref", "missing; expected an image reference")
            if "platforms" in item:
                platforms = check.platforms(item["platforms"], f"{field}.platforms")
            if "verify" in item:
                verify = _verify_rules(check, item["verify"], f"{field}.verify", trusted_root, with_match=False)
            text, ref_field = item["ref"], f"{field}.ref"
        else:
            text, ref_field = item, field
        try:
            reference = parse_reference(check.string(text, ref_field))
        except ReferenceError_ as exc:
            raise check.fail(ref_field, exc.message, hint=exc.hint) from exc
        selector = None
        if isinstance(item, dict) and "tags" in item:
            selector = _tag_selector(check, item["tags"], f"{field}.tags")
            if "@" in text or text.rfind(":") > text.rfind("/"):
                raise check.fail(ref_field, f"{text!r} names a tag or digest; with tags: give the repository alone")
            reference = replace(reference, tag=None)
        result.append(ImageSource(reference, platforms, f"{check.path}: {ref_field}", verify=verify, tags=selector))
    return tuple(result)


def _tag_selector(check: _Checker, value: Any, field: str) -> TagSelector:
    try:
        return parse_tag_selector(value, field)
    except UsageError as exc:
        field_at_fault, _, problem = exc.message.partition(": ")
        raise check.fail(field_at_fault, problem, hint=exc.hint) from exc


def _verify_rules(
    check: _Checker, value: Any, field: str, trusted_root: Path | None, *, with_match: bool
) -> tuple[VerifyRule, ...]:
    if value is None and not with_match:
        raise check.fail(field, "expected a list of rules; [] exempts the image from spec.verify")
    return parse_rules(
        value,
        check.path,
        field,
        with_match=with_match,
        trusted_root=trusted_root,
        root_required=True,
        root_field="spec.trustedRoot",
    )


def _chart_repo(check: _Checker, value: Any, field: str) -> str:
    text = check.string(value, field)
    if text.startswith("oci://"):
        try:
            reference = parse_reference(text.removeprefix("oci://").rstrip("/") + "/probe")
        except ReferenceError_ as exc:
            raise check.fail(field, f"{text!r} is not oci://host/path", hint=exc.hint) from exc
        return f"oci://{reference.name.removesuffix('/probe')}"
    try:
        parts = urlsplit(text)
        credentials = bool(parts.username or parts.password)
    except ValueError as exc:
        raise check.fail(field, "not a valid URL") from exc
    if credentials:
        raise check.fail(field, "the URL must not carry credentials")
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise check.fail(field, f"{text!r} must be an https:// chart repository URL or oci://host/path")
    return text.rstrip("/")


def _chart_images(check: _Checker, value: Any, field: str) -> ChartImages:
    if value is None or isinstance(value, bool):
        return ChartImages(discover=bool(value))
    if isinstance(value, list):  # an explicit list replaces discovery
        value = {"discover": False, "include": value}
    value = check.mapping(value, field, _CHART_IMAGE_FIELDS)
    discover = value.get("discover", True)
    if not isinstance(discover, bool):
        raise check.fail(f"{field}.discover", "expected true or false")
    include = []
    for i, item in enumerate(value.get("include") or []):
        try:
            include.append(parse_reference(check.string(item, f"{field}.include[{i}]")))
        except ReferenceError_ as exc:
            raise check.fail(f"{field}.include[{i}]", exc.message, hint=exc.hint) from exc
    exclude = value.get("exclude") or []
    if not isinstance(exclude, list) or not all(isinstance(e, str) and e for e in exclude):
        raise check.fail(f"{field}.exclude", "expected a list of reference globs")
    return ChartImages(discover, tuple(include), tuple(exclude))


def _chart_version(check: _Checker, value: Any, field: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, float):
        raise check.fail(field, f"{value!r} was read as a number", hint='quote versions, e.g. version: "1.10"')
    text = check.string(str(value) if isinstance(value, int) and not isinstance(value, bool) else value, field)
    from mirror.semver import Constraint, Version  # only MirrorSets with charts pay for its import

    try:
        Constraint.parse(text)
    except UsageError as exc:
        try:
            Version.parse(text)
        except ValueError:
            raise check.fail(
                field, f"{text!r} is neither a version nor a Helm version constraint: {exc.message}"
            ) from exc
    return text


def _charts(check: _Checker, value: Any, platforms: tuple[Platform, ...] | None) -> tuple[ChartSource, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise check.fail("spec.charts", "expected a list of {name, repo, version, images} entries")
    result = []
    for i, item in enumerate(value):
        field = f"spec.charts[{i}]"
        item = check.mapping(item, field, _CHART_FIELDS)
        name = check.string(item.get("name"), f"{field}.name")
        if not _CHART_NAME.fullmatch(name):
            raise check.fail(f"{field}.name", f"{name!r} is not a chart name")
        dependencies = item.get("dependencies", True)
        if not isinstance(dependencies, bool):
            raise check.fail(f"{field}.dependencies", "expected true or false")
        result.append(
            ChartSource(
                name=name,
                repo=_chart_repo(check, item.get("repo"), f"{field}.repo"),
                version=_chart_version(check, item.get("version"), f"{field}.version"),
                images=_chart_images(check, item.get("images"), f"{field}.images"),
                dependencies=dependencies,
                platforms=platforms,
                origin=f"{check.path}: {field}",
                values=chart_values(item, field, check.path.parent, check.fail),
            )
        )
    return tuple(result)


def _git_url(check: _Checker, value: Any, field: str) -> str:
    text = check.string(value, field)
    try:
        parts = urlsplit(text)
        credentials = bool(parts.password or (parts.username and parts.scheme != "ssh"))
    except ValueError as exc:
        raise check.fail(field, "not a valid URL") from exc
    if credentials:
        raise check.fail(
            field, "the URL must not carry credentials", hint="use git credential helpers or MIRROR_GIT_* variables"
        )
    if parts.scheme == "ssh" or text.startswith("git@"):
        raise check.fail(
            field,
            f"{text!r}: the collector reads Git over https:// or http:// only, not ssh://",
            hint="give the repository's https:// URL (most Git hosts serve both)",
        )
    if parts.scheme not in ("https", "http") or not parts.hostname or parts.query or parts.fragment:
        raise check.fail(field, f"{text!r} must be an https:// or http:// repository URL")
    path = parts.path.strip("/")
    if not path or any(part in ("", ".", "..") for part in path.split("/")):
        raise check.fail(field, f"{text!r} has no repository path")
    if (problem := source_path_problem(text)) is not None:
        raise check.fail(
            field,
            f"{text!r}: {problem}",
            hint="an upstream that decodes it may serve another repository than the URL says; write the path plainly",
        )
    return text.rstrip("/")


def _git_ref(check: _Checker, value: Any, field: str) -> dict[str, str]:
    if value is None:
        return {}
    ref = check.mapping(value, field, _GIT_REF_FIELDS)
    if len(ref) != 1:
        raise check.fail(field, "give exactly one of branch, tag, semver, commit or name")
    [(kind, text)] = ref.items()
    text = check.string(text, f"{field}.{kind}")
    if kind == "commit" and not _COMMIT.fullmatch(text):
        raise check.fail(f"{field}.commit", "expected a full 40-character lowercase commit id")
    if kind == "semver":
        from mirror.semver import Constraint

        try:
            Constraint.parse(text)
        except UsageError as exc:
            raise check.fail(f"{field}.semver", exc.message) from exc
    return {kind: text}


def _git(check: _Checker, value: Any) -> tuple[GitSource, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise check.fail("spec.git", "expected a list of {name, url, ref} entries")
    result: list[GitSource] = []
    for i, item in enumerate(value):
        field = f"spec.git[{i}]"
        item = check.mapping(item, field, _GIT_FIELDS)
        name = check.string(item.get("name"), f"{field}.name")
        if not _GIT_NAME.fullmatch(name):
            raise check.fail(f"{field}.name", f"{name!r} must be lowercase letters, digits, '.', '_' or '-'")
        if any(g.name == name for g in result):
            raise check.fail(f"{field}.name", f"{name!r} is used twice")
        url = _git_url(check, item.get("url"), f"{field}.url")
        result.append(GitSource(name, url, _git_ref(check, item.get("ref"), f"{field}.ref"), f"{check.path}: {field}"))
    return tuple(result)


def _flux(check: _Checker, value: Any, git: tuple[GitSource, ...]) -> tuple[FluxEntry, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise check.fail("spec.flux", "expected a list of {git, path} entries")
    result = []
    for i, item in enumerate(value):
        field = f"spec.flux[{i}]"
        item = check.mapping(item, field, _FLUX_FIELDS)
        path = check.string(item.get("path", "."), f"{field}.path")
        if path.startswith("/") or ".." in path.split("/"):
            raise check.fail(f"{field}.path", "expected a relative path that stays inside its source")
        name = item.get("git")
        if name is None:
            if item.get("gitRepository") is not None:
                raise check.fail(f"{field}.gitRepository", "only for a path inside a git source")
            directory = check.path.parent / path
            if not directory.is_dir():
                raise check.fail(f"{field}.path", f"{directory} is not a directory")
            result.append(FluxEntry(None, path, f"{check.path}: {field}", directory))
            continue
        if not any(g.name == check.string(name, f"{field}.git") for g in git):
            raise check.fail(f"{field}.git", f"no git source named {name!r} in spec.git")
        known_as = None
        if item.get("gitRepository") is not None:
            text = check.string(item["gitRepository"], f"{field}.gitRepository")
            namespace, _, object_name = text.rpartition("/")
            if not (_OBJECT_NAME.fullmatch(namespace or "") and _OBJECT_NAME.fullmatch(object_name)):
                raise check.fail(f"{field}.gitRepository", "expected NAMESPACE/NAME, e.g. flux-system/flux-system")
            known_as = (namespace, object_name)
        result.append(FluxEntry(name, path, f"{check.path}: {field}", git_repository=known_as))
    return tuple(result)


def _allowed_hosts(check: _Checker, value: Any) -> tuple[HostPattern, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise check.fail("spec.allowedHosts", "expected a list of host[:port] entries (globs allowed: *.example.com)")
    result = []
    for i, item in enumerate(value):
        field = f"spec.allowedHosts[{i}]"
        try:
            result.append(parse_host_pattern(check.string(item, field), field))
        except ManifestError:
            raise
        except UsageError as exc:
            raise check.fail(field, exc.message.removeprefix(f"{field}: "), hint=exc.hint) from exc
    return tuple(result)


def _rewrite_prefix(check: _Checker, value: Any, field: str, schemes: tuple[str, ...]) -> str:
    text = check.string(value, field)
    try:
        parts = urlsplit(text)
        hostname = parts.hostname
    except ValueError as exc:  # the message does not echo the text: it may carry a password
        raise check.fail(field, "not a valid URL") from exc
    # Checked first: every later message echoes the text.
    if parts.password or (parts.username and parts.scheme != "ssh"):
        raise check.fail(field, "the URL must not carry credentials", hint="credentials come from the environment")
    if parts.scheme not in schemes or not hostname or "://" not in text:
        names = [s + "://" for s in schemes]
        raise check.fail(field, f"{text!r} must be an {', '.join(names[:-1])} or {names[-1]} URL prefix")
    if parts.query or parts.fragment or not text.endswith("/"):
        raise check.fail(
            field, f"{text!r} must end with / and have no query or fragment", hint="a prefix covers whole path segments"
        )
    return text


def _rewrites(check: _Checker, value: Any) -> tuple[UrlRewrite, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise check.fail("spec.rewrite", "expected a list of {from: PREFIX, to: PREFIX} rules")
    result = []
    for i, item in enumerate(value):
        field = f"spec.rewrite[{i}]"
        rule = check.mapping(item, field, _REWRITE_FIELDS)
        source = _rewrite_prefix(check, rule.get("from"), f"{field}.from", ("https", "http", "ssh"))
        target = _rewrite_prefix(check, rule.get("to"), f"{field}.to", ("https", "http"))
        if source.startswith("ssh://") and urlsplit(source).path != urlsplit(target).path:
            # The GitRepository keeps its ssh:// URL, and lands on the internal Git server by that URL's path; the
            # source this rule makes must land at the same place.
            raise check.fail(
                f"{field}.to",
                f"{target!r} must have the same path as {source!r}: an ssh:// rule changes scheme, user and host only",
                hint="to fetch through a mirror, add a second rule from the https:// prefix to the mirror",
            )
        result.append(UrlRewrite(source, target, f"{check.path}: {field}"))
    return tuple(result)


def _attached(
    check: _Checker, spec: Mapping[str, Any], images: tuple[ImageSource, ...], rules: tuple[VerifyRule, ...]
) -> bool:
    """spec.attached: whether collect looks for what upstream attached to the images. Off, no signature can be
    found, so a verify rule could only fail the collect: refused before any network work."""
    attached = spec.get("attached", True)
    if not isinstance(attached, bool):
        raise check.fail("spec.attached", f"expected true or false, got {attached!r}")
    if attached:
        return True
    ruled = ["spec.verify"] if rules else []
    ruled += [i.origin.removeprefix(f"{check.path}: ").removesuffix(".ref") + ".verify" for i in images if i.verify]
    if ruled:
        raise check.fail(
            "spec.attached",
            f"false, yet {ruled[0]} requires upstream signatures, which are found only by looking for what is "
            "attached to the images",
            hint="remove the verify rules, or leave attached at true",
        )
    return False


def _acknowledge(check: _Checker, value: Any) -> tuple[Acknowledgement, ...]:
    """spec.acknowledge: warnings (by code, and glob on their text) counted, not repeated; each with a reason."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise check.fail("spec.acknowledge", "expected a list of {code, match, reason} entries")
    result = []
    for i, item in enumerate(value):
        field = f"spec.acknowledge[{i}]"
        item = check.mapping(item, field, _ACKNOWLEDGE_FIELDS)
        code = item.get("code")
        if code is not None and check.string(code, f"{field}.code") not in ACKNOWLEDGEABLE:
            raise check.fail(
                f"{field}.code",
                f"{code!r} is not the code of a warning collect gives",
                hint=f"the codes (docs/collector.md, Acknowledged warnings): {', '.join(sorted(ACKNOWLEDGEABLE))}",
            )
        match = check.string(item["match"], f"{field}.match") if item.get("match") is not None else None
        if code is None and match is None:
            raise check.fail(field, "give a code, a match (a glob on the warning's text), or both")
        reason = check.string(item.get("reason"), f"{field}.reason")
        result.append(Acknowledgement(code, match, reason, f"{check.path}: {field}"))
    return tuple(result)


def _load_document(check: _Checker, doc: Any) -> MirrorSet:
    doc = check.mapping(doc, "", _TOP_FIELDS)
    if doc.get("apiVersion") != API_VERSION:
        raise check.fail("apiVersion", f"expected {API_VERSION!r}, got {doc.get('apiVersion')!r}")
    if doc.get("kind") != KIND:
        raise check.fail("kind", f"expected {KIND!r}, got {doc.get('kind')!r}")
    metadata = check.mapping(doc.get("metadata"), "metadata", _METADATA_FIELDS)
    name = check.string(metadata.get("name"), "metadata.name")
    spec = check.mapping(doc.get("spec"), "spec", _SPEC_FIELDS)
    platforms = check.platforms(spec.get("platforms"), "spec.platforms")
    trusted_root = trusted_root_file(spec.get("trustedRoot"), check.path, "spec.trustedRoot")
    images = _images(check, spec.get("images"), platforms, trusted_root)
    verify = _verify_rules(check, spec.get("verify"), "spec.verify", trusted_root, with_match=True)
    return MirrorSet(
        name=name,
        path=str(check.path),
        platforms=platforms,
        registries=_registries(check, spec.get("registries")),
        images=images,
        charts=_charts(check, spec.get("charts"), platforms),
        git=(git := _git(check, spec.get("git"))),
        flux=_flux(check, spec.get("flux"), git),
        allowed_hosts=_allowed_hosts(check, spec.get("allowedHosts")),
        rewrites=_rewrites(check, spec.get("rewrite")),
        verify=verify,
        trusted_root=trusted_root,
        attached=_attached(check, spec, images, verify),
        acknowledge=_acknowledge(check, spec.get("acknowledge")),
        files=parse_files(spec.get("files"), check.path, check.fail),
    )


def load_mirrorset_file(path: Path) -> list[MirrorSet]:
    check = _Checker(path)
    require_regular_file(path, "MirrorSet")
    try:
        documents = load_yaml_documents(path)
    except UsageError as exc:
        raise check.fail("", exc.message.removeprefix(f"{path}: "), hint=exc.hint) from exc
    if not documents:
        raise check.fail("", "no MirrorSet document in the file")
    return [_load_document(check, doc) for doc in documents]


def load_mirrorsets(paths: Iterable[str | Path]) -> list[MirrorSet]:
    """Load every MirrorSet, refusing registry settings and images that two files define differently."""
    sets: list[MirrorSet] = []
    for path in paths:
        sets.extend(load_mirrorset_file(Path(path)))
    if not sets:
        raise UsageError("no manifest given", hint="pass one or more MirrorSet files")
    check_one_name((m.path, f) for m in sets for f in m.files)
    registries: dict[str, tuple[RegistrySettings, str]] = {}
    images: dict[str, ImageSource] = {}
    charts: dict[tuple[str, str, str | None], ChartSource] = {}
    for mirrorset in sets:
        if mirrorset.attached != sets[0].attached:
            # Discovery is one decision for the whole collect: the rules of every MirrorSet apply to every image.
            raise ManifestError(
                mirrorset.path,
                "spec.attached",
                f"{str(mirrorset.attached).lower()} here, {str(sets[0].attached).lower()} in {sets[0].path}",
                hint="MirrorSets collected together look for attached manifests or do not: give them the same value",
            )
        for host, settings in mirrorset.registries.items():
            earlier = registries.setdefault(host, (settings, mirrorset.path))
            if earlier[0] != settings:
                raise ManifestError(
                    mirrorset.path, f"spec.registries[{host!r}]", f"differs from the settings in {earlier[1]}"
                )
        for chart in mirrorset.charts:
            # Discovery renders each chart once: two entries for it must not ask for two renderings.
            earlier_chart = charts.setdefault((chart.repo, chart.name, chart.version), chart)
            if earlier_chart.values != chart.values:
                raise ManifestError(
                    mirrorset.path,
                    chart.origin.removeprefix(f"{mirrorset.path}: "),
                    f"chart {chart.name} is also listed at {earlier_chart.origin} with other values, valuesFiles, "
                    "kubeVersion or apiVersions",
                    hint="list the chart once; images another configuration uses can be added with images.include",
                )
        for image in mirrorset.images:
            earlier_image = images.setdefault(str(image.reference), image)
            if earlier_image.platforms != image.platforms:
                raise ManifestError(
                    mirrorset.path,
                    image.origin.removeprefix(f"{mirrorset.path}: "),
                    f"{image.reference} is also listed at {earlier_image.origin} with other platforms",
                    hint="list each image once, or give both entries the same platforms",
                )
            if earlier_image.verify != image.verify:
                raise ManifestError(
                    mirrorset.path,
                    image.origin.removeprefix(f"{mirrorset.path}: "),
                    f"{image.reference} is also listed at {earlier_image.origin} with other verify rules",
                    hint="list each image once, or give both entries the same verify rules",
                )
    return sets
