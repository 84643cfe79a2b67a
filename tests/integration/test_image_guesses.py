"""Images a chart only guessed (a tag from appVersion): a wrong guess is left out with a warning, never a failed
collect; an image the chart states is carried or fails the collect as a listed one does (docs/collector.md)."""

from __future__ import annotations

import json
import socket
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.support.charts import ChartRepo, build_chart
from tests.support.mirrorsets import mirrorset
from tests.support.services import CHARTS_ADDRESS, UPSTREAM_REGISTRY

# A chart that renders no image of its own: what it uses is found in its values only, so a repository without a tag
# there is a guess (appVersion) that nothing confirms.
CONFIG_ONLY_TEMPLATE = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-settings
data:
  mode: quiet
"""


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _env_template(image: str, guessed: str) -> str:
    """A Deployment running `image`, whose env names `guessed` (an operator's RELATED_IMAGE: a guess)."""
    return f"""\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: operator
spec:
  selector:
    matchLabels: {{app: operator}}
  template:
    metadata:
      labels: {{app: operator}}
    spec:
      containers:
        - name: operator
          image: "{image}"
          env:
            - name: RELATED_IMAGE
              value: "{guessed}"
"""


def _chart_repo(services: Any, image: dict[str, str], template: str = CONFIG_ONLY_TEMPLATE) -> str:
    """An HTTP chart repository with one chart `guesser` 1.0.0 (appVersion 1.0.0) whose values name `image`."""
    name = f"guess-{uuid.uuid4().hex[:8]}"
    repo = ChartRepo(services.charts_dir / name, f"{services.charts_url}/{name}")
    repo.add(
        build_chart(
            "guesser",
            "1.0.0",
            values={"image": image},
            extra_files={"templates/deployment.yaml": template},
        )
    )
    repo.write_index()
    return repo.base_url


def _manifest(tmp_path: Path, chart_repo: str, listed: list[str]) -> Path:
    document = mirrorset(listed, registries={UPSTREAM_REGISTRY: {"plainHTTP": True}})
    document["spec"]["charts"] = [{"name": "guesser", "repo": chart_repo, "images": True}]
    path = tmp_path / f"guesses-{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(json.dumps(document))
    return path


def _collect(mirror_process: Any, manifest: Path, out: Path, env: dict[str, str] | None = None) -> Any:
    return mirror_process("collect", manifest, "-o", out, "--json", "--allow-discovered-hosts", env=env)


@pytest.fixture
def unreachable() -> str:
    """host:port of a registry nobody listens on."""
    return f"127.0.0.1:{_closed_port()}"


def test_a_guessed_image_on_an_unreachable_host_is_left_out_with_one_warning(
    tmp_path, mirror_process, services, upstream_images, unreachable
):
    chart_repo = _chart_repo(services, {"repository": f"{unreachable}/team/app"})
    listed = upstream_images["app_1"]["ref"]
    result = _collect(mirror_process, _manifest(tmp_path, chart_repo, [listed]), tmp_path / "b")
    assert result.exit_code == 0, result.stderr
    summary = result.json()
    carried = {a["source"] for a in summary["artifacts"] if a["kind"] == "image"}
    assert carried == {listed}
    [warning] = [w for w in summary["warnings"] if w["code"] == "IMAGE_GUESS_UNREACHABLE"]
    assert f"{unreachable}/team/app:1.0.0" in warning["message"]
    assert "cannot reach" in warning["message"]
    shown = [line for line in result.stderr.splitlines() if f"{unreachable}/team/app:1.0.0" in line]
    assert len([line for line in shown if "left out" in line]) == 1


def test_an_image_guessed_from_an_env_value_on_an_unreachable_host_is_left_out(
    tmp_path, mirror_process, services, upstream_images, unreachable
):
    from tests.support.helmtool import real_helm

    used = upstream_images["app_1"]["ref"]
    template = _env_template(used, f"{unreachable}/team/helper:2.1")
    chart_repo = _chart_repo(services, {"repository": used.rsplit(":", 1)[0], "tag": "1.0"}, template)
    manifest = _manifest(tmp_path, chart_repo, [])
    result = _collect(mirror_process, manifest, tmp_path / "b", env={"MIRROR_HELM": real_helm()})
    assert result.exit_code == 0, result.stderr
    summary = result.json()
    assert {a["source"] for a in summary["artifacts"] if a["kind"] == "image"} == {used}
    [warning] = [w for w in summary["warnings"] if w["code"] == "IMAGE_GUESS_UNREACHABLE"]
    assert f"{unreachable}/team/helper:2.1" in warning["message"]


def test_a_guessed_image_on_a_host_whose_tls_handshake_fails_is_left_out(tmp_path, mirror_process, services):
    # The chart repository's nginx speaks plain HTTP only: a registry client speaking TLS to it fails the handshake.
    chart_repo = _chart_repo(services, {"repository": f"{CHARTS_ADDRESS}/team/app"})
    result = _collect(mirror_process, _manifest(tmp_path, chart_repo, []), tmp_path / "b")
    assert result.exit_code == 0, result.stderr
    [warning] = [w for w in result.json()["warnings"] if w["code"] == "IMAGE_GUESS_UNREACHABLE"]
    assert f"{CHARTS_ADDRESS}/team/app:1.0.0: {CHARTS_ADDRESS} cannot be reached" in warning["message"]


def test_a_guessed_image_on_a_registry_that_denies_access_is_left_out(tmp_path, mirror_process, services):
    # The internal registry asks for credentials (basic auth), and this collect has none for it: a 401.
    chart_repo = _chart_repo(services, {"repository": f"{services.internal}/team/app"})
    manifest = _manifest(tmp_path, chart_repo, [])
    empty_auth = tmp_path / "auth.json"
    empty_auth.write_text("{}")
    env = {"SSL_CERT_FILE": str(services.ca_file), "REGISTRY_AUTH_FILE": str(empty_auth)}
    result = _collect(mirror_process, manifest, tmp_path / "b", env=env)
    assert result.exit_code == 0, result.stderr
    [warning] = [w for w in result.json()["warnings"] if w["code"] == "IMAGE_GUESS_UNREACHABLE"]
    assert f"{services.internal} refuses it" in warning["message"] and "401" in warning["message"]


def test_the_warning_can_be_acknowledged(tmp_path, mirror_process, services, upstream_images, unreachable):
    chart_repo = _chart_repo(services, {"repository": f"{unreachable}/team/app"})
    manifest = _manifest(tmp_path, chart_repo, [upstream_images["app_1"]["ref"]])
    document = json.loads(manifest.read_text())
    document["spec"]["acknowledge"] = [{"code": "IMAGE_GUESS_UNREACHABLE", "reason": "the chart's guess, checked"}]
    manifest.write_text(json.dumps(document))
    result = _collect(mirror_process, manifest, tmp_path / "b")
    assert result.exit_code == 0, result.stderr
    summary = result.json()
    assert [a["code"] for a in summary["acknowledged"]] == ["IMAGE_GUESS_UNREACHABLE"]
    assert not [w for w in summary["warnings"] if w["code"] == "IMAGE_GUESS_UNREACHABLE"]


def test_an_image_the_chart_states_on_an_unreachable_host_fails_the_collect(
    tmp_path, mirror_process, services, upstream_images, unreachable
):
    chart_repo = _chart_repo(services, {"repository": f"{unreachable}/team/app", "tag": "1.0.0"})
    result = _collect(
        mirror_process, _manifest(tmp_path, chart_repo, [upstream_images["app_1"]["ref"]]), tmp_path / "b"
    )
    assert result.exit_code == 4
    assert unreachable in result.stderr
    assert "left out" not in result.stderr
    assert not (tmp_path / "b").exists()


def test_a_guess_on_a_host_a_listed_image_needs_fails_the_collect(tmp_path, mirror_process, services, unreachable):
    chart_repo = _chart_repo(services, {"repository": f"{unreachable}/team/app"})
    manifest = _manifest(tmp_path, chart_repo, [f"{unreachable}/team/other:2.0"])
    result = _collect(mirror_process, manifest, tmp_path / "b")
    assert result.exit_code == 4
    assert "left out" not in result.stderr
    assert not (tmp_path / "b").exists()
