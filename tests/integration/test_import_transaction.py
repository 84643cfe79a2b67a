"""`mirror import` is a transaction: every check before the first write, one importer per state file.

Each refusal that used to come after the registry push is checked the same way on the real services: its exit
code, nothing new on the internal registry (catalogue) or Git server (ls-remote), and the trust state's rollback
record exactly as it was (the attempt itself is journaled). Then: two imports at once on one state file, a
timeout on the lock, a partial write that keeps rollback protection, and the quarantine directories a killed
import leaves behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from typer.testing import CliRunner

from mirror.cli import app
from mirror.errors import MirrorError, VerificationError
from mirror.importer.run import import_bundle
from mirror.limits import DEFAULT_LIMITS
from tests.conftest import MIRROR
from tests.support.gitrepos import GitError, ls_remote, make_upstream_repo, move_tag
from tests.support.hostile import Answer, HostileServer, Request
from tests.support.images import Image, Layer, Layout, inspect_raw, push, sha256_digest
from tests.support.journals import rollback_record
from tests.support.mirrorsets import mirrorset
from tests.support.services import UPSTREAM_REGISTRY

UPSTREAM = {UPSTREAM_REGISTRY: {"plainHTTP": True}}


def must(*args: object, env: dict[str, str] | None = None) -> Any:
    result = CliRunner().invoke(app, [str(a) for a in args], env=env, catch_exceptions=False)
    assert result.exit_code == 0, f"mirror {' '.join(map(str, args))}: {result.stderr}"
    return result


@pytest.fixture(scope="module")
def collector_key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("keys")
    must("keygen", directory / "collector", env={"MIRROR_KEY_PASSWORD": ""})
    return directory / "collector.key"


@dataclass(frozen=True)
class Trust:
    policy: Path
    state: Path

    def rollback(self) -> dict[str, Any] | None:
        """The state file's rollback record; a refusal after the lock moves only the journal's head."""
        return rollback_record(self.state)

    def sequence(self) -> int:
        [record] = json.loads(self.state.read_bytes())["collectors"].values()
        return int(record["sequence"])


def write_policy(directory: Path, key: Path, state_file: str = "state.json") -> Trust:
    directory.mkdir(parents=True, exist_ok=True)
    policy = directory / "policy.yaml"
    body = {
        "apiVersion": "mirror/v1",
        "kind": "TrustPolicy",
        "collectors": {"keys": [str(key.with_suffix(".pub"))], "threshold": 1},
        "stateFile": state_file,
    }
    policy.write_text(yaml.safe_dump(body, sort_keys=False))
    return Trust(policy, directory / state_file)


@pytest.fixture
def trust(tmp_path: Path, collector_key: Path) -> Trust:
    return write_policy(tmp_path / "trust", collector_key)


def collect_signed(manifest: Path, out: Path, key: Path, sequence: int) -> Path:
    must("collect", manifest, "-o", out, "--key", key, "--sequence", sequence, "--quiet")
    return out


def write_set(path: Path, images: list[str], **spec: Any) -> Path:
    document = mirrorset(images, registries=UPSTREAM)
    document["spec"].update(spec)
    path.write_text(json.dumps(document))
    return path


FLUX_SOURCE = """\
apiVersion: source.toolkit.fluxcd.io/v1beta2
kind: OCIRepository
metadata: {{name: {name}, namespace: flux-system}}
spec:
  interval: 10m
  url: oci://{upstream}/fixtures/app
  ref: {{tag: "1.0"}}
