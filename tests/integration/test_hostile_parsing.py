"""Hostile documents cannot blow up the parsers: YAML alias bombs (fleet files, chart values, MirrorSets) are
refused with exit 2 naming the file, deeply nested JSON and wrongly typed inventory fields with exit 3.

Every run is a real `mirror` process under an address-space limit, so a regression fails here instead of
eating the machine.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.conftest import MIRROR, CliResult
from tests.support.charts import ChartRepo, build_chart

MEMORY_CAP = 1_500_000_000  # bytes of address space for one mirror process


def bounded(*args: str | Path, cwd: Path | None = None) -> CliResult:
    done = subprocess.run(
        ["prlimit", f"--as={MEMORY_CAP}", "--", str(MIRROR), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
    )
    return CliResult(done.returncode, done.stdout, done.stderr)


def alias_bomb(levels: int = 10, indent: str = "") -> str:
    """Ten levels of ten aliases: 10**10 nodes once expanded, in a few hundred bytes."""
    lines = [f"{indent}l0: &l0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"{indent}l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


def write_mirrorset(path: Path, spec: str, metadata: str = "metadata: {name: hostile}\n") -> Path:
    path.write_text("apiVersion: mirror/v1\nkind: MirrorSet\n" + metadata + "spec:\n" + spec)
    return path


def assert_refused_naming(result: CliResult, code: int, *names: str) -> None:
    assert result.exit_code == code, (result.exit_code, result.stderr[-2000:])
    assert "Traceback" not in result.stderr
    for name in names:  # verify prints its problems on stdout
        assert name in result.stderr + result.stdout, (result.stdout[-2000:], result.stderr[-2000:])


# --- YAML alias bombs: exit 2 naming the file -------------------------------------------------------------


def test_an_alias_bomb_in_an_upstream_fleet_file_is_refused_naming_the_file(tmp_path):
    fleet = tmp_path / "fleet"
    fleet.mkdir()
    (fleet / "bomb.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bomb, namespace: default}\ndata:\n" + alias_bomb(indent="  ")
    )
    manifest = write_mirrorset(tmp_path / "fleet.yaml", "  flux:\n    - path: fleet\n")
    result = bounded("collect", manifest, "-o", tmp_path / "out")
    assert_refused_naming(result, 2, f"{manifest}: spec.flux[0]", "bomb.yaml")
    assert not (tmp_path / "out").exists()


def test_an_alias_bomb_in_a_mirrorset_is_refused_naming_the_file(tmp_path):
    metadata = "metadata:\n  labels:\n" + alias_bomb(indent="    ") + "  name: *l10\n"
    manifest = write_mirrorset(tmp_path / "bomb-set.yaml", "  images: []\n", metadata=metadata)
    result = bounded("collect", manifest, "-o", tmp_path / "out")
    assert_refused_naming(result, 2, "bomb-set.yaml", "nodes")


def test_an_alias_bomb_in_a_chart_values_file_is_refused_naming_the_chart_and_file(tmp_path, services):
    name = f"bomb-{uuid.uuid4().hex[:8]}"
    repo = ChartRepo(services.charts_dir / name, f"{services.charts_url}/{name}")
    repo.add(build_chart("bomb", "1.0.0", extra_files={"values.yaml": alias_bomb()}))
    repo.write_index()
    manifest = write_mirrorset(
        tmp_path / "charts.yaml", f"  charts:\n    - {{name: bomb, repo: '{repo.base_url}', version: 1.0.0}}\n"
    )
    result = bounded("collect", manifest, "-o", tmp_path / "out")
    assert_refused_naming(result, 2, "bomb@1.0.0", "values.yaml")


# --- Bundle content: exit 3 --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trust(tmp_path_factory) -> Path:
    """A trust policy naming a fresh collector key (the bundles below are refused before any signature)."""
    directory = tmp_path_factory.mktemp("trust")
    done = subprocess.run([str(MIRROR), "keygen", str(directory / "collector")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    policy = directory / "policy.yaml"
    policy.write_text(
        "apiVersion: mirror/v1\nkind: TrustPolicy\ncollectors: {keys: [collector.pub], threshold: 1}\n"
        "stateFile: state.json\n"
    )
    return policy


def bundle_with_inventory(directory: Path, inventory: bytes) -> Path:
    directory.mkdir()
    (directory / "inventory.json").write_bytes(inventory)
    (directory / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (directory / "index.json").write_text('{"schemaVersion": 2, "manifests": []}')
    return directory


DIGEST = "sha256:" + "a" * 64


def inventory(**artifact_fields: object) -> bytes:
    artifact = {
        "kind": "image",
        "source": "registry.example/fixtures/app:1.0",
        "digest": DIGEST,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "size": 10,
        **artifact_fields,
    }
    body = {
        "apiVersion": "mirror/v1",
        "kind": "Inventory",
        "bundleId": "hostile",
        "created": "2026-12-01T00:00:00Z",
        "tool": "mirror test",
        "artifacts": [artifact],
        "files": [],
    }
    return json.dumps(body).encode()


@pytest.mark.parametrize("command", ["inspect", "verify"])
def test_a_deeply_nested_json_inventory_is_refused_with_exit_3(tmp_path, trust, command):
    deep = b'{"apiVersion": "mirror/v1", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    bundle = bundle_with_inventory(tmp_path / "deep", deep)
    args = [command, bundle] + (["--trust", trust] if command == "verify" else [])
    result = bounded(*args)
    assert_refused_naming(result, 3, "inventory.json", "nested")


WRONG_TYPES = [
    ("image", "foundBy", 5),
    ("image", "foundBy", [5]),
    ("image", "platforms", "linux/amd64"),
    ("image", "via", {"a": 1}),
    ("chart", "requiredBy", ["x"]),
    ("chart", "version", 1.5),
    ("git", "heads", ["refs/heads/main"]),
    ("git", "prerequisites", "abc"),
    ("flux", "objects", "many"),
]


@pytest.mark.parametrize(("kind", "field", "value"), WRONG_TYPES, ids=[f"{k}-{f}" for k, f, _ in WRONG_TYPES])
@pytest.mark.parametrize("command", ["inspect", "verify"])
def test_a_wrongly_typed_inventory_field_is_refused_with_exit_3_naming_it(tmp_path, trust, command, kind, field, value):
    bundle = bundle_with_inventory(tmp_path / "typed", inventory(kind=kind, **{field: value}))
    args = [command, bundle] + (["--trust", trust] if command == "verify" else [])
    result = bounded(*args)
    assert_refused_naming(result, 3, "inventory.json", f"artifacts[0].{field}")


# --- The Flux objects blob: capped while it is built at collect ---------------------------------------------


def test_a_fleet_whose_objects_blob_passes_the_limit_is_refused_at_collect_naming_fleet_and_limit(tmp_path):
    from mirror.collector.run import collect
    from mirror.errors import UsageError
    from mirror.limits import Limits

    fleet = tmp_path / "fleet"
    fleet.mkdir()
    for number in range(3):
        (fleet / f"repo{number}.yaml").write_text(
            "apiVersion: source.toolkit.fluxcd.io/v1\nkind: HelmRepository\n"
            f"metadata: {{name: repo{number}, namespace: flux-system}}\nspec: {{url: 'https://charts.example/{number}'}}\n"
        )
    manifest = write_mirrorset(tmp_path / "fleet.yaml", "  flux:\n    - path: fleet\n")
    with pytest.raises(UsageError) as caught:
        collect([manifest], tmp_path / "out", limits=Limits(max_flux_objects_bytes=300))
    assert "spec.flux[0]" in caught.value.message and str(manifest) in caught.value.message
    assert "300 bytes" in caught.value.message
    assert not (tmp_path / "out").exists()
