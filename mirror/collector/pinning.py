"""`collect --lock`: the MirrorSets pinned to what a lock says, and every disagreement between them listed.

Before any request, what the MirrorSets list is matched with the lock (`apply_lock`): each listed image and each
tag a selector chose (in the lock) is fetched by its locked digest, each listed chart at its locked version, and
each Git source must resolve to its locked commit. What is found while collecting (chart dependencies, images
charts and Flux fleets use) is matched once found, before any image is resolved or blob downloaded (`Pins`).
See docs/collector.md ("Collecting a reviewed lock").
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from mirror.collector.lockfile import Lock, Locked
from mirror.collector.tagselection import selected_sources
from mirror.errors import Problem, TransferError, UsageError, cap_problems
from mirror.limits import DEFAULT_LIMITS, Limits
from mirror.manifest import MirrorSet
from mirror.manifest.model import ChartSource, FileSource, GitSource, ImageSource
from mirror.manifest.tagselect import TagSelector, select_tags

if TYPE_CHECKING:
    from mirror.collector.charts import CollectedChart
    from mirror.collector.git import CollectedGit
    from mirror.collector.images import ResolvedImage

LOCK_MISSING = "LOCK_MISSING"  # the MirrorSets ask for it (or collecting found it), the lock does not have it
LOCK_UNEXPECTED = "LOCK_UNEXPECTED"  # the lock has it, the MirrorSets do not ask for it
LOCK_MISMATCH = "LOCK_MISMATCH"  # the lock's entry contradicts the MirrorSets, or upstream no longer matches it
LOCK_DIGEST_CHANGED = "LOCK_DIGEST_CHANGED"  # upstream serves other bytes under the locked version


class LockMismatchError(UsageError):
    """The lock and the MirrorSets (or what collecting them finds) disagree; `problems` lists every difference."""

    def __init__(self, problems: Iterable[Problem], stage: str) -> None:
        listed = cap_problems(problems)
        super().__init__(
            f"the lock does not match the MirrorSets; {stage}",
            problems=listed,
            hint="resolve again (mirror resolve --json), review the new lock, and collect with it",
        )


class LockedContentChangedError(TransferError):
    """Upstream serves other bytes under a name the lock fixed (a chart version re-published)."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        super().__init__(
            "upstream serves other content than the lock fixed; no image blob was downloaded",
            problems=cap_problems(problems),
            hint="find out why upstream changed it; resolve again and review the new lock to accept it",
        )


def _selector_key(repository: str, selector: TagSelector) -> tuple[str, str]:
    return repository, json.dumps(selector.to_json(), sort_keys=True)


def _chart_key(repo: str, chart: str) -> tuple[str, str]:
    return repo, chart


def _fits(locked_version: str, wanted: str | None) -> bool:
    if wanted is None:
        return True
    from mirror.semver import Constraint, Version, is_version  # charts only: a collect of images never needs it

    if is_version(wanted):
        return locked_version == wanted

    try:
        return Constraint.parse(wanted).allows(Version.parse(locked_version))
    except ValueError:
        return False


