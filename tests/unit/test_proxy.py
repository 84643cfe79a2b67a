"""Which upstream goes through which proxy (mirror.proxy): the opt-in, NO_PROXY, credentials kept out of sight."""

from __future__ import annotations

import httpx
import pytest

from mirror.errors import UsageError
from mirror.git.runner import Transport, run_git
from mirror.proxy import (
    ClearTextThroughProxyError,
    ProxyAuthenticationError,
    ProxyRouter,
    ProxySettings,
    git_proxy_config,
    parse_no_proxy,
    parse_proxy_url,
    proxy_settings,
)

PROXY = "http://proxy.corp.example:3128"
SECRET = "s3cr3t/pa ss"


def _bypassed(no_proxy: str, url: str) -> bool:
    settings = ProxySettings(parse_proxy_url(PROXY, "t"), parse_proxy_url(PROXY, "t"), parse_no_proxy(no_proxy, "t"))
    return settings.for_url(url) is None


# -- the opt-in -------------------------------------------------------------------------------------------------


def test_environment_proxies_are_ignored_without_the_opt_in():
    assert proxy_settings(env={"HTTPS_PROXY": PROXY, "HTTP_PROXY": PROXY, "https_proxy": PROXY}) is None


def test_environment_proxies_are_read_with_mirror_use_env_proxy_1():
    settings = proxy_settings(env={"HTTPS_PROXY": PROXY, "MIRROR_USE_ENV_PROXY": "1"})
    assert settings is not None
    assert settings.for_url("https://ghcr.io/v2/") == parse_proxy_url(PROXY, "t")


def test_https_proxy_serves_https_upstreams_only():
    settings = proxy_settings(env={"HTTPS_PROXY": PROXY, "MIRROR_USE_ENV_PROXY": "1"})
    assert settings is not None
    assert settings.for_url("http://charts.example/index.yaml") is None


def test_upper_case_variables_win_over_lower_case():
    env = {"HTTPS_PROXY": PROXY, "https_proxy": "http://other.example:8080", "MIRROR_USE_ENV_PROXY": "1"}
    settings = proxy_settings(env=env)
    assert settings is not None and settings.https is not None
    assert settings.https.host == "proxy.corp.example"


def test_lower_case_variables_are_read_too():
    settings = proxy_settings(env={"https_proxy": PROXY, "no_proxy": "ghcr.io", "MIRROR_USE_ENV_PROXY": "1"})
    assert settings is not None
    assert settings.for_url("https://ghcr.io/v2/") is None
    assert settings.for_url("https://quay.io/v2/") is not None


def test_proxy_flag_overrides_the_environment():
    settings = proxy_settings("http://flag.example:8080", env={"HTTPS_PROXY": PROXY, "MIRROR_USE_ENV_PROXY": "1"})
    assert settings is not None and settings.https is not None and settings.http is not None
    assert (settings.https.host, settings.http.host) == ("flag.example", "flag.example")


def test_opt_in_takes_only_1_or_0():
    with pytest.raises(UsageError, match="MIRROR_USE_ENV_PROXY"):
        proxy_settings(env={"MIRROR_USE_ENV_PROXY": "yes"})


# -- proxy URLs -------------------------------------------------------------------------------------------------


def test_proxy_url_without_scheme_is_http():
    assert parse_proxy_url("proxy.example:3128", "t").shown == "http://proxy.example:3128"


def test_socks_proxies_are_refused():
    with pytest.raises(UsageError, match="not supported"):
        parse_proxy_url("socks5://proxy.example:1080", "--proxy")


def test_proxy_url_with_a_path_is_refused():
    with pytest.raises(UsageError, match="no path"):
        parse_proxy_url("http://proxy.example:3128/x", "--proxy")


def test_proxy_credentials_are_percent_decoded():
    server = parse_proxy_url("http://us%40er:s3cr3t%2Fpa%20ss@proxy.example:3128", "--proxy")
    assert (server.username, server.password) == ("us@er", SECRET)


def test_proxy_password_is_never_shown_nor_in_the_repr():
    server = parse_proxy_url("http://user:s3cr3t%2Fpa%20ss@proxy.example:3128", "--proxy")
    assert server.shown == "http://proxy.example:3128"
    assert SECRET not in repr(server) and "s3cr3t" not in repr(server)


def test_a_bad_proxy_url_is_refused_without_echoing_its_password():
    with pytest.raises(UsageError) as refused:
        parse_proxy_url("http://user:hunter2-secret@proxy.example:notaport", "--proxy")
    assert "hunter2-secret" not in str(refused.value) + (refused.value.hint or "")


