"""Where every artifact of a verified bundle will land on the internal side, checked as a whole before anything
is written. Pure. See docs/importer.md ("Landing rules").
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mirror.bundle.inventory import ArtifactRecord
from mirror.errors import Problem, ReferenceError_, UsageError, VerificationError
from mirror.oci.fileartifact import is_file_name, landing_repository
from mirror.oci.reference import is_repository_path, is_tag, parse_reference
from mirror.registry.endpoint import Endpoint, parse_endpoint_url
from mirror.supplychain.attached import ATTACHED
from mirror.terminal import escape
from mirror.urlpath import UnsafeUrlPath, join_under, url_path

if TYPE_CHECKING:  # the collector plans landings without verifying a bundle: no verify machinery on its path
    from mirror.bundle.verify import VerifiedBundle, VerifiedImage

# --- Registry landing names -----------------------------------------------------------------------------------


def parse_target(url: str, ca_file: str | None) -> Endpoint:
    scheme, netloc, prefix = parse_endpoint_url(url, "--registry")
    return Endpoint(netloc, scheme, netloc, prefix, ca_file)


@dataclass(frozen=True)
class ImagePlan:
    image: VerifiedImage
    repository: str  # the source path; the client adds the target's prefix
    tag: str | None

    @property
    def source(self) -> str:
        return self.image.artifact.source


LANDING_NAME_INVALID = "LANDING_NAME_INVALID"


class _Unlandable(Exception):
    """Why an artifact has no valid landing name (a Problem message, without the artifact)."""


def _landing(artifact: ArtifactRecord, prefix: str = "") -> tuple[str, str | None, str]:
    """Target repository path (before the prefix), tag, and the source identity that owns that repository.

    Images and OCI charts keep their path without the source host. Files land at files/NAME (lowercased),
    tagged with their `tag` (latest unless given). Charts from HTTP repositories land at
    charts/NAME, tagged with the version (`+` written as `_`, as Helm does for OCI tags). The inventory is
    signed, but what it names becomes a registry URL path: the repository (after the prefix) and the tag are
    held to the distribution grammar here too, so a version like `1.0/../../x` cannot address another
    repository. Raises _Unlandable.
    """
    tag: str | None  # an image pinned by digest alone has none
    try:
        if artifact.kind == "file":
            name, tag = artifact.extra.get("name"), artifact.extra.get("tag")
            if not is_file_name(name) or not isinstance(tag, str):
                raise _Unlandable("file without a valid name and tag")
            repository, owner = landing_repository(str(name)), artifact.source
        elif artifact.kind == "chart" and artifact.source.startswith(("http://", "https://")):
            name, version, repo = (artifact.extra.get(k) for k in ("chart", "version", "repo"))
            if not (isinstance(name, str) and isinstance(version, str) and isinstance(repo, str)):
                raise _Unlandable("chart without name, version and repo")
            repository, tag, owner = f"charts/{name.lower()}", version.replace("+", "_"), f"{repo}/{name}"
        else:
            reference = parse_reference(artifact.source)
            repository, tag, owner = reference.repository, reference.tag, reference.name
            if artifact.kind == ATTACHED:
                tag = None  # pinned by its digest; a cosign tag it lands under is checked with its subject
    except ReferenceError_ as exc:
        raise _Unlandable(exc.message) from exc
    full = f"{prefix}/{repository}" if prefix else repository
    if not is_repository_path(full):
        raise _Unlandable(
            f"repository {full!r} is not lowercase components of [a-z0-9] joined by '.', '_', '__' or '-'"
        )
    if tag is not None and not is_tag(tag):
        raise _Unlandable(f"tag {tag!r} does not match [A-Za-z0-9_][A-Za-z0-9._-]{{0,127}}")
    return repository, tag, owner


def plan_landings(verified: VerifiedBundle, prefix: str = "") -> tuple[list[ImagePlan], list[Problem]]:
    """Each image, chart and attached manifest mapped to its target repository and tag, and a Problem for every
    artifact whose landing name the distribution grammar refuses. Pure: nothing is read from or written to the
    registry."""
    plans, problems = [], []
    for image in [*verified.images, *verified.attached]:
        try:
            repository, tag, _ = _landing(image.artifact, prefix)
        except _Unlandable as exc:
            message = f"{image.artifact.kind} {image.artifact.source}: {exc}"
            problems.append(Problem(LANDING_NAME_INVALID, escape(message)))  # inventory text: shown escaped
            continue
        plans.append(ImagePlan(image, repository, tag))
    return plans, problems


def plan_images(verified: VerifiedBundle, prefix: str = "") -> list[ImagePlan]:
    """Map each image, chart and attached manifest to its target repository. Raises VerificationError (exit 3)
    listing every invalid landing name, and refuses two sources that would land on one repository (exit 2)."""
    plans, problems = plan_landings(verified, prefix)
    if problems:
        raise VerificationError(
            f"{verified.reader.location}: {len(problems)} artifact(s) have no valid landing name",
            problems=problems,
            hint="the inventory names repositories or tags the registry grammar refuses; nothing was written",
        )
    clashes = landing_clashes(((plan.image.artifact, "") for plan in plans), prefix)
    if clashes:
        raise UsageError(
            "sources from different registries would land on the same repository: "
            + "; ".join(p.message for p in clashes),
            hint="import them into different registries or prefixes (--registry https://HOST/PREFIX)",
        )
    return plans


LANDING_CLASH = "LANDING_CLASH"


def landing_clashes(artifacts: Iterable[tuple[ArtifactRecord, str]], prefix: str = "") -> list[Problem]:
    """One LANDING_CLASH for every repository that sources from different registries would land on, naming
    them (and, where given, where each came from: `(artifact, origin)`). The one rule of import and collect;
    an artifact without a valid landing name is left to plan_landings."""
    owners: dict[str, dict[str, list[str]]] = defaultdict(dict)  # repository → owner → origins
    for artifact, origin in artifacts:
        try:
            repository, _, owner = _landing(artifact, prefix)
        except _Unlandable:
            continue
        origins = owners[repository].setdefault(owner, [])
        if origin and origin not in origins:
            origins.append(origin)
    return [
        Problem(LANDING_CLASH, escape(f"{repository} ← {_named(by_owner)}"))  # inventory or manifest text
        for repository, by_owner in sorted(owners.items())
        if len(by_owner) > 1
    ]


def _named(by_owner: dict[str, list[str]]) -> str:
    return ", ".join(
        f"{owner} ({'; '.join(origins)})" if origins else owner for owner, origins in sorted(by_owner.items())
    )


# --- Git landing URLs ----------------------------------------------------------------------------------------


OUTSIDE_BASE = "GIT_TARGET_OUTSIDE_BASE"
TARGET_CLASH = "GIT_TARGET_CLASH"


def parse_git_target(url: str) -> str:
    scheme, netloc, prefix = parse_endpoint_url(url, "--git")
    return f"{scheme}://{netloc}" + (f"/{prefix}" if prefix else "")


def git_target_url(base: str, source_url: str) -> str:
    """`https://SRC/PATH.git` lands at `BASE/PATH.git`, PATH read as a server reads it (decoded, dot segments
    resolved); raises VerificationError (GIT_TARGET_OUTSIDE_BASE) for a path that would not stay under BASE."""
    try:
        path = url_path(source_url)
        return join_under(base, path if path.endswith(".git") else path + ".git")
    except UnsafeUrlPath as exc:
        shown = escape(source_url)  # from the inventory: no control character reaches the terminal
        problem = Problem(OUTSIDE_BASE, f"{shown}: its path {exc.reason}; it would not land under {base}")
        raise VerificationError(
            f"{shown}: would not land under {base}", problems=[problem], hint="nothing was written"
        ) from exc


def git_landing_clashes(sources: Iterable[tuple[str, str]]) -> list[Problem]:
    """One GIT_TARGET_CLASH for every path under any Git base that sources from different hosts would land on
    (`(url, origin)` pairs): the clash plan_git_targets finds, before a base is known. Paths that would leave
    the base are left to it."""
    owners: dict[str, dict[str, list[str]]] = defaultdict(dict)  # landing path → source URL → origins
    for url, origin in sources:
        try:
            path = url_path(url)
        except UnsafeUrlPath:
            continue
        origins = owners[path if path.endswith(".git") else path + ".git"].setdefault(url, [])
        if origin and origin not in origins:
            origins.append(origin)
    return [
        Problem(TARGET_CLASH, escape(f"{path.lstrip('/')} ← {_named(by_url)}"))
        for path, by_url in sorted(owners.items())
        if len(by_url) > 1
    ]


def plan_git_targets(base: str, artifacts: list[ArtifactRecord]) -> tuple[dict[str, str], list[Problem]]:
    """Every git source's landing URL under BASE ({source: target}), and every problem: a source that would
    land outside BASE, two sources that would land on one repository. Pure: nothing is read or written."""
    targets: dict[str, str] = {}
    owners: dict[str, str] = {}
    problems: list[Problem] = []
    for artifact in artifacts:
        try:
            target = git_target_url(base, artifact.source)
        except VerificationError as exc:
            problems += exc.problems
            continue
        owner = owners.setdefault(target, artifact.source)
        if owner != artifact.source:
            problems.append(
                Problem(
                    TARGET_CLASH,
                    escape(f"{artifact.source} and {owner} would land on the same repository {target}"),
                )
            )
            continue
        targets[artifact.source] = target
    return targets, problems


def check_git_targets(base: str, artifacts: list[ArtifactRecord], location: str) -> dict[str, str]:
    """plan_git_targets, raising VerificationError (exit 3) listing every problem when a source would leave BASE
    (the signed inventory names something no honest collector would), UsageError for clashes alone."""
    targets, problems = plan_git_targets(base, artifacts)
    if any(p.code == OUTSIDE_BASE for p in problems):
        raise VerificationError(
            f"{location}: {len(problems)} git source(s) cannot land under {base}",
            problems=problems,
            hint="the inventory names sources whose paths leave the Git base; nothing was written",
        )
    if problems:  # only clashes: honest sources from two hosts, as for images a usage problem (exit 2)
        raise UsageError("; ".join(p.message for p in problems), hint="nothing was written")
    return targets


# --- Both, checked as a whole --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Landings:
    images: list[ImagePlan]
    git: dict[str, str] = field(default_factory=dict)  # source URL → landing URL under the Git base
    attached: list[ImagePlan] = field(default_factory=list)  # in their subjects' repositories


def plan_landing_names(verified: VerifiedBundle, registry_prefix: str, git_base: str | None) -> Landings:
    """Every landing name of the bundle, or VerificationError listing every invalid one."""
    _, problems = plan_landings(verified, registry_prefix)
    if git_base is not None:
        problems += [p for p in plan_git_targets(git_base, verified.git)[1] if p.code != TARGET_CLASH]
    if problems:
        raise VerificationError(
            f"{verified.reader.location}: {len(problems)} artifact(s) cannot land on the targets",
            problems=problems,
            hint="the inventory names repositories, tags or Git paths the targets must not receive; nothing was "
            "written",
        )
    plans = plan_images(verified, registry_prefix)
    git = check_git_targets(git_base, verified.git, str(verified.reader.location)) if git_base else {}
    images = [p for p in plans if p.image.artifact.kind != ATTACHED]
    return Landings(images, git, [p for p in plans if p.image.artifact.kind == ATTACHED])
