"""`import --mirror-config DIR`: the nodes' registry mirror files are rendered while planning, refused with the
plan's other problems, written after the registry, only into a directory mirror wrote before, and listed in the
report. The network is the registry simulator; the files are parsed back."""

from __future__ import annotations

import tomllib
from pathlib import Path

import certifi
import pytest
import yaml

from mirror.errors import UsageError, VerificationError
from mirror.importer import mirror_config
from mirror.importer.run import ImportReport, import_bundle
from mirror.progress import Progress
from tests.support.craft import craft_bundle, p256_signer
from tests.unit.attached_upstream import UPSTREAM, Upstream, collect_from
from tests.unit.registry_sim import RegistrySim

INTERNAL = "internal.test"
HOSTS_TOML = f"containerd/certs.d/{UPSTREAM}/hosts.toml"
EVERY_FILE = sorted(
    [
        HOSTS_TOML,
        "k3s/registries.yaml",
        "containers/registries.conf.d/50-mirror.conf",
        "openshift/imagedigestmirrorset.yaml",
        "openshift/imagetagmirrorset.yaml",
    ]
)


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    upstream = Upstream()
    upstream.image("team/app", "1.0")
    return collect_from(upstream, tmp_path, [f"{UPSTREAM}/team/app:1.0"]).out


def written_files(directory: Path) -> list[str]:
    return sorted(
        p.relative_to(directory).as_posix()
        for p in directory.rglob("*")
        if p.is_file() and p.name != ".mirror-mirror-config.json"
    )


def run(bundle: Path, internal: RegistrySim, out: Path | None, **options: object) -> ImportReport:
    return import_bundle(
        bundle,
        options.pop("registry", f"https://{INTERNAL}/mirror"),  # type: ignore[arg-type]
        allow_unsigned=True,
        mirror_config=out,
        transport=internal.transport(),
        **options,  # type: ignore[arg-type]
    )


def registry_writes(internal: RegistrySim) -> list[str]:
    return [f"{r.method} {r.url.path}" for r in internal.requests if r.method in ("PUT", "PATCH")]


def test_an_import_writes_every_node_file_for_the_bundles_source_registries(bundle, tmp_path):
    out = tmp_path / "nodes"

    run(bundle, RegistrySim(INTERNAL), out)

    assert written_files(out) == EVERY_FILE
    containerd = tomllib.loads((out / HOSTS_TOML).read_text())
    assert containerd["server"] == f"https://{UPSTREAM}"
    assert list(containerd["host"]) == [f"https://{INTERNAL}/v2/mirror"]
    k3s = yaml.safe_load((out / "k3s/registries.yaml").read_text())
    assert k3s["mirrors"][UPSTREAM]["rewrite"] == {"^(.*)$": "mirror/$1"}


def test_the_report_lists_the_files_written(bundle, tmp_path):
    out = tmp_path / "nodes"

    report = run(bundle, RegistrySim(INTERNAL), out)

    assert report.to_json()["mirrorConfig"] == {"directory": str(out), "files": EVERY_FILE, "written": True}


def test_a_dry_run_writes_nothing_and_lists_what_it_would_write(bundle, tmp_path):
    out = tmp_path / "nodes"

    report = run(bundle, RegistrySim(INTERNAL), out, dry_run=True)

    assert not out.exists()
    assert report.to_json()["mirrorConfig"] == {"directory": str(out), "files": EVERY_FILE, "written": False}


def test_the_files_are_written_after_the_registry(bundle, tmp_path, monkeypatch):
    out = tmp_path / "nodes"
    internal = RegistrySim(INTERNAL)
    seen: list[int] = []
    real = mirror_config.write_mirror_config

    def write(*args: object) -> None:
        seen.append(len(registry_writes(internal)))
        real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(mirror_config, "write_mirror_config", write)
    run(bundle, internal, out)

    assert seen == [len(registry_writes(internal))] and seen[0] > 0


