"""Play a Flux cluster from what `mirror import --flux-out DIR` wrote, without a cluster.

Start from `DIR/_bootstrap` (`kubectl kustomize`), then reconcile every Kustomization the way kustomize-controller
does: clone its GitRepository from the internal Git server at the branch (or tag) it follows (or assemble the
ExternalArtifact an ArtifactGenerator makes from such clones, `@alias/DIR/**` copy rules), build its path with
`kubectl kustomize` (generating the kustomization.yaml Flux generates for a path without one), substitute
`${VAR}` from `postBuild.substitute` and the given variables, apply: later objects replace earlier ones of the same
kind and name. Used by tests/integration/test_flux_relocation.py and scripts/demo:

    python -m tests.support.fluxcluster DIR --inside GIT_BASE/ --inside oci://REGISTRY/PREFIX/ [--var K=V]

exits 1 naming every GitRepository, HelmRepository or OCIRepository that points outside.
"""

from __future__ import annotations

import argparse
import re
import shutil
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


def _has_kustomization(directory: Path) -> bool:
    return any((directory / name).exists() for name in _KUSTOMIZATION_FILES)


def _resources(directory: Path, below: Path | None = None) -> list[str]:
    """What Flux's generated kustomization.yaml lists: every YAML file, but a subdirectory with its own
    kustomization.yaml as that directory (its files are its own)."""
    below = below or directory
    found = []
    for path in sorted(below.iterdir()):
        if path.name == ".git":
            continue
        if path.is_dir():
            found += (
                [path.relative_to(directory).as_posix()] if _has_kustomization(path) else _resources(directory, path)
            )
        elif path.suffix in (".yaml", ".yml") and path.is_file():
            found.append(path.relative_to(directory).as_posix())
    return found


def kustomize(directory: Path) -> list[dict]:
    """`kubectl kustomize`, with the kustomization.yaml Flux generates for a path without one."""
    if not _has_kustomization(directory):
        (directory / "kustomization.yaml").write_text(yaml.safe_dump({"resources": _resources(directory)}))
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


def _clone(source: Mapping, services: Services, dest: Path) -> Path:
    """A GitRepository's content from the internal Git server, at the branch (or tag) it follows."""
    follows = source.get("ref") or {}
    run_git(
        ["clone", "-q", "--branch", follows.get("branch") or follows["tag"], source["url"], dest],
        env=git_env(services, auth=True),
    )
    return dest


def _generated_artifact(applied: dict, namespace: str, name: str, services: Services, work: Path) -> Path:
    """The ExternalArtifact an ArtifactGenerator makes, as source-watcher does: each `copy` rule of the form
    `from: "@alias/DIR/**"`, `to: "@artifact/DEST/"` copies DIR of the alias's GitRepository to DEST."""
    generator, artifact = next(
        (obj, artifact)
        for key, obj in applied.items()
        if key[0] == "ArtifactGenerator" and key[1] == namespace
        for artifact in obj["spec"].get("artifacts") or []
        if artifact.get("name") == name
    )
    trees = {}
    for index, source in enumerate(generator["spec"]["sources"]):
        ref = (source["kind"], source.get("namespace") or namespace, source["name"])
        trees[source["alias"]] = _clone(applied[ref]["spec"], services, work / f"source{index}")
    tree = work / "artifact"
    tree.mkdir(parents=True)
    for rule in artifact["copy"]:
        alias, _, directory = rule["from"].removesuffix("/**").removeprefix("@").partition("/")
        dest = tree / rule["to"].removeprefix("@artifact/").strip("/")
        shutil.copytree(trees[alias] / directory, dest, dirs_exist_ok=True)
    return tree


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
        work = scratch / f"k{len(done)}"
        if ref["kind"] == "ExternalArtifact":
            tree = _generated_artifact(applied, namespace, ref["name"], services, work)
        else:
            tree = _clone(applied[(ref["kind"], namespace, ref["name"])]["spec"], services, work)
        built = kustomize(tree / spec["path"])
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
