"""The services' config files, rendered from scripts/lib/services/*.in for the configured ports."""

from __future__ import annotations

import importlib
import re

import pytest
import yaml

from tests.support.services import REPO_ROOT, ports, services_package

services_package()
configs = importlib.import_module("mirror_services.configs")
layout_module = importlib.import_module("mirror_services.layout")

PLACEHOLDER = re.compile(r"@[a-z_][a-z0-9_]*@")


@pytest.fixture
def rendered(tmp_path):
    layout = layout_module.Layout(tmp_path / "state", REPO_ROOT)
    layout.dir.mkdir()
    configs.write_all(layout, ports.Ports.from_base(25000))
    return layout.dir


def test_every_template_is_used_and_fully_filled(rendered):
    written = sorted(rendered.rglob("config.yml")) + sorted(rendered.rglob("nginx.conf"))
    assert len(written) == 5
    for path in written:
        assert not PLACEHOLDER.search(path.read_text()), path


def test_registries_listen_on_the_configured_ports(rendered):
    addresses = {
        name: yaml.safe_load((rendered / name / "config.yml").read_text())["http"]["addr"]
        for name in ("upstream", "internal", "token")
    }
    assert addresses == {"upstream": "127.0.0.1:25000", "internal": "127.0.0.1:25443", "token": "127.0.0.1:25001"}


def test_the_token_registry_sends_clients_to_the_configured_token_server(rendered):
    config = yaml.safe_load((rendered / "token" / "config.yml").read_text())
    assert config["auth"]["token"]["realm"] == "http://127.0.0.1:25002/token"


def test_the_internal_registry_has_tls_and_basic_auth(rendered):
    config = yaml.safe_load((rendered / "internal" / "config.yml").read_text())
    assert config["http"]["tls"]["certificate"] == str(rendered / "ca" / "server.pem")
    assert config["auth"]["htpasswd"]["path"] == str(rendered / "internal" / "htpasswd")


def test_nginx_listens_on_the_configured_ports_and_both_chart_hosts(rendered):
    charts = (rendered / "charts" / "nginx.conf").read_text()
    git = (rendered / "git" / "nginx.conf").read_text()
    assert re.findall(r"listen (\S+);", charts) == ["127.0.0.1:25080", "127.0.0.2:25080"]
    assert re.findall(r"listen (\S+);", git) == ["127.0.0.1:25090", "127.0.0.1:25091"]


def test_only_the_internal_git_host_allows_push(rendered):
    upstream, internal = (rendered / "git" / "nginx.conf").read_text().split("listen 127.0.0.1:25091;")
    assert "MIRROR_GIT_AUTOCREATE" not in upstream and "return 403;" in upstream
    assert internal.count("MIRROR_GIT_AUTOCREATE 1;") == 1 and "auth_basic_user_file" in internal


def test_a_path_in_single_quotes_stays_one_yaml_string(tmp_path):
    state = tmp_path / "it's: #here"
    state.mkdir()
    configs.write_registry(layout_module.Layout(state, REPO_ROOT), "upstream", 25000)
    config = yaml.safe_load((state / "upstream" / "config.yml").read_text())
    assert config["storage"]["filesystem"]["rootdirectory"] == str(state / "upstream" / "data")


@pytest.mark.parametrize("character", ['"', "$", "\\"])
def test_a_state_path_nginx_cannot_quote_is_refused(tmp_path, character):
    state = tmp_path / f"a{character}b"
    state.mkdir()
    with pytest.raises(layout_module.ServicesError, match="nginx cannot use it"):
        configs.write_charts_nginx(layout_module.Layout(state, REPO_ROOT), ports.Ports.from_base(25000))
