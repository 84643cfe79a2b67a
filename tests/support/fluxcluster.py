"""Play a Flux cluster from what `mirror import --flux-out DIR` wrote, without a cluster.

Start from `DIR/_bootstrap` (`kubectl kustomize`), then reconcile every Kustomization the way kustomize-controller
does: clone its GitRepository from the internal Git server at the branch (or tag) it follows, build its path with
`kubectl kustomize` (generating the kustomization.yaml Flux generates for a path without one), substitute
`${VAR}` from `postBuild.substitute` and the given variables, apply: later objects replace earlier ones of the same
kind and name. Used by tests/integration/test_flux_relocation.py and scripts/demo:

    python -m tests.support.fluxcluster DIR --inside GIT_BASE/ --inside oci://REGISTRY/PREFIX/ [--var K=V]

exits 1 naming every GitRepository, HelmRepository or OCIRepository that points outside.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

import yaml

from tests.support.gitrepos import git_env, run_git
from tests.support.services import Services

SOURCE_KINDS = ("GitRepository", "HelmRepository", "OCIRepository")
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::=([^}]*))?\}")
_KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")


def kustomize(directory: Path) -> list[dict]:
    """`kubectl kustomize`, with the kustomization.yaml Flux generates for a path without one."""
    if not any((directory / name).exists() for name in _KUSTOMIZATION_FILES):
        files = sorted(
            p.relative_to(directory).as_posix()
            for p in directory.rglob("*")
            if p.suffix in (".yaml", ".yml") and ".git" not in p.parts and p.is_file()
        )
        (directory / "kustomization.yaml").write_text(yaml.safe_dump({"resources": files}))
    built = subprocess.run(
        ["kubectl", "kustomize", str(directory)], capture_output=True, text=True, timeout=120, check=False
    )
    if built.returncode != 0:
        raise RuntimeError(f"kubectl kustomize {directory}: {built.stderr}")
    return [d for d in yaml.safe_load_all(built.stdout) if isinstance(d, dict)]


def substituted(documents: list[dict], variables: Mapping[str, str]) -> list[dict]:
    text = yaml.safe_dump_all(documents)
    text = _VARIABLE.sub(lambda m: variables.get(m.group(1), m.group(2) or ""), text)
    return [d for d in yaml.safe_load_all(text) if isinstance(d, dict)]


def _key(obj: dict) -> tuple[str, str, str]:
    metadata = obj.get("metadata") or {}
    return obj["kind"], metadata.get("namespace") or "default", metadata["name"]


def play(out: Path, services: Services, scratch: Path, variables: Mapping[str, str] | None = None) -> list[dict]:
    """Every object the cluster ends with: the bootstrap, then what each Kustomization builds from its source."""
    applied = {_key(d): d for d in kustomize(out / "_bootstrap")}
    pending = [d for d in applied.values() if d["kind"] == "Kustomization"]
    done: set[tuple[str, str, str]] = set()
    while pending:
        kustomization = pending.pop(0)
        if _key(kustomization) in done:
            continue
        done.add(_key(kustomization))
        spec = kustomization["spec"]
        ref = spec["sourceRef"]
        namespace = ref.get("namespace") or _key(kustomization)[1]
        source = applied[(ref["kind"], namespace, ref["name"])]["spec"]
        follows = source.get("ref") or {}
        clone = scratch / f"k{len(done)}"
        run_git(
            ["clone", "-q", "--branch", follows.get("branch") or follows["tag"], source["url"], clone],
            env=git_env(services, auth=True),
        )
        built = kustomize(clone / spec["path"])
        values = {**(variables or {}), **((spec.get("postBuild") or {}).get("substitute") or {})}
        for obj in substituted(built, values):
            applied[_key(obj)] = obj  # applied over what was there, as the cluster would
            if obj["kind"] == "Kustomization":
                pending.append(obj)
    return list(applied.values())


def outside(objects: list[dict], inside: tuple[str, ...]) -> list[str]:
    """Each source object whose URL is not under one of `inside`."""
    return [
        f"{obj['kind']} {_key(obj)[1]}/{_key(obj)[2]}: {obj['spec'].get('url')}"
        for obj in objects
        if obj["kind"] in SOURCE_KINDS and not str(obj["spec"].get("url")).startswith(inside)
    ]


def main(argv: list[str] | None = None) -> int:
    from tests.support.services import ensure_services

    parser = argparse.ArgumentParser(prog="python -m tests.support.fluxcluster", description=__doc__.split("\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--inside", action="append", required=True, help="a URL prefix inside; repeatable")
    parser.add_argument("--var", action="append", default=[], help="KEY=VALUE for postBuild; repeatable")
    args = parser.parse_args(argv)
    variables = dict(v.split("=", 1) for v in args.var)
    with tempfile.TemporaryDirectory() as scratch:
        objects = play(args.out, ensure_services(), Path(scratch), variables)
    for obj in objects:
        if obj["kind"] in SOURCE_KINDS:
            print(f"  {obj['kind']} {_key(obj)[1]}/{_key(obj)[2]} -> {obj['spec'].get('url')}")
    problems = outside(objects, tuple(args.inside))
    for problem in problems:
        print(f"fluxcluster: points outside: {problem}", file=sys.stderr)
    kustomizations = sum(1 for o in objects if o["kind"] == "Kustomization")
    print(f"  {len(objects)} object(s) from {kustomizations} Kustomization(s); {len(problems)} outside")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