"""


def flux_bundle(work: Path, key: Path, sequence: int, object_name: str = "app") -> Path:
    """A fleet read from a local directory: one OCIRepository, which brings one image to push."""
    fleet = work / f"fleet-{object_name.lower().replace('.', '-').replace('_', '-')}"
    fleet.mkdir(parents=True)
    (fleet / "source.yaml").write_text(FLUX_SOURCE.format(name=object_name, upstream=UPSTREAM_REGISTRY))
    manifest = write_set(work / f"{fleet.name}.yaml", [], flux=[{"path": fleet.name}])
    return collect_signed(manifest, work / f"{fleet.name}-bundle", key, sequence)


@pytest.fixture(scope="module")
def image_bundle(tmp_path_factory: pytest.TempPathFactory, upstream_images: dict, collector_key: Path) -> Path:
    """One image, no Git source, no Flux objects; sequence 1."""
    work = tmp_path_factory.mktemp("image-bundle")
    manifest = write_set(work / "m.yaml", [upstream_images["app_1"]["ref"]])
    return collect_signed(manifest, work / "bundle", collector_key, 1)


@pytest.fixture
def attempt(mirror_cli, services, internal_env, internal_url) -> Callable[..., Any]:
    def run(bundle: Path, trust: Trust, *extra: object, env: dict[str, str] | None = None) -> Any:
        return mirror_cli(
            "import", bundle, "--trust", trust.policy, "--registry", internal_url, "--ca-file", services.ca_file,
            "--quiet", *extra, env={**internal_env, **(env or {})},
        )  # fmt: skip

    return run


def assert_refused_before_writing(result: Any, exit_code: int, written: Callable[[], list[str]], trust: Trust) -> None:
    assert result.exit_code == exit_code, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert written() == [], "the registry was written before the refusal"
    assert trust.rollback() is None, "the state file records an import"


# === hole 1: every refusal comes before the first write ========================================================


def test_non_empty_flux_out_is_refused_before_anything_is_written(
    tmp_path, attempt, trust, collector_key, written_repositories
):
    bundle = flux_bundle(tmp_path, collector_key, 1)
    out = tmp_path / "flux-out"
    out.mkdir()
    (out / "kept.yaml").write_text("mine\n")
    result = attempt(bundle, trust, "--flux-out", out)
    assert_refused_before_writing(result, 2, written_repositories, trust)
    assert "not empty" in result.stderr and str(out) in result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["kept.yaml"]


def test_flux_out_for_a_bundle_without_flux_objects_is_refused_before_anything_is_written(
    tmp_path, attempt, trust, image_bundle, written_repositories
):
    out = tmp_path / "flux-out"
    result = attempt(image_bundle, trust, "--flux-out", out)
    assert_refused_before_writing(result, 2, written_repositories, trust)
    assert "carries no Flux objects" in result.stderr
    assert not out.exists()


def test_unsafe_flux_object_name_is_refused_before_anything_is_written(
    tmp_path, attempt, trust, collector_key, written_repositories
):
    bundle = flux_bundle(tmp_path, collector_key, 1, object_name="App_Bad.Name")
    out = tmp_path / "flux-out"
    result = attempt(bundle, trust, "--flux-out", out)
    assert_refused_before_writing(result, 2, written_repositories, trust)
    assert "is not a Kubernetes name" in result.stderr
    assert not out.exists() or list(out.iterdir()) == []


def test_dry_run_renders_the_flux_output_and_refuses_an_unsafe_name_as_the_import_would(
    tmp_path, attempt, trust, collector_key, written_repositories
):
    bundle = flux_bundle(tmp_path, collector_key, 1, object_name="App_Bad.Name")
    out = tmp_path / "flux-out"
    result = attempt(bundle, trust, "--flux-out", out, "--dry-run")
    assert_refused_before_writing(result, 2, written_repositories, trust)
    assert "is not a Kubernetes name" in result.stderr
    assert not out.exists()


def test_every_problem_of_the_plan_is_listed_not_just_the_first(
    tmp_path, attempt, services, trust, collector_key, written_repositories
):
    """A bundle with a Git source, imported without --git, whose Flux object has an unsafe name: both named."""
    repo = make_upstream_repo(services, f"t{uuid.uuid4().hex[:8]}/fleet")
    fleet = tmp_path / "fleet"
    fleet.mkdir()
    (fleet / "source.yaml").write_text(FLUX_SOURCE.format(name="App_Bad.Name", upstream=UPSTREAM_REGISTRY))
    manifest = write_set(
        tmp_path / "m.yaml", [], git=[{"name": "fleet", "url": repo["url"]}], flux=[{"path": fleet.name}]
    )
    bundle = collect_signed(manifest, tmp_path / "bundle", collector_key, 1)
    result = attempt(bundle, trust, "--flux-out", tmp_path / "flux-out")
    assert_refused_before_writing(result, 2, written_repositories, trust)
    assert "is not a Kubernetes name" in result.stderr and "--git" in result.stderr


def test_flux_objects_over_their_limit_are_refused_before_anything_is_written(
    tmp_path, services, internal_env, internal_url, monkeypatch, trust, collector_key, written_repositories
):
    bundle = flux_bundle(tmp_path, collector_key, 1)
    for name, value in internal_env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(MirrorError) as refused:
        import_bundle(
            bundle,
            internal_url,
            trust=trust.policy,
            ca_file=str(services.ca_file),
            flux_out=tmp_path / "flux-out",
            limits=replace(DEFAULT_LIMITS, max_flux_objects_bytes=100),
        )
    assert refused.value.exit_code in (2, 3)
    assert "limit" in str(refused.value)
    assert written_repositories() == []
    assert trust.rollback() is None
    assert not (tmp_path / "flux-out").exists()


@pytest.fixture
def git_env(services, internal_env) -> dict[str, str]:
    return {**internal_env, "MIRROR_GIT_USERNAME": services.git_user, "MIRROR_GIT_PASSWORD": services.git_password}


def internal_refs(services, path: str) -> dict[str, str]:
    try:
        return ls_remote(f"{services.git_internal}/{path}", services, auth=True)
    except GitError as exc:
        if "not found" in str(exc):
            return {}
        raise


@dataclass(frozen=True)
class MovedTag:
    bundle: Path  # an image and the Git source, signed, sequence 1
    git_base: str
    repository: str  # on the internal Git server, where v1.0.0 was moved
    refs: dict[str, str]  # the internal repository's refs before the import


@pytest.fixture
def moved_internal_tag(
    tmp_path, mirror_cli, services, git_env, target_prefix, collector_key, upstream_images
) -> MovedTag:
    """The Git source imported once (into another registry prefix); then someone moved its tag internally."""
    repo = make_upstream_repo(services, f"t{uuid.uuid4().hex[:8]}/fleet")
    git_base = f"{services.git_internal}/{target_prefix}"
    source = {"name": "fleet", "url": repo["url"], "ref": {"branch": "main"}}
    git_only = write_set(tmp_path / "git.yaml", [], git=[source])
    assert mirror_cli("collect", git_only, "-o", tmp_path / "git-only", "-q").exit_code == 0
    first = mirror_cli(
        "import", tmp_path / "git-only", "--registry", f"https://{services.internal}/{target_prefix}-first",
        "--git", git_base, "--allow-unsigned", "--ca-file", services.ca_file, "-q", env=git_env,
    )  # fmt: skip
    assert first.exit_code == 0, first.stderr
    repository = f"{target_prefix}/{repo['name']}.git"
    move_tag(services, repository.removesuffix(".git"), "v1.0.0", "main", where="internal")
    both = write_set(tmp_path / "both.yaml", [upstream_images["app_1"]["ref"]], git=[source])
    bundle = collect_signed(both, tmp_path / "both", collector_key, 1)
    return MovedTag(bundle, git_base, repository, internal_refs(services, repository))


def test_git_tag_conflict_on_the_target_is_refused_before_anything_is_written(
    attempt, services, git_env, trust, moved_internal_tag, written_repositories
):
    moved = moved_internal_tag
    result = attempt(moved.bundle, trust, "--git", moved.git_base, env=git_env)
    assert_refused_before_writing(result, 2, written_repositories, trust)
    assert "refs/tags/v1.0.0" in result.stderr and "--force-git" in result.stderr
    assert internal_refs(services, moved.repository) == moved.refs


def test_dry_run_finds_the_git_tag_conflict_as_the_import_would(
    attempt, services, git_env, trust, moved_internal_tag, written_repositories
):
    moved = moved_internal_tag
    result = attempt(moved.bundle, trust, "--git", moved.git_base, "--dry-run", env=git_env)
    assert_refused_before_writing(result, 2, written_repositories, trust)
    assert "refs/tags/v1.0.0" in result.stderr
    assert internal_refs(services, moved.repository) == moved.refs


def test_state_file_in_a_missing_directory_is_refused_before_anything_is_written(
    tmp_path, attempt, collector_key, image_bundle, written_repositories
):
    trust = write_policy(tmp_path / "trust", collector_key, state_file="gone/state.json")
    result = attempt(image_bundle, trust, "--quiet")
    assert_refused_before_writing(result, 2, written_repositories, trust)
    assert str(tmp_path / "trust" / "gone") in result.stderr


# === hole 2: one importer at a time per state file =============================================================


class Upstream:
    """One tag of this test's own repository on the upstream registry, re-pushed with new content at will."""

    def __init__(self, services, tmp_path: Path) -> None:
        self.repository = f"{services.upstream}/txn{uuid.uuid4().hex[:8]}/app"
        self.layout = Layout(tmp_path / "upstream-layout")

    def publish(self, seed: str) -> str:
        image = Image([Layer.from_seed(f"{self.repository}/{seed}")], labels={"seed": seed})
        self.layout.add(seed, image)
        push(self.layout.path, seed, f"{self.repository}:1")
        return image.digest


