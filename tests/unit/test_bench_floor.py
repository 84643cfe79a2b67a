"""tests/support/benchfloor.py: the requests the night's floor sends are those of a nothing-changed night."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from mirror.oci import mediatypes as mt
from tests.support.benchfloor import cpu_bound_seconds, night_requests_config, process_cpu_seconds, service_cpu_seconds

REFERENCES = ["registry.test:5000/night/img0:1", "registry.test:5000/night/img1:1", "registry.test:5000/night/img1:2"]


def _requests(config: str) -> list[tuple[bool, str]]:
    """(is a HEAD, url) per request of a curl config, requests separated by `next`."""
    requests = []
    for block in config.split("\nnext\n")[1:]:
        lines = block.splitlines()
        url = next(line.split('"')[1] for line in lines if line.startswith("url = "))
        requests.append(("head" in lines, url))
    return requests


def test_the_night_floor_heads_each_image_lists_each_repository_once_and_probes_referrers_once() -> None:
    requests = _requests(night_requests_config(REFERENCES))
    assert requests == [
        (True, "http://registry.test:5000/v2/night/img0/manifests/1"),
        (True, "http://registry.test:5000/v2/night/img1/manifests/1"),
        (True, "http://registry.test:5000/v2/night/img1/manifests/2"),
        (False, "http://registry.test:5000/v2/night/img0/tags/list"),
        (False, "http://registry.test:5000/v2/night/img1/tags/list"),
        (False, "http://registry.test:5000/v2/night/img0/referrers/sha256:" + "0" * 64),
    ]


def test_every_request_of_the_night_floor_asks_for_manifests_as_mirror_does() -> None:
    blocks = night_requests_config(REFERENCES).split("\nnext\n")[1:]
    assert len(blocks) == 6
    assert all(f'header = "Accept: {mt.ACCEPT}"' in block.splitlines() for block in blocks)


def test_process_cpu_seconds_is_the_user_and_system_time_the_kernel_counts_for_the_process() -> None:
    deadline = time.process_time() + 0.2
    while time.process_time() < deadline:  # spend CPU, so that a wrong field (a start time, a count) shows
        pass
    assert process_cpu_seconds(os.getpid()) == pytest.approx(time.process_time(), abs=0.05)


def test_service_cpu_seconds_reads_the_pid_file_the_services_script_writes(tmp_path: Path) -> None:
    (tmp_path / "upstream").mkdir()
    (tmp_path / "upstream" / "pid").write_text(f"{os.getpid()}\n")
    seconds = service_cpu_seconds(tmp_path, "upstream")
    assert seconds is not None and seconds == pytest.approx(time.process_time(), abs=0.05)


@pytest.mark.parametrize("pid_file", [None, "", "not a pid\n", "999999999\n"])
def test_service_cpu_seconds_is_unknown_without_a_running_service(tmp_path: Path, pid_file: str | None) -> None:
    (tmp_path / "upstream").mkdir()
    if pid_file is not None:
        (tmp_path / "upstream" / "pid").write_text(pid_file)
    assert service_cpu_seconds(tmp_path, "upstream") is None


def test_the_cpu_bound_is_the_work_of_both_processes_spread_over_every_core() -> None:
    assert cpu_bound_seconds(0.75, 0.85, cores=2) == pytest.approx(0.8)