@pytest.mark.parametrize("separator", ["/", "#", "?", "["])
def test_a_password_with_an_unencoded_separator_is_refused_without_echoing_any_of_it(separator):
    # urlsplit ends the host part at the separator, and then reads the password's first part as the port.
    with pytest.raises(UsageError) as refused:
        parse_proxy_url(f"http://user:hunter2-secret{separator}rest@proxy.example:3128", "--proxy")
    assert "hunter2" not in str(refused.value) + (refused.value.hint or "")


# -- NO_PROXY, as curl and Go read it ---------------------------------------------------------------------------


def test_no_proxy_domain_covers_itself_and_every_host_below_it():
    assert _bypassed("example.com", "https://example.com/x")
    assert _bypassed("example.com", "https://registry.example.com/x")
    assert not _bypassed("example.com", "https://notexample.com/x")


def test_no_proxy_leading_dot_covers_only_hosts_below_the_domain():
    assert _bypassed(".example.com", "https://registry.example.com/x")
    assert not _bypassed(".example.com", "https://example.com/x")


def test_no_proxy_star_dot_is_read_as_a_leading_dot():
    assert _bypassed("*.example.com", "https://a.example.com/x")
    assert not _bypassed("*.example.com", "https://example.com/x")


def test_no_proxy_star_alone_bypasses_every_host():
    assert _bypassed("*", "https://anything.example/x")


def test_no_proxy_ip_address_and_cidr_range():
    assert _bypassed("10.1.2.3", "http://10.1.2.3:5000/v2/")
    assert _bypassed("10.0.0.0/8", "https://10.200.0.1/v2/")
    assert not _bypassed("10.0.0.0/8", "https://11.0.0.1/v2/")


def test_no_proxy_ipv6_address():
    assert _bypassed("::1", "https://[::1]:5000/v2/")
    assert _bypassed("[fd00::1]:5000", "https://[fd00::1]:5000/v2/")


def test_no_proxy_with_a_port_covers_that_port_only():
    assert _bypassed("registry.example:5000", "https://registry.example:5000/v2/")
    assert not _bypassed("registry.example:5000", "https://registry.example/v2/")
    assert _bypassed("registry.example:443", "https://registry.example/v2/")


def test_no_proxy_is_case_insensitive_with_spaces_and_empty_entries():
    assert _bypassed(" , Example.COM ,,", "https://REGISTRY.example.com/")


def test_loopback_is_proxied_unless_listed():
    """Unlike Go, mirror does not bypass localhost on its own: the operator's list decides."""
    assert not _bypassed("", "https://127.0.0.1:5000/v2/")


def test_no_proxy_entry_that_is_not_a_host_is_refused():
    with pytest.raises(UsageError, match="NO_PROXY"):
        parse_no_proxy("https://example.com/path", "NO_PROXY")


# -- httpx: the router ------------------------------------------------------------------------------------------


def _router(settings: ProxySettings) -> tuple[ProxyRouter, list[tuple[str, str]]]:
    used: list[tuple[str, str]] = []

    def make(through: httpx.Proxy | None) -> httpx.BaseTransport:
        name = "direct" if through is None else str(through.url)

        def answer(request: httpx.Request) -> httpx.Response:
            used.append((name, str(request.url)))
            return httpx.Response(200)

        return httpx.MockTransport(answer)

    return ProxyRouter(settings, make), used


def test_router_sends_each_host_its_own_way():
    settings = proxy_settings(PROXY, "direct.example", env={})
    assert settings is not None
    router, used = _router(settings)
    with httpx.Client(transport=router) as client:
        client.get("https://ghcr.io/v2/")
        client.get("https://direct.example/v2/")
    assert used == [(PROXY, "https://ghcr.io/v2/"), ("direct", "https://direct.example/v2/")]


def test_router_refuses_authorization_over_proxied_plain_http():
    settings = proxy_settings(PROXY, env={})
    assert settings is not None
    router, used = _router(settings)
    with httpx.Client(transport=router) as client, pytest.raises(ClearTextThroughProxyError, match="plain HTTP"):
        client.get("http://registry.example/v2/", headers={"Authorization": "Basic eDp5"})
    assert used == []


def test_router_lets_authorization_through_a_connect_tunnel_and_direct_plain_http():
    settings = proxy_settings(PROXY, "direct.example", env={})
    assert settings is not None
    router, used = _router(settings)
    with httpx.Client(transport=router) as client:
        client.get("https://registry.example/v2/", headers={"Authorization": "Bearer t"})
        client.get("http://direct.example/v2/", headers={"Authorization": "Bearer t"})
    assert [name for name, _ in used] == [PROXY, "direct"]


# -- git --------------------------------------------------------------------------------------------------------


