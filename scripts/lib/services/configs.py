"""Config files of the services, rendered from the ``*.in`` templates beside this module.

Templates mark values as ``@name@`` (nginx keeps its own ``$variables``); every value is quoted
for its file format here, before it is substituted. Each file is rewritten on every start.
"""

from __future__ import annotations

import grp
import os
import shutil
import string
import subprocess
from pathlib import Path

from .files import replace_file
from .layout import Layout, ServicesError
from .ports import CHARTS_HOST2, HOST, Ports

TEMPLATES = Path(__file__).resolve().parent
TOKEN_SERVICE = "mirror-token-test"
TOKEN_ISSUER = "mirror-test-issuer"


class ConfigTemplate(string.Template):
    delimiter = "@"
    pattern = r"""
        @(?:
          (?P<escaped>@) |
          (?P<named>[a-z_][a-z0-9_]*)@ |
          (?P<braced>(?!)) |
          (?P<invalid>)
        )
    """


def render(template: str, **values: str) -> str:
    text = (TEMPLATES / template).read_text(encoding="utf-8")
    return ConfigTemplate(text).substitute(values)


def yaml_quote(value: str) -> str:
    """A single-quoted YAML scalar."""
    return "'" + value.replace("'", "''") + "'"


def nginx_quote(value: str) -> str:
    """A double-quoted nginx string; nginx expands $variables in some directives (root), so a
    path that would need more than quoting is refused."""
    if any(c in value for c in '"$\\'):
        raise ServicesError(f"nginx: the path {value} contains a quote, $ or backslash; nginx cannot use it")
    return f'"{value}"'


def nginx_binary() -> str | None:
    found = shutil.which("nginx")
    if found:
        return found
    return "/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None


def _nginx_build_options() -> str:
    nginx = nginx_binary()
    if nginx is None:  # still write the config (`env` must work); launching fails clearly
        return ""
    done = subprocess.run([nginx, "-V"], capture_output=True, text=True, check=False)
    return done.stdout + done.stderr


def write_registry(layout: Layout, name: str, port: int, extra: str = "") -> None:
    directory = layout.dir / name
    (directory / "data").mkdir(parents=True, exist_ok=True)
    text = render("registry.yml.in", name=name, data_dir=yaml_quote(str(directory / "data")), listen=f"{HOST}:{port}")
    replace_file(directory / "config.yml", (text + extra).encode())


def _nginx_common(directory: Path) -> str:
    (directory / "tmp").mkdir(parents=True, exist_ok=True)
    built = _nginx_build_options()
    # A directive of a module built --without-... is a fatal "unknown directive".
    temp_paths = [
        f"  {module}_temp_path {nginx_quote(str(directory / 'tmp' / module))};"
        for module in ("proxy", "fastcgi", "uwsgi", "scgi")
        if f"--without-http_{module}_module" not in built
    ]
    # As root, workers would drop to `nobody`, which may not reach the state directory (or
    # fcgiwrap's socket): keep them as root. As another user nginx ignores `user` with a warning,
    # so leave it out; the workers run as the invoking user, like fcgiwrap.
    user_line = f"user root {grp.getgrgid(os.getgid()).gr_name};" if os.geteuid() == 0 else ""
    return render(
        "nginx-common.conf.in",
        user_line=user_line,
        pid_file=nginx_quote(str(directory / "nginx.pid")),
        error_log=nginx_quote(str(directory / "log")),
        access_log=nginx_quote(str(directory / "access.log")),
        client_body_temp=nginx_quote(str(directory / "tmp" / "client_body")),
        temp_paths="\n".join(temp_paths),
    ).rstrip("\n")


def write_charts_nginx(layout: Layout, ports: Ports) -> None:
    directory = layout.dir / "charts"
    (directory / "www").mkdir(parents=True, exist_ok=True)
    text = render(
        "nginx-charts.conf.in",
        common=_nginx_common(directory),
        listen=f"{HOST}:{ports.charts}",
        listen2=f"{CHARTS_HOST2}:{ports.charts}",
        www=nginx_quote(str(directory / "www")),
        htpasswd=nginx_quote(str(directory / "htpasswd")),
    )
    (directory / "www" / "private").mkdir(exist_ok=True)
    replace_file(directory / "nginx.conf", text.encode())


def _fastcgi_params(layout: Layout, project_root: Path, push: bool = False) -> str:
    params = render(
        "git-fastcgi.conf.in",
        socket=nginx_quote(f"unix:{layout.git_socket}"),
        wrapper=nginx_quote(str(layout.git_wrapper)),
        project_root=nginx_quote(str(project_root)),
        git=nginx_quote(shutil.which("git") or "git"),
    )
    if push:
        params += render("git-fastcgi-push.conf.in")
    return params.rstrip("\n")


def write_git_nginx(layout: Layout, ports: Ports) -> None:
    directory = layout.dir / "git"
    for repositories in ("upstream", "internal"):
        (directory / repositories).mkdir(parents=True, exist_ok=True)
    text = render(
        "nginx-git.conf.in",
        common=_nginx_common(directory),
        listen_upstream=f"{HOST}:{ports.git_upstream}",
        listen_internal=f"{HOST}:{ports.git_internal}",
        htpasswd=nginx_quote(str(directory / "htpasswd")),
        upstream_params=_fastcgi_params(layout, directory / "upstream"),
        internal_params=_fastcgi_params(layout, directory / "internal"),
        internal_push_params=_fastcgi_params(layout, directory / "internal", push=True),
    )
    replace_file(directory / "nginx.conf", text.encode())


def write_all(layout: Layout, ports: Ports) -> None:
    write_registry(layout, "upstream", ports.upstream)
    internal = render(
        "registry-internal.yml.in",
        certificate=yaml_quote(str(layout.dir / "ca" / "server.pem")),
        key=yaml_quote(str(layout.dir / "ca" / "server.key")),
        htpasswd=yaml_quote(str(layout.dir / "internal" / "htpasswd")),
    )
    write_registry(layout, "internal", ports.internal, internal)
    token = render(
        "registry-token.yml.in",
        tokenserver=ports.address("tokenserver"),
        service=TOKEN_SERVICE,
        issuer=TOKEN_ISSUER,
        rootcertbundle=yaml_quote(str(layout.dir / "token" / "signing.pem")),
    )
    write_registry(layout, "token", ports.token, token)
    write_charts_nginx(layout, ports)
    write_git_nginx(layout, ports)
