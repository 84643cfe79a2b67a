"""Validation of Kubernetes and Flux objects against published schemas, for tests.

The schemas come from the npm packages pinned in tests/schemas/package-lock.json (Flux's CRD schemas as
@kubernetes-models/flux-cd publishes them, and Kubernetes' built-in kinds), which scripts/setup installs, and
from the CustomResourceDefinitions copied into tests/schemas/crds/ (OpenShift's mirror sets; their origin is
named in its README.md). tests/schemas/validate.mjs runs them under Node.js; this module hands it the objects
and the CRDs' schemas, and reads the verdicts.
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

import yaml

SCHEMAS_DIR = Path(__file__).resolve().parents[1] / "schemas"
CRDS_DIR = SCHEMAS_DIR / "crds"


class SchemasMissing(RuntimeError):
    """Node.js or the pinned schema packages are not installed: run scripts/setup."""


def schema_errors(objects: Iterable[Mapping[str, Any]]) -> dict[str, list[str]]:
    """`KIND/NAME` → its schema errors, for every object given (an empty list when it is valid)."""
    node = shutil.which("node")
    modules = SCHEMAS_DIR / "node_modules"
    if node is None or not all((modules / name).is_dir() for name in ("@kubernetes-models/flux-cd", "ajv")):
        raise SchemasMissing(f"node and {SCHEMAS_DIR}/node_modules are needed: run scripts/setup")
    done = subprocess.run(
        [node, str(SCHEMAS_DIR / "validate.mjs")],
        input=json.dumps({"objects": list(objects), "crds": crd_schemas()}),
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


def crd_schemas() -> list[dict[str, Any]]:
    """`{apiVersion, kind, schema}` for every served version of every CRD in tests/schemas/crds/."""
    schemas = []
    for path in sorted(CRDS_DIR.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        spec = crd["spec"]
        for version in spec["versions"]:
            if version.get("served"):
                schemas.append(
                    {
                        "apiVersion": f"{spec['group']}/{version['name']}",
                        "kind": spec["names"]["kind"],
                        "schema": version["schema"]["openAPIV3Schema"],
                    }
                )
    return schemas


def invalid(objects: Iterable[Mapping[str, Any]]) -> dict[str, list[str]]:
    """Only the objects with schema errors, with their errors."""
    return {name: errors for name, errors in schema_errors(objects).items() if errors}
