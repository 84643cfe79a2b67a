"""A private HTTP chart repository (the charts nginx's /private/, basic auth) read with credentials from a
containers auth file or from MIRROR_CHARTS_USERNAME/MIRROR_CHARTS_PASSWORD; they never go to another origin."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from pathlib import Path

import pytest

from tests.support.charts import ChartRepo, build_chart
from tests.support.mirrorsets import mirrorset
from tests.support.services import CHARTS_ADDRESS, CHARTS_ADDRESS2


@pytest.fixture
def private_repo(services) -> ChartRepo:
    name = f"private/repo-{uuid.uuid4().hex[:8]}"
    repo = ChartRepo(services.charts_dir / name, f"{services.charts_url}/{name}")
    repo.add(build_chart("secret-app", "1.0.0"))
    repo.write_index()
    return repo


def manifest(tmp_path: Path, repo_url: str) -> Path:
    document = mirrorset([])
    document["spec"]["charts"] = [{"name": "secret-app", "repo": repo_url, "images": {"discover": False}}]
    document["spec"]["allowedHosts"] = [CHARTS_ADDRESS2]
    path = tmp_path / f"charts-{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(json.dumps(document))
    return path


def auth_file(tmp_path: Path, key: str, user: str, password: str) -> str:
    secret = base64.b64encode(f"{user}:{password}".encode()).decode()
    path = tmp_path / "auth.json"
    path.write_text(json.dumps({"auths": {key: {"auth": secret}}}))
    return str(path)


def no_credentials(tmp_path: Path) -> dict[str, str]:
    """An environment where no auth file of the machine's user is found."""
    return {"REGISTRY_AUTH_FILE": str(tmp_path / "none.json")}


def test_a_private_chart_repository_is_read_with_the_auth_file_entry_for_its_host(
    tmp_path, services, mirror_process, private_repo
):
    env = {"REGISTRY_AUTH_FILE": auth_file(tmp_path, CHARTS_ADDRESS, services.charts_user, services.charts_password)}
    result = mirror_process("resolve", manifest(tmp_path, private_repo.base_url), "--json", env=env)
    assert result.exit_code == 0, result.stderr
    [chart] = [a for a in json.loads(result.stdout)["artifacts"] if a["kind"] == "chart"]
    assert chart["version"] == "1.0.0"


def test_a_private_chart_repository_is_collected_with_mirror_charts_username_and_password(
    tmp_path, services, mirror_process, private_repo
):
    env = {
        **no_credentials(tmp_path),
        "MIRROR_CHARTS_USERNAME": services.charts_user,
        "MIRROR_CHARTS_PASSWORD": services.charts_password,
    }
    result = mirror_process("collect", manifest(tmp_path, private_repo.base_url), "-o", tmp_path / "b", env=env)
    assert result.exit_code == 0, result.stderr
    assert services.charts_password not in result.stdout + result.stderr


def test_a_private_chart_repository_without_credentials_exits_4_asking_for_them(tmp_path, mirror_process, private_repo):
    result = mirror_process("resolve", manifest(tmp_path, private_repo.base_url), env=no_credentials(tmp_path))
    assert result.exit_code == 4
    assert "401" in result.stderr and "MIRROR_CHARTS_USERNAME" in result.stderr


def test_refused_chart_credentials_exit_4_without_printing_the_password(
    tmp_path, services, mirror_process, private_repo
):
    wrong = "not-the-charts-password-4321"
    env = {"REGISTRY_AUTH_FILE": auth_file(tmp_path, CHARTS_ADDRESS, services.charts_user, wrong)}
    result = mirror_process("resolve", manifest(tmp_path, private_repo.base_url), env=env)
    assert result.exit_code == 4
    assert wrong not in result.stdout + result.stderr


def test_chart_credentials_never_go_with_an_archive_the_index_names_on_another_host(tmp_path, services, mirror_process):
    # The private index names its archive on 127.0.0.2 (another origin), served there without auth: the archive
    # arrives, and nginx's access log shows no user name on that request (it logs the Basic user it was sent).
    name = f"private/elsewhere-{uuid.uuid4().hex[:8]}"
    public = f"public-{uuid.uuid4().hex[:8]}"
    archive = build_chart("secret-app", "1.0.0")
    ChartRepo(services.charts_dir / public, f"{services.charts_url2}/{public}").add(archive)
    repo = ChartRepo(services.charts_dir / name, f"{services.charts_url}/{name}")
    repo.add(archive, url_override=f"{services.charts_url2}/{public}/secret-app-1.0.0.tgz")
    repo.write_index()
    env = {
        **no_credentials(tmp_path),
        "MIRROR_CHARTS_USERNAME": services.charts_user,
        "MIRROR_CHARTS_PASSWORD": services.charts_password,
    }
    result = mirror_process("collect", manifest(tmp_path, repo.base_url), "-o", tmp_path / "b", env=env)
    assert result.exit_code == 0, result.stderr
    log = (services.services_dir / "charts" / "access.log").read_text().splitlines()
    index_lines = [line for line in log if f"/{name}/index.yaml" in line]
    archive_lines = [line for line in log if f"/{public}/secret-app-1.0.0.tgz" in line]
    assert index_lines and all(f" - {services.charts_user} [" in line for line in index_lines)
    assert archive_lines and all(" - - [" in line for line in archive_lines)


def test_a_file_on_a_private_location_is_collected_with_the_auth_file_entry_for_its_host(
    tmp_path, services, mirror_process
):
    name = f"private/files-{uuid.uuid4().hex[:8]}"
    (services.charts_dir / name).mkdir(parents=True)
    data = b"#!/bin/sh\necho private install\n"
    (services.charts_dir / name / "install.sh").write_bytes(data)
    document = mirrorset([])
    document["spec"] = {
        "files": [{"url": f"{services.charts_url}/{name}/install.sh", "sha256": hashlib.sha256(data).hexdigest()}]
    }
    path = tmp_path / "files.yaml"
    path.write_text(json.dumps(document))
    env = {"REGISTRY_AUTH_FILE": auth_file(tmp_path, CHARTS_ADDRESS, services.charts_user, services.charts_password)}
    result = mirror_process("collect", path, "-o", tmp_path / "b", env=env)
    assert result.exit_code == 0, result.stderr
    refused = mirror_process("collect", path, "-o", tmp_path / "b2", env=no_credentials(tmp_path))
    assert refused.exit_code == 4 and "401" in refused.stderr
