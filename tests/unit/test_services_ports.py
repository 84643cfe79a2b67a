"""Where the local services listen: one place (scripts/lib/services/ports.py), one base."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.support.services import REPO_ROOT, ports

DEFAULTS = {
    "upstream": 15000,
    "internal": 15443,
    "token": 15001,
    "tokenserver": 15002,
    "charts": 15080,
    "git_upstream": 15090,
    "git_internal": 15091,
}


def _ports(environ: dict[str, str], directory: Path):
    return ports.configured(environ=environ, directory=directory)


def test_without_a_base_the_services_keep_their_usual_ports(tmp_path):
    configured = _ports({}, tmp_path)
    assert {name: getattr(configured, name) for name in DEFAULTS} == DEFAULTS


def test_a_base_moves_every_port_by_the_same_offset(tmp_path):
    configured = _ports({ports.BASE_VARIABLE: "25000"}, tmp_path)
    assert {name: getattr(configured, name) for name in DEFAULTS} == {
        name: port + 10000 for name, port in DEFAULTS.items()
    }


def test_a_recorded_base_is_used_when_the_variable_is_unset(tmp_path):
    ports.record_base(tmp_path, 31000)
    assert _ports({}, tmp_path).upstream == 31000


def test_the_variable_wins_over_the_recorded_base(tmp_path):
    ports.record_base(tmp_path, 31000)
    assert _ports({ports.BASE_VARIABLE: "32000"}, tmp_path).upstream == 32000


@pytest.mark.parametrize("value", ["abc", "-1", "15000x", "80", "65500"])
def test_an_unusable_base_is_refused_naming_the_variable(tmp_path, value):
    with pytest.raises(ports.PortsError, match=ports.BASE_VARIABLE):
        _ports({ports.BASE_VARIABLE: value}, tmp_path)


def test_a_corrupt_record_is_refused_naming_the_file(tmp_path):
    (tmp_path / ports.RECORD_NAME).write_text("not a port\n")
    with pytest.raises(ports.PortsError, match=re.escape(str(tmp_path / ports.RECORD_NAME))):
        _ports({}, tmp_path)


def test_no_test_names_a_service_port_literally():
    """Tests take addresses from the services fixture or tests.support.services, so a second set of
    services on another base runs the same suite."""
    literal = re.compile(r"127\.0\.0\.[12]:(" + "|".join(str(port) for port in DEFAULTS.values()) + r")\b")
    offenders = [
        f"{path.relative_to(REPO_ROOT)}:{number}: {line.strip()}"
        for path in sorted((REPO_ROOT / "tests").rglob("*.py"))
        if "node_modules" not in path.parts
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if literal.search(line)
    ]
    assert offenders == []