def test_git_is_given_the_proxy_for_the_origins_it_contacts():
    settings = proxy_settings(PROXY, "direct.example", env={})
    config = dict(git_proxy_config(settings, ["https://git.example", "https://direct.example"]))
    assert config == {"http.https://git.example/.proxy": PROXY}


def test_git_is_told_to_send_proxy_credentials_with_basic():
    settings = proxy_settings("http://user:pw@proxy.example:3128", env={})
    config = dict(git_proxy_config(settings, ["https://git.example"]))
    assert config["http.https://git.example/.proxy"] == "http://user:pw@proxy.example:3128"
    assert config["http.https://git.example/.proxyAuthMethod"] == "basic"


def test_git_reads_the_proxy_from_its_environment_and_never_from_its_command_line():
    settings = proxy_settings("http://user:hunter2-secret@proxy.example:3128", env={})
    url = "https://git.example/fleet.git"
    # `ls-remote URL` would contact it; `config --get-urlmatch` says what git would use for it, offline. The URL is
    # in the arguments so that the proxy is configured for its origin, as for a fetch.
    done = run_git(["config", "--get-urlmatch", "http.proxy", url], transport=Transport(proxy=settings))
    assert done.stdout.strip() == "http://user:hunter2-secret@proxy.example:3128"
    assert not any("hunter2-secret" in arg for arg in done.args)


def test_git_gets_no_proxy_for_a_no_proxy_host():
    settings = proxy_settings(PROXY, "git.example", env={})
    done = run_git(
        ["config", "--get-urlmatch", "http.proxy", "https://git.example/x.git"],
        transport=Transport(proxy=settings),
        check=False,
    )
    assert done.stdout.strip() == ""


def _failing_router(failure: Exception | httpx.Response) -> ProxyRouter:
    settings = proxy_settings(PROXY, env={})
    assert settings is not None

    def make(through: httpx.Proxy | None) -> httpx.BaseTransport:
        def answer(request: httpx.Request) -> httpx.Response:
            if isinstance(failure, httpx.Response):
                return failure
            raise failure

        return httpx.MockTransport(answer)

    return ProxyRouter(settings, make)


def test_proxy_refusing_its_credentials_is_a_transfer_failure_naming_the_proxy_not_retried():
    router = _failing_router(httpx.ProxyError("407 Proxy Authentication Required"))
    with httpx.Client(transport=router) as client, pytest.raises(ProxyAuthenticationError) as refused:
        client.get("https://ghcr.io/v2/")
    assert refused.value.exit_code == 4
    assert "http://proxy.corp.example:3128" in str(refused.value) and "407" in str(refused.value)


def test_proxy_answering_407_to_a_forwarded_request_is_the_same_failure():
    router = _failing_router(httpx.Response(407))
    with httpx.Client(transport=router) as client, pytest.raises(ProxyAuthenticationError):
        client.get("http://plain.example/v2/")


def test_a_proxy_that_cannot_be_reached_is_named_in_the_error():
    router = _failing_router(httpx.ConnectError("[Errno 111] Connection refused"))
    with httpx.Client(transport=router) as client, pytest.raises(httpx.ConnectError) as failed:
        client.get("https://ghcr.io/v2/")
    assert "through the proxy http://proxy.corp.example:3128" in str(failed.value)


# -- nothing else reads the environment -------------------------------------------------------------------------

_CLIENT_FACTORIES = {"Client", "AsyncClient", "HTTPTransport", "guarded_transport", "network_transport"}


def _factory_calls_without_trust_env_false() -> list[str]:
    import ast
    from pathlib import Path

    import mirror

    found = []
    for path in Path(mirror.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Call):
                continue
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name not in _CLIENT_FACTORIES:
                continue
            keywords = {k.arg: k.value for k in node.keywords}
            if None in keywords:  # **options: a wrapper, checked where it is called
                continue
            value = keywords.get("trust_env")
            if not (isinstance(value, ast.Constant) and value.value is False):
                found.append(f"{path.name}:{node.lineno}")
    return found


def test_every_httpx_client_and_transport_is_built_with_trust_env_false():
    """Proxies come from mirror.proxy alone: no httpx client reads HTTPS_PROXY, NO_PROXY or SSL_CERT_FILE itself."""
    assert _factory_calls_without_trust_env_false() == []


def test_proxy_host_with_characters_no_host_name_has_is_refused():
    with pytest.raises(UsageError, match="host"):
        parse_proxy_url("http://pro\u202exy.example:3128", "--proxy")


def test_ipv6_proxy_is_shown_in_brackets():
    assert parse_proxy_url("http://[fd00::1]:3128", "t").shown == "http://[fd00::1]:3128"