@contextlib.contextmanager
def holding_the_lock(trust: Trust) -> Iterator[None]:
    """Hold the lock beside the state file, as a running import would: an flock, the holder's pid inside."""
    lock = trust.state.with_name(trust.state.name + ".lock")
    with open(lock, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        handle.truncate(0)
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield
        fcntl.flock(handle, fcntl.LOCK_UN)


def import_command(bundle: Path, trust: Trust, url: str, services, *extra: object) -> list[str]:
    return [
        str(MIRROR), "import", str(bundle), "--trust", str(trust.policy), "--registry", url,
        "--ca-file", str(services.ca_file), *map(str, extra),
    ]  # fmt: skip


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def landed_digest(services, target: str) -> str:
    creds = (services.internal_user, services.internal_password)
    return sha256_digest(inspect_raw(target, tls_verify=True, creds=creds, cert_dir=services.cert_dir))


def test_a_second_import_waits_for_the_first_and_both_end_at_the_newest_bundle(
    tmp_path, services, internal_env, internal_url, target_prefix, trust, collector_key
):
    upstream = Upstream(services, tmp_path)
    upstream.publish("older")
    image_set = [f"{upstream.repository}:1"]
    older = collect_signed(write_set(tmp_path / "a.yaml", image_set), tmp_path / "old", collector_key, 1)
    newest_digest = upstream.publish("newer")
    newer = collect_signed(write_set(tmp_path / "b.yaml", image_set), tmp_path / "new", collector_key, 2)
    env = {**os.environ, **internal_env}
    logs = {name: tmp_path / f"{name}.stderr" for name in ("newer", "older")}
    processes: dict[str, subprocess.Popen[bytes]] = {}
    try:
        with holding_the_lock(trust):
            for name, bundle in (("newer", newer), ("older", older)):
                with open(logs[name], "w") as stderr:
                    processes[name] = subprocess.Popen(
                        import_command(bundle, trust, internal_url, services), env=env, stdout=subprocess.DEVNULL,
                        stderr=stderr,
                    )  # fmt: skip
            for name, process in processes.items():
                wait_for(
                    lambda log=logs[name], p=process: (
                        "waiting for the import holding" in log.read_text() or p.poll() is not None
                    ),
                    f"{name} to wait or end",
                )
                assert process.poll() is None, f"{name} did not wait for the lock: {logs[name].read_text()}"
            for name in processes:
                message = logs[name].read_text()
                assert message.count("waiting for the import holding") == 1
                assert f"(pid {os.getpid()})" in message and str(trust.state) + ".lock" in message
        codes = {name: process.wait(timeout=300) for name, process in processes.items()}
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
            process.wait(timeout=60)
    assert codes["newer"] == 0, logs["newer"].read_text()
    assert codes["older"] in (0, 3), logs["older"].read_text()  # 0 when it went first, 3 (rollback) after
    assert trust.sequence() == 2
    target = f"{services.internal}/{target_prefix}/{upstream.repository.split('/', 1)[1]}:1"
    assert landed_digest(services, target) == newest_digest
    replay = subprocess.run(
        import_command(older, trust, internal_url, services), env=env, capture_output=True, text=True, timeout=300
    )
    assert replay.returncode == 3 and "[ROLLBACK]" in replay.stderr


def test_lock_timeout_gives_up_naming_the_lock_and_its_holder(
    tmp_path, mirror_cli, services, internal_env, internal_url, trust, image_bundle, written_repositories
):
    with holding_the_lock(trust):
        started = time.monotonic()
        result = mirror_cli(
            "import", image_bundle, "--trust", trust.policy, "--registry", internal_url, "--ca-file",
            services.ca_file, "--lock-timeout", "1", env=internal_env,
        )  # fmt: skip
        waited = time.monotonic() - started
    assert result.exit_code == 2, result.stderr
    assert str(trust.state) + ".lock" in result.stderr and f"pid {os.getpid()}" in result.stderr
    assert "--lock-timeout" in result.stderr
    assert waited < 60  # gave up, did not wait for the holder
    assert written_repositories() == []
    assert trust.rollback() is None


# === a partial write keeps rollback protection =================================================================


def forwarding_registry(
    client: httpx.Client, upstream: str, fail: Callable[[Request], bool]
) -> Callable[[Request], Answer]:
    """A route that hands every request to the upstream registry, except those `fail` picks: 400 DENIED."""
    hop_by_hop = {"host", "connection", "transfer-encoding", "accept-encoding", "content-length"}

    def route(request: Request) -> Answer:
        if fail(request):
            denied = {"errors": [{"code": "DENIED", "message": "simulated failure after some writes"}]}
            return Answer(400, {"Content-Type": "application/json"}, json.dumps(denied).encode())
        headers = {k: v for k, v in request.headers.items() if k not in hop_by_hop}
        answer = client.request(request.method, request.path, headers=headers, content=request.body)
        kept = {k: v for k, v in answer.headers.items() if k.lower() not in ("connection", "transfer-encoding")}
        if "location" in kept:
            kept["location"] = kept["location"].replace(f"http://{upstream}", route.base)  # type: ignore[attr-defined]
        return Answer(answer.status_code, kept, answer.content)

    return route


def test_a_partial_write_records_the_state_so_the_older_bundle_stays_refused(
    tmp_path, services, upstream_images, trust, collector_key
):
    manifest = write_set(tmp_path / "m.yaml", [upstream_images["app_1"]["ref"]])
    older = collect_signed(manifest, tmp_path / "older", collector_key, 1)
    newer = collect_signed(manifest, tmp_path / "newer", collector_key, 2)
    failing = {"on": True}

    def tag_put(request: Request) -> bool:
        reference = request.path.split("?")[0].rsplit("/manifests/", 1)
        return failing["on"] and request.method == "PUT" and len(reference) == 2 and ":" not in reference[1]

    client = httpx.Client(base_url=f"http://{services.upstream}", timeout=60)
    route = forwarding_registry(client, services.upstream, tag_put)
    with client, HostileServer(route) as registry:
        route.base = registry.url  # type: ignore[attr-defined]
        url = f"{registry.url}/txn{uuid.uuid4().hex[:8]}"
        with pytest.raises(MirrorError) as failed:
            import_bundle(newer, url, trust=trust.policy, limits=replace(DEFAULT_LIMITS, max_attempts=1))
        assert any(r.method == "PUT" and "/blobs/uploads/" in r.path for r in registry.requests), "nothing written"
        assert failed.value.exit_code == 4
        assert "nothing was written" not in f"{failed.value} {failed.value.hint}"
        assert trust.sequence() == 2  # recorded before the first write

        with pytest.raises(VerificationError) as refused:
            import_bundle(older, url, trust=trust.policy, dry_run=True)
        assert "ROLLBACK" in {p.code for p in refused.value.problems}

        failing["on"] = False
        resumed = import_bundle(newer, url, trust=trust.policy)  # the very same bundle: accepted, resumes
        assert [i.status for i in resumed.images] == ["pushed"]
        assert trust.sequence() == 2


def test_a_push_refused_after_registry_writes_exits_4_and_the_report_says_what_was_written(
    tmp_path, mirror_cli, services, git_env, internal_url, target_prefix, trust, collector_key, upstream_images,
    written_repositories,
):  # fmt: skip
    """The upstream Git server answers ls-remote but refuses every push: found only when writing."""
    repo = make_upstream_repo(services, f"t{uuid.uuid4().hex[:8]}/fleet")
    source = {"name": "fleet", "url": repo["url"], "ref": {"branch": "main"}}
    manifest = write_set(tmp_path / "both.yaml", [upstream_images["app_1"]["ref"]], git=[source])
    bundle = collect_signed(manifest, tmp_path / "both", collector_key, 1)
    read_only = f"{services.git_upstream}/{target_prefix}"
    report = tmp_path / "report.json"
    result = mirror_cli(
        "import", bundle, "--trust", trust.policy, "--registry", internal_url, "--git", read_only,
        "--ca-file", services.ca_file, "--report", report, "-q", env=git_env,
    )  # fmt: skip
    assert result.exit_code == 4, result.stderr
    assert "partially imported" in result.stderr and "nothing was written" not in result.stderr
    assert written_repositories() == [f"{target_prefix}/fixtures/app"]
    [failure] = json.loads(report.read_text())["failed"]
    assert failure["written"]["stateRecorded"] is True
    assert failure["written"]["registryWriteRequests"] > 0
    assert failure["written"]["gitPushed"] == []
    assert trust.sequence() == 1


# === quarantine directories of a killed import =================================================================


def test_quarantine_of_a_killed_import_is_removed_by_the_next_and_a_live_one_kept(
    tmp_path, mirror_process, services, git_env, internal_url, target_prefix
):
    repo = make_upstream_repo(services, f"t{uuid.uuid4().hex[:8]}/fleet", history=30)
    manifest = write_set(tmp_path / "git.yaml", [], git=[{"name": "fleet", "url": repo["url"]}])
    assert mirror_process("collect", manifest, "-o", tmp_path / "b", "-q").exit_code == 0
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {**git_env, "TMPDIR": str(scratch)}
    command = [
        str(MIRROR), "import", str(tmp_path / "b"), "--registry", internal_url, "--allow-unsigned",
        "--git", f"{services.git_internal}/{target_prefix}", "--ca-file", str(services.ca_file), "-q",
    ]  # fmt: skip
    quarantines = lambda: sorted(  # noqa: E731 (git's own temporary homes are mirror-git-home-*)
        p.name for p in scratch.iterdir() if p.name.startswith("mirror-git-") and "-home-" not in p.name
    )
    stopped = subprocess.Popen(command, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: bool(quarantines()) or stopped.poll() is not None, "the quarantine directory", 60)
        stopped.send_signal(signal.SIGSTOP)
        assert stopped.poll() is None, "the import ended before it could be stopped"
        found = quarantines()
        assert len(found) == 1, found
        [live] = found
        again = mirror_process(*command[1:], env=env)
        assert again.exit_code == 0, again.stderr
        assert quarantines() == [live], "the quarantine of a live (stopped) import was removed"
        stopped.kill()
        stopped.wait(timeout=60)
    finally:
        if stopped.poll() is None:
            stopped.kill()
            stopped.wait(timeout=60)
    assert quarantines() == [live]  # killed: nobody cleaned it up
    after = mirror_process(*command[1:], env=env)
    assert after.exit_code == 0, after.stderr
    assert quarantines() == []
