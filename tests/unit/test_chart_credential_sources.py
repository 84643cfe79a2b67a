"""Basic-auth credentials for HTTP chart repositories: where they come from, and the one origin they go to."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import httpx
import pytest

from mirror.collector.httpfetch import HttpFetcher
from mirror.credentials import BoundCredentials, chart_credentials
from mirror.errors import UsageError
from mirror.limits import Limits

REPO = "https://charts.example.com/private"
SECRET = "chart-pa55-SECRET"
ENV = {"MIRROR_CHARTS_USERNAME": "reader", "MIRROR_CHARTS_PASSWORD": SECRET}


def auth_file(tmp_path: Path, auths: dict[str, tuple[str, str]]) -> dict[str, str]:
    entries = {key: {"auth": base64.b64encode(f"{u}:{p}".encode()).decode()} for key, (u, p) in auths.items()}
    path = tmp_path / "auth.json"
    path.write_text(json.dumps({"auths": entries}))
    return {"REGISTRY_AUTH_FILE": str(path)}


def test_env_credentials_are_bound_to_the_one_chart_repository_origin_the_mirrorset_names():
    found = chart_credentials(ENV, named=[REPO, "oci://ghcr.io/org/charts"]).for_url(f"{REPO}/index.yaml")
    assert found == BoundCredentials("reader", SECRET, origins=("https://charts.example.com",))


def test_env_credentials_are_not_given_for_another_origin():
    found = chart_credentials(ENV, named=[REPO])
    assert found.for_url("https://cdn.example.com/private/app-1.0.0.tgz") is None
    assert found.for_url("http://charts.example.com/private/index.yaml") is None  # another scheme: another origin


def test_env_credentials_with_two_named_origins_need_mirror_charts_host():
    named = [REPO, "https://other.example.com/charts"]
    with pytest.raises(UsageError) as caught:
        chart_credentials(ENV, named=named)
    assert "MIRROR_CHARTS_HOST" in caught.value.message + (caught.value.hint or "")
    chosen = chart_credentials({**ENV, "MIRROR_CHARTS_HOST": "other.example.com"}, named=named)
    assert chosen.for_url("https://other.example.com/charts/index.yaml") is not None
    assert chosen.for_url(f"{REPO}/index.yaml") is None


def test_the_auth_file_entry_for_the_repository_host_is_used(tmp_path):
    env = auth_file(tmp_path, {"charts.example.com": ("file-user", "file-pass")})
    found = chart_credentials(env, named=[REPO]).for_url(f"{REPO}/index.yaml")
    assert found == BoundCredentials("file-user", "file-pass", origins=("https://charts.example.com",))


def test_an_auth_file_key_with_a_path_covers_the_repositories_below_it_only(tmp_path):
    env = auth_file(tmp_path, {"charts.example.com/private": ("private-user", "p")})
    found = chart_credentials(env, named=[REPO])
    assert found.for_url(f"{REPO}/app-1.0.0.tgz") is not None
    assert found.for_url("https://charts.example.com/public/index.yaml") is None


def test_env_credentials_win_over_the_auth_file_for_their_origin(tmp_path):
    env = {**auth_file(tmp_path, {"charts.example.com": ("file-user", "file-pass")}), **ENV}
    found = chart_credentials(env, named=[REPO]).for_url(f"{REPO}/index.yaml")
    assert found is not None and found.username == "reader"


# -- the fetcher ---------------------------------------------------------------------------------------------------


def answer(status: int, body: bytes = b"", **headers: str) -> tuple[int, bytes, dict[str, str]]:
    return status, body, headers


def serve(routes: dict[str, tuple[int, bytes, dict[str, str]]], seen: list[httpx.Request]) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        status, body, headers = routes.get(str(request.url), answer(404))
        return httpx.Response(status, headers=headers, stream=httpx.ByteStream(body))

    return httpx.MockTransport(handler)


def fetcher_for(transport: httpx.MockTransport, named: list[str]) -> HttpFetcher:
    return HttpFetcher(
        transport=transport, limits=Limits(max_attempts=1), credentials=chart_credentials(ENV, named=named)
    )


def test_the_fetcher_sends_basic_auth_to_the_repository_origin():
    seen: list[httpx.Request] = []
    routes = {f"{REPO}/index.yaml": answer(200, b"apiVersion: v1\n")}
    with fetcher_for(serve(routes, seen), [REPO]) as fetcher:
        fetcher.get_bytes(f"{REPO}/index.yaml", 1000)
    expected = "Basic " + base64.b64encode(f"reader:{SECRET}".encode()).decode()
    assert [r.headers.get("authorization") for r in seen] == [expected]


def test_the_fetcher_never_sends_the_credentials_after_a_redirect_to_another_origin():
    seen: list[httpx.Request] = []
    elsewhere = "https://cdn.example.com/app-1.0.0.tgz"
    routes = {
        f"{REPO}/app-1.0.0.tgz": answer(302, Location=elsewhere),
        elsewhere: answer(200, b"archive"),
    }
    with fetcher_for(serve(routes, seen), [REPO]) as fetcher:
        assert fetcher.get_bytes(f"{REPO}/app-1.0.0.tgz", 1000) == b"archive"
    assert [str(r.url) for r in seen] == [f"{REPO}/app-1.0.0.tgz", elsewhere]
    assert "authorization" in seen[0].headers
    assert "authorization" not in seen[1].headers


def test_the_fetcher_never_sends_the_credentials_after_an_upgrade_redirect_to_https_on_another_port():
    seen: list[httpx.Request] = []
    plain = "http://charts.example.com/private"
    moved = "https://charts.example.com/private/index.yaml"
    routes = {
        f"{plain}/index.yaml": answer(301, Location=moved),
        moved: answer(200, b"apiVersion: v1\n"),
    }
    with fetcher_for(serve(routes, seen), [plain]) as fetcher:
        fetcher.get_bytes(f"{plain}/index.yaml", 1000)
    assert "authorization" in seen[0].headers and "authorization" not in seen[1].headers


def test_a_refused_chart_repository_says_credentials_without_showing_them():
    seen: list[httpx.Request] = []
    routes = {f"{REPO}/index.yaml": answer(401, **{"WWW-Authenticate": 'Basic realm="charts"'})}
    with fetcher_for(serve(routes, seen), [REPO]) as fetcher, pytest.raises(Exception) as caught:
        fetcher.get_bytes(f"{REPO}/index.yaml", 1000)
    shown = f"{caught.value}"
    assert SECRET not in shown and "401" in shown


@pytest.mark.parametrize("host", ["https://reader:host-pa55@charts.example.com", "https://reader:host-pa55@h/x"])
def test_a_mirror_charts_host_with_userinfo_is_refused_without_echoing_it(host):
    with pytest.raises(UsageError) as caught:
        chart_credentials({**ENV, "MIRROR_CHARTS_HOST": host}, named=[REPO])
    assert "host-pa55" not in caught.value.message + (caught.value.hint or "")


def test_an_archive_the_index_names_over_plain_http_on_its_host_gets_no_credentials(tmp_path):
    # The auth file's entry is for the host; the repository is https. An index naming its archive on http:// (the
    # same host, another origin) must not get the password sent in clear text.
    seen: list[httpx.Request] = []
    downgraded = "http://charts.example.com/private/app-1.0.0.tgz"
    routes = {downgraded: answer(200, b"archive")}
    env = auth_file(tmp_path, {"charts.example.com": ("file-user", "file-pass")})
    fetcher = HttpFetcher(
        transport=serve(routes, seen), limits=Limits(max_attempts=1), credentials=chart_credentials(env, named=[REPO])
    )
    with fetcher, io.BytesIO() as sink:
        fetcher.download(
            downgraded,
            sink,
            expected_sha256=(),
            max_bytes=1000,
            on_bytes=lambda _: None,
            credentials_origin=f"{REPO}/",
        )
    assert [str(r.url) for r in seen] == [downgraded]
    assert "authorization" not in seen[0].headers


def test_an_archive_on_the_index_origin_is_fetched_with_its_credentials(tmp_path):
    seen: list[httpx.Request] = []
    archive = f"{REPO}/app-1.0.0.tgz"
    env = auth_file(tmp_path, {"charts.example.com": ("file-user", "file-pass")})
    fetcher = HttpFetcher(
        transport=serve({archive: answer(200, b"archive")}, seen),
        limits=Limits(max_attempts=1),
        credentials=chart_credentials(env, named=[REPO]),
    )
    with fetcher, io.BytesIO() as sink:
        fetcher.download(
            archive, sink, expected_sha256=(), max_bytes=1000, on_bytes=lambda _: None, credentials_origin=f"{REPO}/"
        )
    assert "authorization" in seen[0].headers