def test_the_node_ca_path_is_written_and_the_local_ca_file_never_is(bundle, tmp_path):
    out = tmp_path / "nodes"

    run(bundle, RegistrySim(INTERNAL), out, ca_file=certifi.where(), node_ca_path="/etc/mirror/ca.pem")

    everything = "\n".join((out / name).read_text() for name in written_files(out))
    assert certifi.where() not in everything and str(Path(certifi.where()).parent) not in everything
    assert "/etc/mirror/ca.pem" in (out / HOSTS_TOML).read_text()


def test_a_local_ca_file_without_a_node_ca_path_writes_no_ca_and_warns(bundle, tmp_path):
    out = tmp_path / "nodes"
    warnings: list[str] = []
    progress = Progress(quiet=True)
    progress.warn = warnings.append  # type: ignore[method-assign]

    run(bundle, RegistrySim(INTERNAL), out, ca_file=certifi.where(), progress=progress)

    assert "ca" not in tomllib.loads((out / HOSTS_TOML).read_text())["host"][f"https://{INTERNAL}/v2/mirror"]
    assert certifi.where() not in "\n".join((out / name).read_text() for name in written_files(out))
    assert any("--node-ca-path" in warning for warning in warnings)


def test_a_hostile_source_host_is_refused_before_any_write(tmp_path):
    crafted = craft_bundle(tmp_path / "bundle", p256_signer("collector"), source="[::1]:5000/team/app:1.0")
    internal = RegistrySim(INTERNAL)
    out = tmp_path / "nodes"

    with pytest.raises(VerificationError) as raised:
        run(crafted.root, internal, out)

    assert [p.code for p in raised.value.problems] == ["MIRROR_CONFIG_HOST_INVALID"]
    assert registry_writes(internal) == [] and not out.exists()


def test_a_directory_holding_an_operators_file_is_refused_before_any_write(bundle, tmp_path):
    out = tmp_path / "nodes"
    out.mkdir()
    (out / "hosts.toml").write_text("# the operator's own\n")
    internal = RegistrySim(INTERNAL)

    with pytest.raises(UsageError, match="mirror did not write it"):
        run(bundle, internal, out)

    assert registry_writes(internal) == []
    assert (out / "hosts.toml").read_text() == "# the operator's own\n"


def test_a_hostile_source_host_is_listed_with_the_plans_other_refusals(tmp_path):
    crafted = craft_bundle(tmp_path / "bundle", p256_signer("collector"), source="[::1]:5000/team/app:1.0")
    internal = RegistrySim(INTERNAL)

    with pytest.raises(VerificationError) as raised:
        run(crafted.root, internal, tmp_path / "nodes", flux_out=tmp_path / "flux")  # a bundle without a fleet

    messages = [p.message for p in raised.value.problems]
    assert len(messages) == 2 and any("no Flux objects" in m for m in messages)
    assert registry_writes(internal) == []


def test_a_plain_http_registry_takes_no_node_ca_path(bundle, tmp_path):
    with pytest.raises(UsageError, match="plain HTTP"):
        run(bundle, RegistrySim(INTERNAL), tmp_path / "nodes", registry=f"http://{INTERNAL}", node_ca_path="/ca.pem")


def test_the_next_night_replaces_what_the_last_one_wrote(bundle, tmp_path):
    out = tmp_path / "nodes"
    run(bundle, RegistrySim(INTERNAL), out)

    run(bundle, RegistrySim(INTERNAL), out, ca_file=certifi.where(), node_ca_path="/etc/ca.pem")

    assert written_files(out) == EVERY_FILE
    assert "/etc/ca.pem" in (out / "k3s/registries.yaml").read_text()


def test_a_node_ca_path_without_a_directory_to_write_is_a_usage_error(bundle):
    with pytest.raises(UsageError, match="--node-ca-path"):
        run(bundle, RegistrySim(INTERNAL), None, node_ca_path="/etc/ca.pem")


def test_the_mirror_config_and_flux_out_directories_must_differ(bundle, tmp_path):
    with pytest.raises(UsageError, match="--flux-out"):
        run(bundle, RegistrySim(INTERNAL), tmp_path / "out", flux_out=tmp_path / "out" / "nodes")
