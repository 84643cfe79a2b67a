"""The services' processes: pid files checked against pid reuse, launch in a session of their
own, stop, and the end of processes a dead leader left behind."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from .files import non_empty
from .layout import ORPHAN_COMM, Layout, ServicesError, components_of
from .probes import port_open


def _wait(condition: Callable[[], bool], seconds: float, step: float = 0.1) -> bool:
    """Poll until ``condition`` holds or ``seconds`` pass; the last answer."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() >= deadline:
            return False
        time.sleep(step)
    return True


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after "(comm)": state, ppid, pgrp, ..."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rpartition(")")[2].split()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    fields = _stat_fields(pid)
    # A zombie still answers kill -0.
    return not (fields and fields[0] == "Z")


def recorded_pid(layout: Layout, component: str) -> int | None:
    path = layout.pidfile(component)
    if not non_empty(path):
        return None
    text = path.read_text(errors="replace").strip()
    return int(text) if text.isdigit() else None


def running_pid(layout: Layout, component: str) -> int | None:
    """The component's pid if the process in its pid file is alive and is ours."""
    pid = recorded_pid(layout, component)
    if pid is None or not _alive(pid):
        return None
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return pid  # no /proc: kill -0 is all there is
    return pid if layout.signature(component) in command else None


def service_pid(layout: Layout, service: str) -> int | None:
    """The main component's pid if every component of the service is alive."""
    pid = None
    for component in components_of(service):
        pid = running_pid(layout, component)
        if pid is None:
            return None
    return pid


def group_pids(group: int, comm: str) -> list[int]:
    """Live (not zombie) processes in process group ``group`` whose program name is ``comm``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if not fields or fields[0] == "Z" or fields[2] != str(group):
            continue
        try:
            if (entry / "comm").read_text().strip() == comm:
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def _kill(pid: int, sig: int) -> bool:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def reap_orphans(layout: Layout, component: str, ports: Sequence[int]) -> None:
    """End what a dead leader left in its process group: nginx workers outlive a SIGKILLed master
    and keep serving the port; fcgiwrap's preforked children outlive their parent (even a SIGTERM
    to the parent alone) and keep accepting on the socket. setsid at launch made the leader's pid
    the group id."""
    comm = ORPHAN_COMM.get(component)
    group = recorded_pid(layout, component)
    if comm is None or group is None:
        return
    ended = [pid for pid in group_pids(group, comm) if _kill(pid, signal.SIGKILL)]
    if ended:
        print(f"{component}: ended {comm} processes left by a dead leader (process group {group})", file=sys.stderr)
        _wait(
            lambda: (
                not group_pids(group, comm) and (component == "gitcgi" or not any(port_open(port) for port in ports))
            ),
            10,
        )


def stop_component(layout: Layout, component: str, ports: Sequence[int]) -> bool:
    """Stop one component; True if it was running."""
    pid = running_pid(layout, component)
    if pid is None:
        reap_orphans(layout, component, ports)
        layout.pidfile(component).unlink(missing_ok=True)
        return False
    comm = ORPHAN_COMM.get(component)
    # fcgiwrap: the whole group, its parent alone leaves the preforked children running.
    _kill(-pid if component == "gitcgi" else pid, signal.SIGTERM)
    if not _wait(lambda: running_pid(layout, component) is None, 10):
        _kill(pid, signal.SIGKILL)
        if comm:  # nginx workers and fcgiwrap children share the leader's group
            _kill(-pid, signal.SIGKILL)
        _wait(lambda: running_pid(layout, component) is None, 5)
    if comm:
        # Give the rest of the group a moment to follow the leader, then end what is left.
        _wait(lambda: not group_pids(pid, comm), 3)
        reap_orphans(layout, component, ports)
    layout.pidfile(component).unlink(missing_ok=True)
    if component == "gitcgi":
        layout.git_socket.unlink(missing_ok=True)
    return True


def stop_service(layout: Layout, service: str, ports: Sequence[int]) -> bool:
    """Stop every component of a service, in reverse start order; True if any was running."""
    stopped = [stop_component(layout, component, ports) for component in reversed(components_of(service))]
    return any(stopped)


def launch(layout: Layout, component: str, command: Sequence[str]) -> int:
    """Start one component in a new session (it outlives the caller's process group, and its pid
    is its group's id) with a clean environment (REGISTRY_* variables cannot override the config);
    its output appends to its log. Returns its pid, recorded in its pid file."""
    pidfile = layout.pidfile(component)
    pidfile.unlink(missing_ok=True)
    environment = {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/"),
        "LANG": "C.UTF-8",
    }
    started = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    with open(layout.logfile(component), "ab") as log:
        log.write(f"\n=== {component} start {started}: {' '.join(command)}\n".encode())
        log.flush()
        try:
            process = subprocess.Popen(
                list(command),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env=environment,
                start_new_session=True,
                close_fds=True,
            )
        except OSError as exc:
            raise ServicesError(f"{component}: cannot run {command[0]}: {exc}") from exc
    pidfile.write_text(f"{process.pid}\n")
    if component == "gitcgi":
        # nginx connects to the socket per request, but answers 502 until it exists.
        _wait(layout.git_socket.is_socket, 2.5, step=0.05)
    return process.pid
