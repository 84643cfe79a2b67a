"""Two sources that would land on one repository of the internal side: refused at collect (exit 2) by the rule
the import applies (mirror.landing), once for what the MirrorSets list before any request, and once for
everything resolved before any blob is downloaded. See docs/collector.md ("One source per repository").
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from mirror.bundle.inventory import ArtifactRecord
from mirror.errors import UsageError
from mirror.landing import git_landing_clashes, landing_clashes
from mirror.manifest import MirrorSet


def listed_sources(sets: Sequence[MirrorSet]) -> tuple[list[tuple[ArtifactRecord, str]], list[tuple[str, str]]]:
    """What the MirrorSets list, as the landing rule reads it: images and charts, and Git URLs, with their
    origins. A chart's version is not known yet, and does not matter: a clash is between repositories."""
    artifacts: list[tuple[ArtifactRecord, str]] = []
    for mirrorset in sets:
        artifacts += [(ArtifactRecord("image", str(i.reference), "", "", 0), i.origin) for i in mirrorset.images]
        for chart in mirrorset.charts:
            if chart.is_oci:
                source = f"{chart.repo.removeprefix('oci://').rstrip('/')}/{chart.name}"
                artifacts.append((ArtifactRecord("chart", source, "", "", 0), chart.origin))
            else:
                extra = {"chart": chart.name, "version": "0", "repo": chart.repo}
                record = ArtifactRecord("chart", f"{chart.repo}/{chart.name}", "", "", 0, extra)
                artifacts.append((record, chart.origin))
    git = [(g.url, g.origin) for mirrorset in sets for g in mirrorset.git]
    return artifacts, git


def check_one_source_per_repository(
    artifacts: Iterable[tuple[ArtifactRecord, str]], git: Iterable[tuple[str, str]], *, stage: str
) -> None:
    """Raise UsageError listing every repository (and Git path) that sources from different hosts would land
    on; `stage` says what was done so far ("nothing was contacted", "nothing was downloaded")."""
    clashes = [*landing_clashes(artifacts), *git_landing_clashes(git)]
    if clashes:
        raise UsageError(
            f"{len(clashes)} repository(ies) would receive sources from different hosts, which the import refuses; "
            f"{stage}",
            problems=clashes,
            hint="the source host is dropped where a source lands (docs/importer.md, landing rules): collect such "
            "sources into separate bundles, imported under different registries or prefixes, or drop one",
        )
