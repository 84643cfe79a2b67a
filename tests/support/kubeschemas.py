"""Validation of Kubernetes and Flux objects against published schemas, for tests.

The schemas come from the npm packages pinned in tests/schemas/package-lock.json (Flux's CRD schemas as
@kubernetes-models/flux-cd publishes them, and Kubernetes' built-in kinds), which scripts/setup installs.
tests/schemas/validate.mjs runs them under Node.js; this module hands it the objects and reads the verdicts.
They check types, required fields, enums and patterns; like the API server, they do not reject unknown
fields.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

SCHEMAS_DIR = Path(__file__).resolve().parents[1] / "schemas"


class SchemasMissing(RuntimeError):
    """Node.js or the pinned schema packages are not installed: run scripts/setup."""


def schema_errors(objects: Iterable[Mapping[str, Any]]) -> dict[str, list[str]]:
    """`KIND/NAME` → its schema errors, for every object given (an empty list when it is valid)."""
    node = shutil.which("node")
    if node is None or not (SCHEMAS_DIR / "node_modules" / "@kubernetes-models" / "flux-cd").is_dir():
        raise SchemasMissing(f"node and {SCHEMAS_DIR}/node_modules are needed: run scripts/setup")
    done = subprocess.run(
        [node, str(SCHEMAS_DIR / "validate.mjs")],
        input=json.dumps(list(objects)),
        capture_output=True,
        text=True,
        cwd=SCHEMAS_DIR,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"validate.mjs failed: {done.stderr.strip()}")
    verdicts: dict[str, list[str]] = {}
    for item in json.loads(done.stdout):
        verdicts[f"{item['apiVersion']} {item['kind']}/{item['name']}"] = item["errors"]
    return verdicts


def invalid(objects: Iterable[Mapping[str, Any]]) -> dict[str, list[str]]:
    """Only the objects with schema errors, with their errors."""
    return {name: errors for name, errors in schema_errors(objects).items() if errors}