@dataclass
class Pins:
    """What the lock fixes beyond the listed sources, checked as collecting finds it."""

    lock: Lock
    charts: dict[tuple[str, str, str], Locked] = field(default_factory=dict)  # (repo, chart, version)
    git: dict[str, Locked] = field(default_factory=dict)  # by source name
    found_images: dict[str, Locked] = field(default_factory=dict)  # images charts and fleets use, by source

    def check_git(self, collected: Sequence[CollectedGit]) -> None:
        problems = [
            Problem(
                LOCK_MISMATCH,
                f"{g.source.origin}: {g.source.url} {g.resolved.name} is at {g.resolved.commit} upstream, the lock "
                f"fixes {self.git[g.source.name].fields['commit']} ({self.git[g.source.name].where})",
            )
            for g in collected
            if g.source.name in self.git and g.resolved.commit != self.git[g.source.name].fields["commit"]
        ]
        if problems:
            raise LockMismatchError(problems, "nothing was downloaded but Git history")

    def check_charts(self, collected: Sequence[CollectedChart]) -> None:
        problems, changed = [], []
        seen = set()
        for chart in collected:
            key = (chart.resolved.source.repo, chart.resolved.name, chart.resolved.version)
            seen.add(key)
            locked = self.charts.get(key)
            where = chart.resolved.source.origin
            if locked is None:
                problems.append(Problem(LOCK_MISSING, f"{where}: chart {chart.resolved.display} is not in the lock"))
            elif locked.digest != chart.document.digest:
                changed.append(
                    Problem(
                        LOCK_DIGEST_CHANGED,
                        f"{where}: chart {chart.resolved.display} is {chart.document.digest} upstream, the lock "
                        f"fixes {locked.digest} ({locked.where})",
                    )
                )
        problems += [
            Problem(LOCK_UNEXPECTED, f"{locked.where}: chart {locked.source} was not found needed by the MirrorSets")
            for key, locked in self.charts.items()
            if key not in seen
        ]
        if problems:
            raise LockMismatchError(problems, "no image blob was downloaded")
        if changed:
            raise LockedContentChangedError(changed)

    def pin_found_images(self, sources: Sequence[ImageSource]) -> list[ImageSource]:
        """Images charts and fleets use, each fetched by its locked digest; any the lock lacks, or has and
        nothing uses, refused."""
        problems = []
        pinned = []
        found = set()
        for image in sources:
            if image.locked_digest is not None or image.via == "listed":
                pinned.append(image)
                continue
            locked = self.found_images.get(str(image.reference))
            if locked is None and image.optional:
                continue  # a tag a chart only guessed, which upstream did not have when the lock was made
            if locked is None:
                how = "; ".join(image.found_by) or image.origin
                problems.append(Problem(LOCK_MISSING, f"image {image.reference} ({how}) is not in the lock"))
                continue
            found.add(locked.source)
            pinned.append(replace(image, locked_digest=locked.source_digest or locked.digest))
        problems += [
            Problem(
                LOCK_UNEXPECTED, f"{locked.where}: image {locked.source} ({locked.via}) is used by nothing collected"
            )
            for source, locked in self.found_images.items()
            if source not in found
        ]
        if problems:
            raise LockMismatchError(problems, "no image was resolved")
        return pinned

    def check_images(self, images: Sequence[ResolvedImage]) -> None:
        """The digest each image lands with (a narrowed index has its own) is the lock's."""
        by_source = {a.source: a for a in self.lock.of_kind("image")}
        problems = [
            Problem(
                LOCK_MISMATCH,
                f"{i.origin}: {i.source} lands as {i.digest}, the lock fixes {by_source[str(i.source)].digest} "
                "(another platform filter?)",
            )
            for i in images
            if str(i.source) in by_source and by_source[str(i.source)].digest != i.digest
        ]
        if problems:
            raise LockMismatchError(problems, "no image blob was downloaded")


def _pin_images(
    mirrorset: MirrorSet, lock: Lock, used: set[str], problems: list[Problem], limits: Limits
) -> tuple[ImageSource, ...]:
    listed = {a.source: a for a in lock.of_kind("image") if a.via == "listed"}
    selected: dict[tuple[str, str], list[Locked]] = {}
    for locked in lock.of_kind("image"):
        assert locked.reference is not None
        for selector in locked.selected_by:
            selected.setdefault(_selector_key(locked.reference.name, selector), []).append(locked)
    images: list[ImageSource] = []
    for image in mirrorset.images:
        if image.tags is None:
            entry = listed.get(str(image.reference))
            if entry is None:
                problems.append(Problem(LOCK_MISSING, f"{image.origin}: image {image.reference} is not in the lock"))
                continue
            used.add(entry.where)
            images.append(replace(image, locked_digest=entry.source_digest or entry.digest))
            continue
        chosen = selected.get(_selector_key(image.reference.name, image.tags), [])
        if not chosen:
            problems.append(
                Problem(
                    LOCK_MISSING,
                    f"{image.origin}: the lock has no tag of {image.reference.name} chosen by tags "
                    f"{json.dumps(image.tags.to_json())}",
                )
            )
            continue
        if (most := _most_chosen(image.tags, limits)) is not None and len(chosen) > most[0]:
            # The selector could not have chosen them all: a lock made with another selector, or edited.
            problems.append(
                Problem(
                    LOCK_MISMATCH,
                    f"{image.origin}: the lock has {len(chosen)} tags of {image.reference.name} chosen by tags "
                    f"{json.dumps(image.tags.to_json())}, which keeps at most {most[0]} ({most[1]})",
                )
            )
            used.update(locked.where for locked in chosen)
            continue
        unranked = replace(image.tags, latest=None)  # one tag at a time: whether it passes the filters
        for locked in chosen:
            assert locked.reference is not None and locked.reference.tag is not None
            used.add(locked.where)
            if not select_tags([locked.reference.tag], unranked).tags:
                problems.append(
                    Problem(
                        LOCK_MISMATCH,
                        f"{locked.where}: tag {locked.reference.tag} does not pass the selector of {image.origin}",
                    )
                )
                continue
            [source] = selected_sources(image, [locked.reference.tag])
            images.append(replace(source, locked_digest=locked.source_digest or locked.digest))
    return tuple(images)


