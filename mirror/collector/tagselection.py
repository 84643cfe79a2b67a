"""Image entries with `tags:` turned into one ordinary image source per tag their selector chooses.

The repository's tag list is read page by page (RegistryClient.iter_tags: bounded in pages and tags); the
selection is mirror.manifest.tagselect's. A selector that chooses nothing is an unresolved reference (exit 2),
listed with every other one. See docs/mirrorset.md ("Tag selectors").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from mirror.collector.unresolved import Unresolved
from mirror.errors import RegistryHTTPError, SourceNotFoundError, UsageError
from mirror.limits import Limits
from mirror.manifest import MirrorSet
from mirror.manifest.model import ImageSource
from mirror.manifest.tagselect import select_tags
from mirror.parallel import run_parallel
from mirror.registry.pool import ClientPool
from mirror.terminal import escape


def selected_sources(image: ImageSource, tags: Sequence[str]) -> list[ImageSource]:
    """The ordinary sources of `tags`, each remembering the selector that chose it."""
    assert image.tags is not None
    return [
        replace(image, reference=replace(image.reference, tag=tag, digest=None), tags=None, selected_by=(image.tags,))
        for tag in tags
    ]


def choose_tags(pool: ClientPool, image: ImageSource, limits: Limits) -> list[ImageSource]:
    assert image.tags is not None
    reference = image.reference
    client = pool.for_host(reference.registry)
    try:
        selection = select_tags(client.iter_tags(reference.repository), image.tags, limits)
    except RegistryHTTPError as exc:
        if exc.status == 404:
            raise SourceNotFoundError(f"{image.origin}: {reference.name} was not found upstream") from exc
        raise
    except UsageError as exc:  # more tags chosen than max_selected_tags
        raise UsageError(f"{image.origin}: {reference.name}: {exc.message}", hint=exc.hint) from exc
    if not selection.tags:
        raise SourceNotFoundError(
            f"{image.origin}: no tag of {reference.name} matches the selector ({image.tags.describe()}); "
            f"{escape(selection.describe_seen())}",
            hint="tags are read as Flux reads them: MAJOR.MINOR.PATCH with an optional v prefix",
        )
    return selected_sources(image, selection.tags)


def expand_tag_selectors(
    sets: Sequence[MirrorSet], pool: ClientPool, *, limits: Limits, jobs: int, unresolved: Unresolved
) -> list[MirrorSet]:
    """The MirrorSets with every selector entry replaced, in place, by the sources of the tags it chooses."""
    selectors = [image for mirrorset in sets for image in mirrorset.images if image.tags is not None]
    if not selectors:
        return list(sets)
    chosen = dict(
        zip(
            map(id, selectors),
            run_parallel(selectors, unresolved.attempt(lambda i: choose_tags(pool, i, limits)), jobs),
            strict=True,
        )
    )
    expanded = []
    for mirrorset in sets:
        images: list[ImageSource] = []
        for image in mirrorset.images:
            images += (chosen[id(image)] or []) if image.tags is not None else [image]
        expanded.append(replace(mirrorset, images=tuple(images)))
    return expanded
