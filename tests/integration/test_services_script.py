"""scripts/services on a private state directory and port base, beside the shared services.

One set is started for the module; the tests run in order and the last one stops it.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.services import SCRIPT, parse_env, ports

pytestmark = pytest.mark.services


def _free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def _free_base() -> int:
    for _ in range(100):
        base = random.randrange(20000, 60000, 100)
        every = ports.Ports.from_base(base)
        if all(_free(getattr(every, name)) for name in ports.OFFSETS) and _free(every.charts, ports.CHARTS_HOST2):
            return base
    raise RuntimeError("no free port base found")


@dataclass
class PrivateServices:
    directory: Path
    base: int

    @property
    def ports(self) -> Any:  # ports.Ports, from a module loaded by path
        return ports.Ports.from_base(self.base)

    def run(self, *args: str, base: int | None = None) -> subprocess.CompletedProcess[str]:
        environment = {
            **os.environ,
            "MIRROR_SERVICES_DIR": str(self.directory),
            ports.BASE_VARIABLE: str(self.base if base is None else base),
        }
        return subprocess.run(
            [str(SCRIPT), *args], env=environment, capture_output=True, text=True, timeout=120, check=False
        )

    def pid(self, component: str) -> int:
        name = {"gitcgi": "git/fcgiwrap.pid"}.get(component, f"{component}/pid")
        return int((self.directory / name).read_text())


def _processes_naming(text: str) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if entry.name.isdigit() and text in command:
            found.append(f"{entry.name}: {command}")
    return found


def _group(group: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if entry.name.isdigit() and fields[2] == str(group) and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def _wait_until_dead(pid: int, seconds: float = 30) -> None:
    """A SIGKILL takes effect when the process next runs; on a busy machine that is not at once."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
        except OSError:
            return
        if state == "Z":
            return
        time.sleep(0.1)
    raise AssertionError(f"process {pid} still alive {seconds}s after SIGKILL")


@pytest.fixture(scope="module")
def private(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateServices]:
    services = PrivateServices(tmp_path_factory.mktemp("svc"), _free_base())
    started = services.run("start")
    assert started.returncode == 0, started.stderr
    yield services
    services.run("stop")


def test_start_runs_every_service_on_the_ports_of_its_base(private):
    status = private.run("status")
    assert status.returncode == 0, status.stdout
    values = parse_env(private.run("env").stdout)
    assert values["MIRROR_TEST_UPSTREAM"] == f"127.0.0.1:{private.ports.upstream}"
    assert values["MIRROR_TEST_INTERNAL"] == f"127.0.0.1:{private.ports.internal}"
    assert values["MIRROR_TEST_TOKEN_REGISTRY"] == f"127.0.0.1:{private.ports.token}"
    assert values["MIRROR_TEST_CHARTS_URL2"] == f"http://127.0.0.2:{private.ports.charts}"
    assert values["MIRROR_TEST_GIT_INTERNAL"] == f"http://127.0.0.1:{private.ports.git_internal}"
    assert values["MIRROR_SERVICES_DIR"] == str(private.directory)


def test_a_second_start_leaves_the_running_services_alone(private):
    before = {name: private.pid(name) for name in ("upstream", "tokenserver", "git", "gitcgi")}
    again = private.run("start")
    assert again.returncode == 0
    assert again.stdout.count("already running") == 6
    assert {name: private.pid(name) for name in before} == before


def test_without_the_variable_the_recorded_base_is_used(private):
    environment = {**os.environ, "MIRROR_SERVICES_DIR": str(private.directory)}
    environment.pop(ports.BASE_VARIABLE, None)
    done = subprocess.run([str(SCRIPT), "env"], env=environment, capture_output=True, text=True, check=False)
    assert parse_env(done.stdout)["MIRROR_TEST_UPSTREAM"] == f"127.0.0.1:{private.base}"


def test_running_services_are_not_moved_to_another_base(private):
    moved = private.run("start", base=private.base + 1)
    assert moved.returncode == 1
    assert f"port base {private.base}" in moved.stderr
    assert private.run("status").returncode == 0


def test_a_killed_nginx_master_is_restarted_and_its_orphaned_worker_ended(private):
    master = private.pid("git")
    os.kill(master, signal.SIGKILL)
    _wait_until_dead(master)
    assert private.run("status", "git").returncode == 3
    restarted = private.run("start", "git")
    assert restarted.returncode == 0, restarted.stderr
    assert "ended nginx processes left by a dead leader" in restarted.stderr
    assert _group(master) == []
    assert "probe 200/200" in private.run("status", "git").stdout


def test_a_pid_file_naming_another_process_is_neither_trusted_nor_killed(private):
    assert private.run("stop", "upstream").returncode == 0
    with subprocess.Popen(["sleep", "60"]) as stranger:
        (private.directory / "upstream" / "pid").write_text(f"{stranger.pid}\n")
        assert "upstream     stopped" in private.run("status", "upstream").stdout
        assert private.run("stop", "upstream").stdout == "upstream: not running\n"
        started = private.run("start", "upstream")
        assert started.returncode == 0, started.stderr
        assert stranger.poll() is None
        stranger.kill()
    assert private.pid("upstream") != stranger.pid


def test_a_port_taken_by_another_process_is_named(private):
    assert private.run("stop", "charts").returncode == 0
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # the probes' connections linger in TIME_WAIT
        squatter.bind(("127.0.0.1", private.ports.charts))
        squatter.listen()
        refused = private.run("start", "charts")
    assert refused.returncode == 1
    assert f"127.0.0.1:{private.ports.charts} is in use" in refused.stderr
    assert private.run("start", "charts").returncode == 0


def test_stop_leaves_no_process_behind(private):
    groups = [private.pid(name) for name in ("upstream", "internal", "token", "tokenserver", "charts", "git", "gitcgi")]
    stopped = private.run("stop")
    assert stopped.returncode == 0
    assert stopped.stdout.count(": stopped") == 6
    assert _processes_naming(str(private.directory)) == []
    assert [group for group in groups if _group(group)] == []
    assert private.run("status").returncode == 3
