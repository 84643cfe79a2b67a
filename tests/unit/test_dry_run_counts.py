"""`import --dry-run` says how much an import would upload: the blobs and bytes the target lacks, counted as the
real import would count them, on the registry simulator."""

from __future__ import annotations

from pathlib import Path

import pytest

from mirror.cli import app
from mirror.importer.run import import_bundle
from mirror.trust.keys import generate
from tests.unit.registry_sim import RegistrySim
from tests.unit.test_collect_import_sim import INTERNAL, _collect, _policy, _upstream


@pytest.fixture
def collector_key(tmp_path: Path) -> tuple[Path, Path]:
    key, pub, _ = generate(str(tmp_path / "collector"), env={})
    return key, pub


def _bundle(tmp_path: Path, key: Path) -> Path:
    upstream, _ = _upstream()
    return _collect(tmp_path, upstream, key)


def test_a_dry_run_counts_the_blobs_and_bytes_an_import_would_upload(
    tmp_path: Path, collector_key: tuple[Path, Path]
) -> None:
    bundle = _bundle(tmp_path, collector_key[0])
    policy = _policy(tmp_path, collector_key[1])
    dry = import_bundle(bundle, f"https://{INTERNAL}", trust=policy, transport=RegistrySim(INTERNAL).transport(),
                        dry_run=True)  # fmt: skip
    real = import_bundle(bundle, f"https://{INTERNAL}", trust=policy, transport=RegistrySim(INTERNAL).transport())
    assert dry.counts.bytes_uploaded > 0
    assert (dry.counts.blobs_uploaded, dry.counts.bytes_uploaded) == (
        real.counts.blobs_uploaded,
        real.counts.bytes_uploaded,
    )


def test_a_dry_run_counts_nothing_to_upload_when_the_target_has_every_blob(
    tmp_path: Path, collector_key: tuple[Path, Path]
) -> None:
    bundle = _bundle(tmp_path, collector_key[0])
    policy = _policy(tmp_path, collector_key[1])
    target = RegistrySim(INTERNAL)
    import_bundle(bundle, f"https://{INTERNAL}", trust=policy, transport=target.transport())
    again = import_bundle(bundle, f"https://{INTERNAL}", trust=policy, transport=target.transport(), dry_run=True)
    assert (again.counts.blobs_uploaded, again.counts.bytes_uploaded) == (0, 0)


def test_the_dry_run_summary_line_says_what_would_be_uploaded(
    tmp_path: Path, collector_key: tuple[Path, Path], monkeypatch
) -> None:
    from typer.testing import CliRunner

    import mirror.importer.run as importer_run

    bundle = _bundle(tmp_path, collector_key[0])
    policy = _policy(tmp_path, collector_key[1])
    target = RegistrySim(INTERNAL)
    original = importer_run.import_bundle

    def on_the_simulator(*args, **kwargs):  # the command line, with the network replaced
        return original(*args, **kwargs, transport=target.transport())

    monkeypatch.setattr(importer_run, "import_bundle", on_the_simulator)
    result = CliRunner().invoke(
        app, ["import", str(bundle), "--registry", f"https://{INTERNAL}", "--trust", str(policy), "--dry-run"]
    )
    assert result.exit_code == 0, result.output
    summary = result.stdout.splitlines()[-1]
    assert summary.startswith(f"would import 2 artifact(s) into {INTERNAL}: would upload ")
    assert "0 blob(s) uploaded" not in summary


def test_a_dry_run_report_says_what_would_be_uploaded_and_that_nothing_was(
    tmp_path: Path, collector_key: tuple[Path, Path]
) -> None:
    from mirror.progress import Progress
    from mirror.report import RunReport, import_fields

    bundle = _bundle(tmp_path, collector_key[0])
    policy = _policy(tmp_path, collector_key[1])
    dry = import_bundle(bundle, f"https://{INTERNAL}", trust=policy, transport=RegistrySim(INTERNAL).transport(),
                        dry_run=True)  # fmt: skip
    run = RunReport("import", Progress(quiet=True))
    import_fields(run, dry)
    assert run.transfer["uploaded"] == 0
    assert run.transfer["wouldUpload"] == dry.counts.bytes_uploaded > 0