def _most_chosen(selector: TagSelector, limits: Limits) -> tuple[int, str] | None:
    """How many tags a selector can choose, and why: its `latest`, or the limit a collect holds it to."""
    if selector.latest is not None:
        return selector.latest, f"latest: {selector.latest}"
    return limits.max_selected_tags, "limit max_selected_tags"


def _pin_charts(
    mirrorset: MirrorSet, lock: Lock, used: set[str], pins: Pins, problems: list[Problem]
) -> tuple[ChartSource, ...]:
    listed = {_chart_key(a.fields["repo"], a.fields["chart"]): a for a in lock.of_kind("chart") if a.via == "listed"}
    charts = []
    for chart in mirrorset.charts:
        locked = listed.get(_chart_key(chart.repo, chart.name))
        if locked is None:
            problems.append(
                Problem(LOCK_MISSING, f"{chart.origin}: chart {chart.name} of {chart.repo} is not in the lock")
            )
            continue
        used.add(locked.where)
        version = locked.fields["version"]
        if not _fits(version, chart.version):
            problems.append(
                Problem(
                    LOCK_MISMATCH,
                    f"{locked.where}: chart {chart.name} {version} is not what {chart.origin} asks for "
                    f"({chart.version})",
                )
            )
            continue
        charts.append(replace(chart, version=version))
    return tuple(charts)


def _pin_git(
    mirrorset: MirrorSet, lock: Lock, used: set[str], pins: Pins, problems: list[Problem]
) -> tuple[GitSource, ...]:
    by_name = {a.fields["name"]: a for a in lock.of_kind("git")}
    pinned = []
    for source in mirrorset.git:
        locked = by_name.get(source.name)
        if locked is None or locked.source != source.url:
            problems.append(
                Problem(LOCK_MISSING, f"{source.origin}: Git source {source.name} ({source.url}) is not in the lock")
            )
            continue
        used.add(locked.where)
        pins.git[source.name] = locked
        pinned.append(replace(source, locked_commit=locked.fields["commit"]))
    return tuple(pinned)


def _pin_files(mirrorset: MirrorSet, lock: Lock, used: set[str], problems: list[Problem]) -> tuple[FileSource, ...]:
    """Each file at its locked sha256: a trust-on-first-use entry then requires exactly the bytes resolve saw."""
    locked_files = {(a.source, a.fields["name"]): a for a in lock.of_kind("file")}
    pinned = []
    for source in mirrorset.files:
        locked = locked_files.get((source.source, source.name))
        if locked is None:
            problems.append(
                Problem(LOCK_MISSING, f"{source.origin}: file {source.name} ({source.source}) is not in the lock")
            )
            continue
        used.add(locked.where)
        sha256 = locked.digest.removeprefix("sha256:")
        if source.sha256 is not None and source.sha256 != sha256:
            problems.append(
                Problem(
                    LOCK_MISMATCH,
                    f"{locked.where}: file {source.name} is {locked.digest} in the lock, {source.origin} pins "
                    f"sha256:{source.sha256}",
                )
            )
            continue
        locked_in = f"{Path(lock.path).name} ({locked.where})" if source.sha256 is None else None
        pinned.append(replace(source, sha256=sha256, locked_in=locked_in))
    return tuple(pinned)


def apply_lock(sets: Sequence[MirrorSet], lock: Lock, limits: Limits = DEFAULT_LIMITS) -> tuple[list[MirrorSet], Pins]:
    """The MirrorSets pinned to the lock, and the pins for what collecting finds; LockMismatchError (exit 2)
    listing every difference, before any request."""
    pins = Pins(lock)
    problems: list[Problem] = []
    used: set[str] = set()
    pinned = []
    for mirrorset in sets:
        images = _pin_images(mirrorset, lock, used, problems, limits)
        charts = _pin_charts(mirrorset, lock, used, pins, problems)
        git = _pin_git(mirrorset, lock, used, pins, problems)
        files = _pin_files(mirrorset, lock, used, problems)
        pinned.append(replace(mirrorset, images=images, charts=charts, git=git, files=files))
    for locked in lock.artifacts:
        if locked.where in used or locked.kind == "flux":  # a fleet is read from its Git source's locked commit
            continue
        if locked.via == "listed":
            problems.append(
                Problem(
                    LOCK_UNEXPECTED, f"{locked.where}: {locked.kind} {locked.source} is not asked for by the MirrorSets"
                )
            )
        elif locked.kind == "image":
            pins.found_images[locked.source] = locked
        elif locked.kind == "chart":
            pins.charts[(locked.fields["repo"], locked.fields["chart"], locked.fields["version"])] = locked
    for locked in lock.of_kind("chart"):
        if locked.where in used:
            pins.charts[(locked.fields["repo"], locked.fields["chart"], locked.fields["version"])] = locked
    if problems:
        raise LockMismatchError(problems, "nothing was contacted")
    return pinned, pins
