"""A chart repository on a HostileServer: an index.yaml and the archives it lists, served from memory."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

import yaml

from tests.support.hostile import Answer, Request, Route, not_found


def chart_repository(archives: Mapping[str, bytes]) -> Route:
    """`archives`: {"name-version.tgz": bytes}; the index lists each by its Chart.yaml name and version."""
    from tests.support.charts import chart_metadata

    entries: dict[str, list[dict[str, object]]] = {}
    for filename, data in archives.items():
        meta = chart_metadata(data)
        entries.setdefault(str(meta["name"]), []).append(
            {
                "apiVersion": "v2",
                "name": meta["name"],
                "version": meta["version"],
                "urls": [filename],
                "digest": hashlib.sha256(data).hexdigest(),
            }
        )
    index = yaml.safe_dump({"apiVersion": "v1", "entries": entries}).encode()

    def route(request: Request) -> Answer:
        name = request.path.rsplit("/", 1)[-1]
        if name == "index.yaml":
            return Answer(200, {"Content-Type": "text/yaml"}, index)
        if name in archives:
            return Answer(200, {"Content-Type": "application/gzip"}, archives[name])
        return not_found(request)

    return route
