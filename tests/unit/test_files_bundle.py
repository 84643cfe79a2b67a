"""Files in a bundle: carried as ORAS-style artifacts, checked at verification, written by --files-out by name.

Local files (`spec.files[].path`) need no network, so these run on a real collect without the services."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from mirror.bundle.opening import open_bundle
from mirror.bundle.verify import check_bundle
from mirror.collector.run import collect
from mirror.errors import UsageError, VerificationError
from mirror.importer.files_out import plan_files_out, write_files_out

TOOL = b"#!/bin/sh\necho tool\n"


def _collect(tmp_path: Path, files: list[dict], name: str = "b") -> Path:
    (tmp_path / "tool").write_bytes(TOOL)
    (tmp_path / "other").write_bytes(b"other\n")
    document = {"apiVersion": "mirror/v1", "kind": "MirrorSet", "metadata": {"name": "t"}, "spec": {"files": files}}
    manifest = tmp_path / "set.yaml"
    manifest.write_text(json.dumps(document))
    collect([manifest], tmp_path / name)
    return tmp_path / name


def _edit_inventory(bundle: Path, **extra: object) -> None:
    path = bundle / "inventory.json"
    inventory = json.loads(path.read_text())
    [record] = [a for a in inventory["artifacts"] if a["kind"] == "file"]
    record.update(extra)
    path.write_text(json.dumps(inventory))


def test_a_file_is_an_oras_artifact_titled_with_its_name(tmp_path):
    bundle = _collect(tmp_path, [{"path": "tool", "name": "site-tool"}])
    checked = check_bundle(open_bundle(bundle))
    assert checked.problems == []
    [image] = checked.images
    body = json.loads(image.top.raw)
    assert body["artifactType"] == "application/vnd.mirror.file.v1"
    assert body["config"]["mediaType"] == "application/vnd.oci.empty.v1+json"
    [layer] = body["layers"]
    assert layer["annotations"] == {"org.opencontainers.image.title": "site-tool"}
    assert layer["digest"] == "sha256:" + hashlib.sha256(TOOL).hexdigest()


def test_the_same_file_gives_the_same_manifest_digest_every_night(tmp_path):
    first = _collect(tmp_path, [{"path": "tool"}], "one")
    second = _collect(tmp_path, [{"path": "tool"}], "two")
    digests = [check_bundle(open_bundle(b)).images[0].artifact.digest for b in (first, second)]
    assert digests[0] == digests[1]


def test_a_record_naming_other_bytes_than_its_manifest_carries_is_a_graph_problem(tmp_path):
    bundle = _collect(tmp_path, [{"path": "tool"}])
    _edit_inventory(bundle, fileSha256="0" * 64)
    problems = check_bundle(open_bundle(bundle)).problems
    assert [p.code for p in problems] == ["GRAPH_INVALID"]
    assert "not the file its record names" in problems[0].message


def test_a_record_naming_another_title_than_its_manifest_is_a_graph_problem(tmp_path):
    bundle = _collect(tmp_path, [{"path": "tool"}])
    _edit_inventory(bundle, name="other-name")
    assert [p.code for p in check_bundle(open_bundle(bundle)).problems] == ["GRAPH_INVALID"]


def test_local_file_not_matching_its_pinned_sha256_is_refused_with_exit_2(tmp_path):
    with pytest.raises(UsageError) as refused:
        _collect(tmp_path, [{"path": "tool", "sha256": "0" * 64}])
    assert refused.value.exit_code == 2
    assert "0" * 64 in str(refused.value) and hashlib.sha256(TOOL).hexdigest() in str(refused.value)
    assert not (tmp_path / "b").exists()


def test_files_out_writes_each_file_and_its_record(tmp_path):
    bundle = _collect(tmp_path, [{"path": "tool"}, {"path": "other"}])
    checked = check_bundle(open_bundle(bundle))
    planned = plan_files_out(checked, {})
    out = tmp_path / "out"
    write_files_out(planned, checked.reader, out, {})
    assert (out / "tool").read_bytes() == TOOL and (out / "other").read_bytes() == b"other\n"
    record = json.loads((out / ".mirror-files-out.json").read_text())
    assert record["files"]["tool"] == [hashlib.sha256(TOOL).hexdigest()]


def test_files_out_refuses_a_name_that_is_its_own_record(tmp_path):
    bundle = _collect(tmp_path, [{"path": "tool"}])
    checked = check_bundle(open_bundle(bundle))
    checked.images[0].artifact.extra["name"] = ".mirror-files-out.json"
    with pytest.raises(VerificationError) as refused:
        plan_files_out(checked, {})
    assert [p.code for p in refused.value.problems] == ["FILE_NAME_INVALID"]


def test_files_out_refuses_a_bundle_altered_after_it_was_verified_and_keeps_no_file(tmp_path):
    bundle = _collect(tmp_path, [{"path": "tool"}])
    checked = check_bundle(open_bundle(bundle))
    planned = plan_files_out(checked, {})
    (bundle / "blobs" / "sha256" / hashlib.sha256(TOOL).hexdigest()).write_bytes(b"#!/bin/sh\nrm -rf /\n")
    with pytest.raises(VerificationError):
        write_files_out(planned, checked.reader, tmp_path / "out", {})
    assert not (tmp_path / "out" / "tool").exists()


def test_files_out_stopped_while_writing_a_file_is_simply_run_again(tmp_path):
    # A night killed mid-copy (no Python cleanup) leaves the temporary file beside the name it was writing.
    from mirror.importer.files_out import check_output_directory

    bundle = _collect(tmp_path, [{"path": "tool"}])
    checked = check_bundle(open_bundle(bundle))
    out = tmp_path / "out"
    write_files_out(plan_files_out(checked, {}), checked.reader, out, {})
    leftover = out / ".tool.0123456789abcdef.partial"
    leftover.write_bytes(TOOL[:5])
    previous = check_output_directory(out)
    assert previous == {"tool": hashlib.sha256(TOOL).hexdigest()}
    write_files_out(plan_files_out(checked, previous), checked.reader, out, previous)
    assert sorted(p.name for p in out.iterdir()) == [".mirror-files-out.json", "tool"]


def test_files_out_keeps_refusing_a_partial_looking_file_for_a_name_it_never_wrote(tmp_path):
    from mirror.importer.files_out import check_output_directory

    bundle = _collect(tmp_path, [{"path": "tool"}])
    checked = check_bundle(open_bundle(bundle))
    out = tmp_path / "out"
    write_files_out(plan_files_out(checked, {}), checked.reader, out, {})
    (out / ".notes.0123456789abcdef.partial").write_bytes(b"mine\n")
    with pytest.raises(UsageError, match="mirror did not write it"):
        check_output_directory(out)
