"""scripts/services: start, stop, status and env of the local services (see scripts/services)."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from . import configs, material, ports
from .layout import SERVICES, Layout, ServicesError, components_of, ports_of
from .probes import port_open, status_of
from .processes import launch, service_pid, stop_service

GIT_CGI_CHILDREN = 4
# sun_path holds 108 bytes with the final NUL.
SOCKET_PATH_MAX = 107
USAGE = "usage: scripts/services {start|stop|status} [SERVICE...] | scripts/services env"


class Context:
    def __init__(self, directory: Path) -> None:
        self.layout = Layout(directory, ports.REPO_ROOT)
        self.ports = ports.configured(directory=directory)

    def label(self, service: str) -> str:
        return ",".join(str(port) for port in ports_of(service, self.ports))


def _python() -> str:
    venv = ports.REPO_ROOT / ".venv" / "bin" / "python"
    return str(venv) if os.access(venv, os.X_OK) else sys.executable


def _binary(name: str, package: str, *fallbacks: str) -> str:
    for candidate in (shutil.which(name), *fallbacks):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise ServicesError(f"{name} not found (install the {package} package)")


def _registry_binary() -> str:
    found = shutil.which("docker-registry") or shutil.which("registry")
    if not found:
        raise ServicesError("docker-registry not found (install the docker-registry package)")
    return found


def _nginx_command(directory: Path) -> list[str]:
    nginx = configs.nginx_binary()
    if nginx is None:
        raise ServicesError("nginx not found (install the nginx-light package)")
    command = [nginx, "-p", f"{directory}/"]
    # -e (since nginx 1.19.5): the error log used before nginx.conf is read, instead of the
    # compiled-in default, which may be /var/log/nginx/error.log and unwritable.
    usage = subprocess.run([nginx, "-h"], capture_output=True, text=True, check=False)
    if "-e filename" in usage.stdout + usage.stderr:
        command += ["-e", str(directory / "log")]
    return [*command, "-c", str(directory / "nginx.conf")]


def command_of(context: Context, component: str) -> list[str]:
    layout, directory = context.layout, context.layout.dir
    if component == "tokenserver":
        token = directory / "token"
        return [
            _python(),
            str(layout.root / "tests" / "support" / "tokenserver.py"),
            "--listen",
            context.ports.address("tokenserver"),
            "--cert",
            str(token / "signing.pem"),
            "--key",
            str(token / "signing.key"),
            "--issuer",
            configs.TOKEN_ISSUER,
            "--service",
            configs.TOKEN_SERVICE,
            "--user",
            material.TOKEN_USER,
            "--password-file",
            str(token / "password"),
            "--log",
            str(token / "requests.log"),
        ]
    if component in ("charts", "git"):
        return _nginx_command(directory / component)
    if component == "gitcgi":
        _binary("git", "git")
        if not os.access(layout.git_wrapper, os.X_OK):
            raise ServicesError(f"git: {layout.git_wrapper} is missing or not executable")
        socket = str(layout.git_socket)
        if len(socket.encode()) > SOCKET_PATH_MAX:
            raise ServicesError(
                f"git: the socket path {socket} is longer than {SOCKET_PATH_MAX} bytes; "
                "use a shorter MIRROR_SERVICES_DIR"
            )
        # fcgiwrap does not remove a stale socket; bind() would fail.
        layout.git_socket.unlink(missing_ok=True)
        # -c: preforked children, so a long fetch does not hold up other requests; -p: run
        # nothing but the wrapper.
        fcgiwrap = _binary("fcgiwrap", "fcgiwrap", "/usr/sbin/fcgiwrap")
        return [fcgiwrap, "-c", str(GIT_CGI_CHILDREN), "-s", f"unix:{socket}", "-p", str(layout.git_wrapper)]
    return [_registry_binary(), "serve", str(directory / component / "config.yml")]


def probe(context: Context, service: str) -> str:
    """The HTTP status of the service's probe URL ("000" without an answer); for git both hosts,
    through fcgiwrap and the CGI wrapper, as "<upstream>/<internal>"."""
    p = context.ports
    if service == "git":
        upstream = status_of(f"http://{p.address('git_upstream')}/.healthz")
        internal = status_of(f"http://{p.address('git_internal')}/.healthz")
        return f"{upstream}/{internal}"
    if service == "internal":
        return status_of(f"https://{p.address('internal')}/v2/", context.layout.dir / "ca" / "ca.pem")
    path = {"tokenserver": "/healthz", "charts": "/.healthz"}.get(service, "/v2/")
    return status_of(f"http://{p.address(service)}{path}")


def ready(context: Context, service: str) -> bool:
    code = probe(context, service)
    if service in ("tokenserver", "charts"):
        return code == "200"
    if service == "git":
        return code == "200/200"
    return code in ("200", "401")


@contextmanager
def locked(directory: Path, seconds: float = 120) -> Iterator[None]:
    """One scripts/services (bash or Python) at a time per state directory."""
    with open(directory / ".lock", "a") as lock:
        deadline = time.monotonic() + seconds
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise ServicesError(f"could not lock {directory / '.lock'}") from None
                time.sleep(0.2)
        yield


def prepare(context: Context) -> None:
    """Material and configs for the configured ports; refuses to move running services."""
    directory = context.layout.dir
    # Services running without a record were started by the bash script, on the default base.
    recorded = ports.recorded_base(directory) or ports.DEFAULT_BASE
    if recorded != context.ports.base:
        running = [service for service in SERVICES if service_pid(context.layout, service) is not None]
        if running:
            raise ServicesError(
                f"{', '.join(running)} run in {directory} with port base {recorded}, not {context.ports.base}; "
                f"stop them first or unset {ports.BASE_VARIABLE}"
            )
    material.prepare_all(context.layout)
    configs.write_all(context.layout, context.ports)
    ports.record_base(directory, context.ports.base)


def _fail_with_log(context: Context, service: str, message: str) -> None:
    log = context.layout.logfile(service)
    try:
        tail = "".join(log.read_text(errors="replace").splitlines(keepends=True)[-40:])
    except OSError:
        tail = ""
    print(f"services: {service}: {message}\n---- last lines of {log} ----\n{tail}----", file=sys.stderr)


def _stop_quietly(context: Context, service: str) -> bool:
    return stop_service(context.layout, service, ports_of(service, context.ports))


def _timeout() -> float:
    text = os.environ.get("MIRROR_SERVICES_TIMEOUT") or "20"
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1
    if not 0 < seconds < 3600:
        raise ServicesError(f"MIRROR_SERVICES_TIMEOUT: expected seconds (0 to 3600), got {text!r}")
    return seconds


def start(context: Context, selected: Sequence[str]) -> int:
    directory = context.layout.dir
    timeout = _timeout()
    prepare(context)
    started = []
    for service in selected:
        pid = service_pid(context.layout, service)
        if pid is not None:
            print(f"{service}: already running (pid {pid}, 127.0.0.1:{context.label(service)})")
            continue
        # Ends leftovers of a dead process, and what still runs of a service that is only partly
        # up (git: nginx without fcgiwrap, or the reverse).
        _stop_quietly(context, service)
        for port in ports_of(service, context.ports):
            if port_open(port):
                raise ServicesError(
                    f"{service}: 127.0.0.1:{port} is in use by a process this script did not start with state dir "
                    f"{directory} (another MIRROR_SERVICES_DIR, or set {ports.BASE_VARIABLE}? see: ss -ltnp)"
                )
        # Every command first: a missing program stops the start before a component runs.
        commands = {component: command_of(context, component) for component in components_of(service)}
        for component, command in commands.items():
            launch(context.layout, component, command)
        started.append(service)
    deadline = time.monotonic() + timeout
    failed = False
    for service in selected:
        while not ready(context, service):
            if service_pid(context.layout, service) is None:
                _fail_with_log(context, service, "exited during startup")
                failed = True
                break
            if time.monotonic() >= deadline:
                _fail_with_log(
                    context,
                    service,
                    f"not answering on 127.0.0.1:{context.label(service)} after {timeout:g}s "
                    f"(last probe: {probe(context, service)})",
                )
                _stop_quietly(context, service)
                failed = True
                break
            time.sleep(0.2)
    if failed:
        return 1
    for service in started:
        print(
            f"{service}: started (pid {service_pid(context.layout, service)}, "
            f"127.0.0.1:{context.label(service)}, log {context.layout.logfile(service)})"
        )
    return 0


def stop(context: Context, selected: Sequence[str]) -> int:
    for service in selected:
        print(f"{service}: {'stopped' if _stop_quietly(context, service) else 'not running'}")
    return 0


def status(context: Context, selected: Sequence[str]) -> int:
    result = 0
    for service in selected:
        pid = service_pid(context.layout, service) if context.layout.dir.is_dir() else None
        if pid is None:
            print(f"{service:<12} stopped")
            result = 3
        else:
            label = f"127.0.0.1:{context.label(service)}"
            print(f"{service:<12} running  pid {pid:<8} {label:<16} probe {probe(context, service)}")
    return result


def shell_quote(value: str) -> str:
    return "'" + value.replace("'", "'\\''") + "'"


def env(context: Context) -> int:
    prepare(context)
    d, p = context.layout.dir, context.ports
    values = {
        "MIRROR_TEST_UPSTREAM": p.address("upstream"),
        "MIRROR_TEST_INTERNAL": p.address("internal"),
        "MIRROR_TEST_CA": str(d / "ca" / "ca.pem"),
        "MIRROR_TEST_CERT_DIR": str(d / "ca" / "certs.d"),
        "MIRROR_TEST_INTERNAL_USER": material.INTERNAL_USER,
        "MIRROR_TEST_INTERNAL_PASSWORD": material.read_password(d / "internal" / "password"),
        "MIRROR_TEST_TOKEN_REGISTRY": p.address("token"),
        "MIRROR_TEST_TOKEN_USER": material.TOKEN_USER,
        "MIRROR_TEST_TOKEN_PASSWORD": material.read_password(d / "token" / "password"),
        "MIRROR_TEST_TOKEN_LOG": str(d / "token" / "requests.log"),
        "MIRROR_TEST_CHARTS_URL": f"http://{p.address('charts')}",
        "MIRROR_TEST_CHARTS_URL2": f"http://{ports.CHARTS_HOST2}:{p.charts}",
        "MIRROR_TEST_CHARTS_DIR": str(d / "charts" / "www"),
        "MIRROR_TEST_CHARTS_USER": material.CHARTS_USER,
        "MIRROR_TEST_CHARTS_PASSWORD": material.read_password(d / "charts" / "password"),
        "MIRROR_TEST_GIT_UPSTREAM": f"http://{p.address('git_upstream')}",
        "MIRROR_TEST_GIT_INTERNAL": f"http://{p.address('git_internal')}",
        "MIRROR_TEST_GIT_USER": material.GIT_USER,
        "MIRROR_TEST_GIT_PASSWORD": material.read_password(d / "git" / "password"),
        "MIRROR_TEST_GIT_UPSTREAM_DIR": str(d / "git" / "upstream"),
        "MIRROR_TEST_GIT_INTERNAL_DIR": str(d / "git" / "internal"),
        "MIRROR_SERVICES_DIR": str(d),
        ports.BASE_VARIABLE: str(p.base),
    }
    for name, value in values.items():
        print(f"export {name}={shell_quote(value)}")
    return 0


def main(argv: Sequence[str]) -> int:
    command, names = (argv[0], list(argv[1:])) if argv else ("", [])
    if command not in ("start", "stop", "status", "env"):
        print(USAGE, file=sys.stderr)
        return 2
    try:
        if command == "env" and names:
            raise ServicesError("env takes no arguments")
        unknown = [name for name in names if name not in SERVICES]
        if unknown:
            raise ServicesError(f"unknown service {unknown[0]} (known: {' '.join(SERVICES)})")
        selected = names or list(SERVICES)
        directory = ports.state_dir()
        if command == "status":
            return status(Context(directory.resolve()), selected)
        if command == "stop" and not directory.is_dir():
            return 0
        directory.mkdir(parents=True, exist_ok=True)
        directory = directory.resolve()
        with locked(directory):
            context = Context(directory)
            if command == "start":
                return start(context, selected)
            if command == "stop":
                return stop(context, selected)
            return env(context)
    except (ServicesError, ports.PortsError) as error:
        print(f"services: {error}", file=sys.stderr)
        return 1
