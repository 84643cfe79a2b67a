"""The services, their processes ("components") and where each keeps its files.

The layout is the bash script's, kept so either version can stop what the other started:
``<dir>/<service>/{pid,log}``, the git service's fcgiwrap as ``<dir>/git/fcgiwrap.pid`` beside
nginx's ``<dir>/git/pid``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .ports import Ports

SERVICES = ("upstream", "internal", "token", "tokenserver", "charts", "git")
# A service's processes, each with its own pid file; started in this order, stopped in reverse.
_COMPONENTS = {"git": ("gitcgi", "git")}
# The program name of a component whose processes can outlive their leader (nginx workers after
# a SIGKILLed master, fcgiwrap's preforked children): those left in its process group are ended.
ORPHAN_COMM = {"charts": "nginx", "git": "nginx", "gitcgi": "fcgiwrap"}


class ServicesError(Exception):
    """A failure scripts/services reports as ``services: <message>`` and exit status 1."""


def components_of(service: str) -> tuple[str, ...]:
    return _COMPONENTS.get(service, (service,))


def ports_of(service: str, ports: Ports) -> list[int]:
    """Every port a service listens on (on 127.0.0.1)."""
    if service == "git":
        return [ports.git_upstream, ports.git_internal]
    return [getattr(ports, service)]


@dataclass(frozen=True)
class Layout:
    dir: Path
    root: Path  # the repository

    @property
    def git_socket(self) -> Path:
        return self.dir / "git" / "fcgiwrap.sock"

    @property
    def git_wrapper(self) -> Path:
        return self.root / "scripts" / "lib" / "git-http-wrapper"

    def pidfile(self, component: str) -> Path:
        if component == "gitcgi":
            return self.dir / "git" / "fcgiwrap.pid"
        return self.dir / component / "pid"

    def logfile(self, component: str) -> Path:
        if component == "gitcgi":
            return self.dir / "git" / "log"
        return self.dir / component / "log"

    def signature(self, component: str) -> str:
        """A string in the process's command line, to guard against pid reuse."""
        if component == "tokenserver":
            return "tokenserver.py"
        if component in ("charts", "git"):
            return str(self.dir / component / "nginx.conf")
        if component == "gitcgi":
            return f"unix:{self.git_socket}"
        return str(self.dir / component / "config.yml")
