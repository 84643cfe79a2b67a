"""Collecting through an HTTP(S) proxy: a local recording proxy sees what a corporate one would (docs/collector.md)."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.charts import seed_charts
from tests.support.connectproxy import RecordingProxy, recording_proxy
from tests.support.gitrepos import internal_url as git_internal_url
from tests.support.gitrepos import make_upstream_repo
from tests.support.images import skopeo_copy
from tests.support.mirrorsets import mirrorset

PROXY_USER = "proxy-user"
PROXY_PASSWORD = "proxy-pa55-s3cret-for-the-test"


@pytest.fixture
def proxy() -> Iterator[RecordingProxy]:
    with recording_proxy() as running:
        yield running


@pytest.fixture
def guarded_proxy() -> Iterator[RecordingProxy]:
    """A proxy that wants Basic credentials (407 without them)."""
    with recording_proxy((PROXY_USER, PROXY_PASSWORD)) as running:
        yield running


@pytest.fixture(scope="module")
def internal_image(services, upstream_images) -> dict:
    """fixtures/app:1.0 on the internal registry: HTTPS, and Basic auth for every request."""
    app = upstream_images["app_1"]
    target = f"{services.internal}/proxytest-{uuid.uuid4().hex[:8]}/app:1.0"
    skopeo_copy(
        f"docker://{app['ref']}",
        f"docker://{target}",
        "--src-tls-verify=false",
        f"--dest-cert-dir={services.cert_dir}",
        f"--dest-creds={services.internal_user}:{services.internal_password}",
    )
    return {"ref": target, "digest": app["digest"]}


@pytest.fixture
def auth_file(tmp_path, services) -> str:
    path = tmp_path / "auth.json"
    secret = base64.b64encode(f"{services.internal_user}:{services.internal_password}".encode()).decode()
    path.write_text(json.dumps({"auths": {services.internal: {"auth": secret}}}))
    return str(path)


def _manifest(tmp_path: Path, images: list, *, git: list | None = None, registries: dict | None = None) -> Path:
    document = mirrorset(images, registries=registries)
    if git:
        document["spec"]["git"] = git
    path = tmp_path / f"proxy-{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(json.dumps(document))
    return path


def _collect_internal(run, tmp_path, services, internal_image, auth_file, *extra: str, env: dict | None = None):
    return run(
        "collect",
        _manifest(tmp_path, [internal_image["ref"]]),
        "-o",
        tmp_path / f"b-{uuid.uuid4().hex[:6]}",
        "--ca-file",
        services.ca_file,
        "--json",
        *extra,
        env={"REGISTRY_AUTH_FILE": auth_file, **(env or {})},
    )


# -- HTTPS through CONNECT --------------------------------------------------------------------------------------


def test_https_registry_with_auth_is_reached_through_connect_only(
    tmp_path, services, mirror_cli, proxy, internal_image, auth_file
):
    result = _collect_internal(mirror_cli, tmp_path, services, internal_image, auth_file, "--proxy", proxy.url)
    assert result.exit_code == 0, result.stderr
    assert result.json()["artifacts"][0]["digest"] == internal_image["digest"]
    assert proxy.seen, "nothing went through the proxy"
    assert {(s.method, s.target) for s in proxy.seen} == {("CONNECT", services.internal)}


def test_registry_credentials_never_reach_the_proxy(tmp_path, services, mirror_cli, proxy, internal_image, auth_file):
    result = _collect_internal(mirror_cli, tmp_path, services, internal_image, auth_file, "--proxy", proxy.url)
    assert result.exit_code == 0, result.stderr
    assert proxy.seen
    assert all("authorization" not in s.header_names() for s in proxy.seen)
    assert all(services.internal_password not in repr(s) for s in proxy.seen)


def test_collected_bytes_through_the_proxy_are_the_upstream_image(
    tmp_path, services, mirror_cli, proxy, internal_image, auth_file
):
    out = tmp_path / "through-proxy"
    result = mirror_cli(
        "collect",
        _manifest(tmp_path, [internal_image["ref"]]),
        "-o",
        out,
        "--ca-file",
        services.ca_file,
        "--proxy",
        proxy.url,
        "-q",
        env={"REGISTRY_AUTH_FILE": auth_file},
    )
    assert result.exit_code == 0, result.stderr
    blobs = sorted((out / "blobs" / "sha256").iterdir())
    assert blobs
    for blob in blobs:  # every blob is the bytes its name says
        assert hashlib.sha256(blob.read_bytes()).hexdigest() == blob.name
    assert (out / "blobs" / "sha256" / internal_image["digest"].removeprefix("sha256:")).is_file()


# -- the environment: ignored unless MIRROR_USE_ENV_PROXY=1 ---------------------------------------------------------


def _proxy_env(url: str) -> dict[str, str]:
    return {"HTTPS_PROXY": url, "HTTP_PROXY": url, "https_proxy": url, "http_proxy": url}


def test_environment_proxy_is_not_used_without_opt_in(tmp_path, services, mirror_cli, proxy, internal_image, auth_file):
    result = _collect_internal(mirror_cli, tmp_path, services, internal_image, auth_file, env=_proxy_env(proxy.url))
    assert result.exit_code == 0, result.stderr
    assert proxy.seen == []


def test_environment_proxy_is_used_with_mirror_use_env_proxy(
    tmp_path, services, mirror_cli, proxy, internal_image, auth_file
):
    env = {**_proxy_env(proxy.url), "MIRROR_USE_ENV_PROXY": "1"}
    result = _collect_internal(mirror_cli, tmp_path, services, internal_image, auth_file, env=env)
    assert result.exit_code == 0, result.stderr
    assert {s.method for s in proxy.seen} == {"CONNECT"}


def test_no_proxy_from_the_environment_sends_its_hosts_direct(
    tmp_path, services, mirror_cli, proxy, internal_image, auth_file
):
    env = {**_proxy_env(proxy.url), "MIRROR_USE_ENV_PROXY": "1", "NO_PROXY": f"example.com,{services.internal}"}
    result = _collect_internal(mirror_cli, tmp_path, services, internal_image, auth_file, env=env)
    assert result.exit_code == 0, result.stderr
    assert proxy.seen == []


def test_no_proxy_flag_sends_its_hosts_direct(tmp_path, services, mirror_cli, proxy, internal_image, auth_file):
    host = services.internal.rpartition(":")[0]
    result = _collect_internal(
        mirror_cli, tmp_path, services, internal_image, auth_file, "--proxy", proxy.url, "--no-proxy", host
    )
    assert result.exit_code == 0, result.stderr
    assert proxy.seen == []


# -- proxy credentials ------------------------------------------------------------------------------------------


def _with_credentials(proxy: RecordingProxy, password: str = PROXY_PASSWORD) -> str:
    return f"http://{PROXY_USER}:{password}@{proxy.address}"


def test_proxy_credentials_go_as_proxy_authorization_only(
    tmp_path, services, mirror_cli, guarded_proxy, internal_image, auth_file
):
    result = _collect_internal(
        mirror_cli, tmp_path, services, internal_image, auth_file, "--proxy", _with_credentials(guarded_proxy)
    )
    assert result.exit_code == 0, result.stderr
    expected = "Basic " + base64.b64encode(f"{PROXY_USER}:{PROXY_PASSWORD}".encode()).decode()
    assert guarded_proxy.seen
    assert all(s.header("Proxy-Authorization") == expected for s in guarded_proxy.seen)
    assert all("authorization" not in s.header_names() for s in guarded_proxy.seen)


def test_proxy_password_is_never_printed(tmp_path, services, mirror_process, guarded_proxy, internal_image, auth_file):
    report = tmp_path / "report.json"
    result = _collect_internal(
        mirror_process,
        tmp_path,
        services,
        internal_image,
        auth_file,
        "--proxy",
        _with_credentials(guarded_proxy),
        "--report",
        report,
        "--log-format",
        "json",
        env={"MIRROR_DEBUG": "1"},
    )
    assert result.exit_code == 0, result.stderr
    assert PROXY_PASSWORD not in result.stdout + result.stderr + report.read_text()


def test_refused_proxy_credentials_exit_4_without_printing_them(
    tmp_path, services, mirror_process, guarded_proxy, internal_image, auth_file
):
    wrong = "wrong-proxy-password-1234"
    result = _collect_internal(
        mirror_process,
        tmp_path,
        services,
        internal_image,
        auth_file,
        "--proxy",
        _with_credentials(guarded_proxy, wrong),
    )
    assert result.exit_code == 4, result.stderr
    assert "407" in result.stderr
    assert wrong not in result.stdout + result.stderr


def test_proxy_credentials_from_the_environment_are_never_printed(
    tmp_path, services, mirror_process, guarded_proxy, internal_image, auth_file
):
    env = {"HTTPS_PROXY": "http://nobody:wrong-env-password-99@" + guarded_proxy.address, "MIRROR_USE_ENV_PROXY": "1"}
    result = _collect_internal(mirror_process, tmp_path, services, internal_image, auth_file, env=env)
    assert result.exit_code == 4, result.stderr
    assert "wrong-env-password-99" not in result.stdout + result.stderr


# -- plain HTTP through the proxy -------------------------------------------------------------------------------


def test_plain_http_registry_without_auth_is_forwarded_by_the_proxy(
    tmp_path, services, mirror_cli, proxy, upstream_images
):
    app = upstream_images["app_1"]
    result = mirror_cli(
        "collect",
        _manifest(tmp_path, [app["ref"]], registries={services.upstream: {"plainHTTP": True}}),
        "-o",
        tmp_path / "b",
        "--proxy",
        proxy.url,
        "--json",
        "-q",
    )
    assert result.exit_code == 0, result.stderr
    assert result.json()["artifacts"][0]["digest"] == app["digest"]
    assert proxy.seen
    assert all(s.target.startswith(f"http://{services.upstream}/v2/") for s in proxy.seen)


def test_plain_http_registry_asking_for_auth_through_the_proxy_is_refused(
    tmp_path, services, mirror_cli, proxy, upstream_images
):
    """The token registry: plain HTTP, bearer tokens. An Authorization header in clear text would cross the proxy."""
    ref = f"{services.token_registry}/secured/app:1.0"
    result = mirror_cli(
        "resolve",
        _manifest(tmp_path, [ref], registries={services.token_registry: {"plainHTTP": True}}),
        "--proxy",
        proxy.url,
    )
    assert result.exit_code == 2, result.stderr
    assert "plain HTTP" in result.stderr and "proxy" in result.stderr
    assert all("authorization" not in s.header_names() for s in proxy.seen)


def test_chart_repository_index_and_archive_are_fetched_through_the_proxy(tmp_path, services, mirror_cli, proxy):
    repo_url = seed_charts(services)["repo"]["url"]
    manifest = _manifest(tmp_path, [], registries={services.upstream: {"plainHTTP": True}})
    document = json.loads(manifest.read_text())
    document["spec"]["charts"] = [{"name": "app", "repo": repo_url, "version": "1.0.0"}]
    manifest.write_text(json.dumps(document))
    result = mirror_cli("resolve", manifest, "--proxy", proxy.url, "--json")
    assert result.exit_code == 0, result.stderr
    targets = [s.target for s in proxy.seen]
    assert f"{repo_url}/index.yaml" in targets
    assert any(t.startswith(repo_url) and t.endswith(".tgz") for t in targets)


def test_a_file_of_spec_files_is_fetched_through_the_proxy(tmp_path, services, mirror_cli, proxy):
    name = f"files-{uuid.uuid4().hex[:8]}"
    (services.charts_dir / name).mkdir()
    data = b"#!/bin/sh\necho through the proxy\n"
    (services.charts_dir / name / "install.sh").write_bytes(data)
    url = f"{services.charts_url}/{name}/install.sh"
    manifest = _manifest(tmp_path, [])
    document = json.loads(manifest.read_text())
    document["spec"]["files"] = [{"url": url, "sha256": hashlib.sha256(data).hexdigest()}]
    manifest.write_text(json.dumps(document))
    result = mirror_cli("collect", manifest, "-o", tmp_path / "b", "--proxy", proxy.url, "-q")
    assert result.exit_code == 0, result.stderr
    assert [s.line for s in proxy.seen] == [f"GET {url} HTTP/1.1"]


# -- git --------------------------------------------------------------------------------------------------------


@pytest.fixture
def repo(services) -> dict:
    return make_upstream_repo(services, f"t{uuid.uuid4().hex[:8]}/fleet")


def test_git_source_is_fetched_through_the_proxy(tmp_path, services, mirror_cli, guarded_proxy, repo):
    result = mirror_cli(
        "collect",
        _manifest(tmp_path, [], git=[{"name": "fleet", "url": repo["url"], "ref": {"branch": "main"}}]),
        "-o",
        tmp_path / "b",
        "--proxy",
        _with_credentials(guarded_proxy),
        "--json",
        "-q",
    )
    assert result.exit_code == 0, result.stderr
    [artifact] = result.json()["artifacts"]
    assert artifact["kind"] == "git"
    upstream = repo["url"].split("://", 1)[1].split("/", 1)[0]
    assert guarded_proxy.seen
    assert all(s.target.startswith(f"http://{upstream}/") for s in guarded_proxy.seen)
    assert all(s.header("Proxy-Authorization") for s in guarded_proxy.seen)


def test_git_credentials_are_not_sent_through_the_proxy_over_plain_http(tmp_path, services, mirror_cli, proxy):
    url = git_internal_url(services, f"t{uuid.uuid4().hex[:8]}/private")
    result = mirror_cli(
        "resolve",
        _manifest(tmp_path, [], git=[{"name": "private", "url": url, "ref": {"branch": "main"}}]),
        "--proxy",
        proxy.url,
        env={"MIRROR_GIT_USERNAME": services.git_user, "MIRROR_GIT_PASSWORD": services.git_password},
    )
    assert result.exit_code == 2, result.stderr
    assert "plain HTTP" in result.stderr and "proxy" in result.stderr
    assert all("authorization" not in s.header_names() for s in proxy.seen)


def test_git_ignores_environment_proxies_without_opt_in(tmp_path, services, mirror_cli, proxy, repo):
    result = mirror_cli(
        "resolve",
        _manifest(tmp_path, [], git=[{"name": "fleet", "url": repo["url"], "ref": {"branch": "main"}}]),
        env=_proxy_env(proxy.url),
    )
    assert result.exit_code == 0, result.stderr
    assert proxy.seen == []


# -- egress -----------------------------------------------------------------------------------------------------


def test_proxy_host_needs_no_allowed_hosts_entry_and_is_listed_among_the_hosts_contacted(
    tmp_path, services, mirror_cli, proxy, internal_image, auth_file
):
    report = tmp_path / "report.json"
    result = _collect_internal(
        mirror_cli, tmp_path, services, internal_image, auth_file, "--proxy", proxy.url, "--report", report
    )
    assert result.exit_code == 0, result.stderr
    hosts = json.loads(report.read_text())["hosts"]
    assert {"host": proxy.address, "how": "proxy"} in hosts
    assert {"host": services.internal, "how": "named"} in hosts


# -- the high side ----------------------------------------------------------------------------------------------


def test_import_never_uses_a_proxy_even_with_the_environment_opt_in(
    tmp_path, services, mirror_cli, proxy, upstream_images, internal_url, internal_env
):
    app = upstream_images["app_1"]
    bundle = tmp_path / "b"
    collected = mirror_cli(
        "collect",
        _manifest(tmp_path, [app["ref"]], registries={services.upstream: {"plainHTTP": True}}),
        "-o",
        bundle,
        "-q",
    )
    assert collected.exit_code == 0, collected.stderr
    env = {**internal_env, **_proxy_env(proxy.url), "MIRROR_USE_ENV_PROXY": "1"}
    imported = mirror_cli(
        "import", bundle, "--registry", internal_url, "--allow-unsigned", "--ca-file", services.ca_file, "-q", env=env
    )
    assert imported.exit_code == 0, imported.stderr
    assert proxy.seen == []


def test_git_through_a_proxy_refusing_its_credentials_exits_4_without_printing_them(
    tmp_path, services, mirror_process, guarded_proxy, repo
):
    wrong = "wrong-git-proxy-password-77"
    result = mirror_process(
        "resolve",
        _manifest(tmp_path, [], git=[{"name": "fleet", "url": repo["url"], "ref": {"branch": "main"}}]),
        "--proxy",
        _with_credentials(guarded_proxy, wrong),
    )
    assert result.exit_code == 4, result.stderr
    assert "proxy" in result.stderr and "407" in result.stderr
    assert wrong not in result.stdout + result.stderr
