"""The egress policy: named hosts and allowedHosts are explicit; discovery needs them or the flag; internal
addresses need an explicit entry; redirects, realms and archive URLs into internal addresses are refused."""

from __future__ import annotations

import io

import httpx
import pytest

from mirror.credentials import Credentials
from mirror.egress import EgressPolicy, EgressRefusedError, HostPattern, is_internal, parse_host_pattern
from mirror.errors import UsageError
from mirror.manifest import load_mirrorsets
from mirror.registry.client import RegistryClient
from mirror.registry.endpoint import Endpoint

ADDRESSES = {
    "registry.example": ["93.184.216.34"],
    "storage.example": ["151.101.1.1"],
    "metadata.example": ["169.254.169.254"],
    "intranet.example": ["10.1.2.3"],
    "mixed.example": ["151.101.1.2", "fd00::5"],
}


def resolver(hostname: str) -> list[str]:
    return ADDRESSES.get(hostname, [hostname] if hostname[0].isdigit() else [])


def policy(*named: str, allowed: tuple[str, ...] = (), allow_discovered: bool = False) -> EgressPolicy:
    patterns = [parse_host_pattern(a, "allowedHosts") for a in allowed]
    return EgressPolicy(named, patterns, allow_discovered=allow_discovered, resolver=resolver)


@pytest.mark.parametrize(
    "address", ["127.0.0.2", "::1", "169.254.169.254", "fe80::1", "10.0.0.5", "172.20.1.1", "192.168.1.1", "fd12::1"]
)
def test_loopback_link_local_and_private_addresses_are_internal(address: str) -> None:
    assert is_internal(address)


@pytest.mark.parametrize("address", ["93.184.216.34", "172.32.0.1", "2606:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses_are_not_internal(address: str) -> None:
    assert not is_internal(address)


def test_an_ipv4_mapped_loopback_address_is_internal() -> None:
    assert is_internal("::ffff:127.0.0.1")


def test_a_discovered_host_not_named_is_refused_naming_the_host_and_what_led_there() -> None:
    problem = policy("charts.example").discovered_problem("other.example", "chart web@1.0.0 dependency db")
    assert problem is not None and "other.example" in problem and "chart web@1.0.0 dependency db" in problem


def test_a_named_host_is_allowed_whatever_the_port_pattern_says_for_others() -> None:
    assert policy("127.0.0.1:5000").discovered_problem("127.0.0.1:5000", "x") is None
    assert policy("127.0.0.1:5000").discovered_problem("127.0.0.1:5001", "x") is not None


def test_allowed_hosts_globs_and_ports() -> None:
    rules = policy(allowed=("*.example.com", "cache.internal:5000"))
    assert rules.discovered_problem("ghcr.example.com", "x") is None
    assert rules.discovered_problem("ghcr.example.com:8443", "x") is None
    assert rules.discovered_problem("example.com", "x") is not None
    assert rules.discovered_problem("cache.internal:5000", "x") is None
    assert rules.discovered_problem("cache.internal:5001", "x") is not None


def test_allow_discovered_hosts_admits_public_hosts_only() -> None:
    rules = policy("registry.example", allow_discovered=True)
    assert rules.discovered_problem("storage.example", "x") is None
    for internal in ("metadata.example", "intranet.example", "mixed.example", "127.0.0.2:8080"):
        problem = rules.discovered_problem(internal, "image y")
        assert problem is not None and "internal address" in problem


def test_allow_discovered_hosts_admits_another_port_of_a_named_host_name() -> None:
    assert policy("127.0.0.1:8080", allow_discovered=True).discovered_problem("127.0.0.1:8081", "x") is None


def test_every_refused_discovered_host_is_listed_in_one_error() -> None:
    with pytest.raises(EgressRefusedError) as caught:
        policy("registry.example").require_discovered([("a.example", "chart a"), ("b.example:5000", "image b")])
    assert caught.value.exit_code == 2
    assert "a.example" in str(caught.value) and "b.example:5000" in str(caught.value)
    assert "allowedHosts" in (caught.value.hint or "")


def test_a_redirect_to_a_public_host_is_followed_and_recorded() -> None:
    rules = policy("registry.example")
    rules.check_followed("https://registry.example/v2/x", "https://storage.example/blob", "redirect")
    assert [(c.host, c.how) for c in rules.contacts] == [("storage.example", "redirect")]


@pytest.mark.parametrize("target", ["http://metadata.example/latest", "http://intranet.example/", "http://127.0.0.2/"])
def test_a_redirect_from_a_public_host_into_an_internal_address_is_refused(target: str) -> None:
    with pytest.raises(EgressRefusedError) as caught:
        policy("registry.example").check_followed("https://registry.example/v2/x", target, "redirect")
    assert target in caught.value.message


def test_a_redirect_into_an_internal_address_is_followed_when_allowed() -> None:
    rules = policy("registry.example", allowed=("intranet.example",))
    rules.check_followed("https://registry.example/v2/x", "http://intranet.example/blob", "redirect")


def test_a_redirect_to_another_port_of_the_same_host_name_is_followed() -> None:
    policy("127.0.0.1:5443").check_followed("https://127.0.0.1:5443/v2/", "http://127.0.0.1:5002/token", "realm")


@pytest.mark.parametrize("text", ["https://x.example", "x.example/path", "user@x.example", "x.example:99999", ""])
def test_allowed_hosts_entries_are_host_and_port_only(text: str) -> None:
    with pytest.raises(UsageError):
        parse_host_pattern(text, "spec.allowedHosts[0]")


def test_allowed_hosts_is_read_from_the_mirrorset(tmp_path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(
        "apiVersion: mirror/v1\nkind: MirrorSet\nmetadata: {name: x}\n"
        "spec: {allowedHosts: ['*.example.com', '127.0.0.2:8080', '[::1]:5000']}\n"
    )
    [mirrorset] = load_mirrorsets([path])
    assert mirrorset.allowed_hosts == (
        HostPattern("*.example.com", None),
        HostPattern("127.0.0.2", 8080),
        HostPattern("::1", 5000),
    )


def test_a_bad_allowed_hosts_entry_names_file_and_field(tmp_path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text("apiVersion: mirror/v1\nkind: MirrorSet\nmetadata: {name: x}\nspec: {allowedHosts: [ok, 'a/b']}\n")
    with pytest.raises(UsageError) as caught:
        load_mirrorsets([path])
    assert f"{path}: spec.allowedHosts[1]" in caught.value.message


def test_a_registry_redirect_resolving_to_a_metadata_address_is_refused_before_it_is_sent() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.host)
        return httpx.Response(307, headers={"Location": "http://metadata.example/latest/meta-data"})

    rules = policy("registry.example")
    endpoint = Endpoint("registry.example", "https", "registry.example")
    transport = httpx.MockTransport(handler)
    with (
        RegistryClient(endpoint, Credentials("u", "p"), transport=transport, egress=rules) as client,
        pytest.raises(EgressRefusedError) as caught,
    ):
        client.download_blob("team/app", "sha256:" + "0" * 64, 1, io.BytesIO())
    assert "169.254.169.254" in caught.value.message
    assert seen == ["registry.example"], "refused before any request to the redirect target"


def test_the_inventory_carries_the_hosts_contacted() -> None:
    from mirror.bundle.inventory import HostRecord, Inventory, parse_inventory

    inventory = Inventory("id", "2026-01-01T00:00:00Z", "mirror test", (), (), hosts=(HostRecord("a:1", "named"),))
    assert parse_inventory(inventory.to_bytes()).hosts == (HostRecord("a:1", "named"),)


@pytest.mark.parametrize("hosts", ['{"host": "a"}', '[{"host": "a"}]', '[{"host": 1, "how": "named"}]', '["a"]'])
def test_an_inventory_hosts_entry_that_is_not_host_and_how_strings_is_refused(hosts: str) -> None:
    import json

    from mirror.bundle.inventory import Inventory, parse_inventory
    from mirror.errors import BundleFormatError

    body = json.loads(Inventory("id", "2026-01-01T00:00:00Z", "mirror test", (), ()).to_bytes())
    body["hosts"] = json.loads(hosts)
    with pytest.raises(BundleFormatError):
        parse_inventory(json.dumps(body).encode())


def test_a_host_contacted_over_plain_http_is_recorded_as_such() -> None:
    rules = policy("registry.example", "storage.example")
    rules.record("registry.example", plain_http=False)
    rules.record("storage.example", plain_http=True)
    assert [(c.host, c.plain_http) for c in rules.contacts] == [("registry.example", False), ("storage.example", True)]


def test_a_host_contacted_over_https_and_then_plain_http_is_recorded_as_plain_http() -> None:
    rules = policy("registry.example")
    rules.record("registry.example", plain_http=False)
    rules.record("registry.example", plain_http=True)
    assert [(c.host, c.how, c.plain_http) for c in rules.contacts] == [("registry.example", "named", True)]


def test_a_redirect_to_plain_http_records_the_target_as_plain_http() -> None:
    rules = policy("registry.example")
    rules.check_followed("https://registry.example/v2/x", "http://storage.example/blob", "redirect")
    assert [(c.host, c.plain_http) for c in rules.contacts] == [("storage.example", True)]


def test_the_inventory_carries_which_hosts_were_contacted_over_plain_http() -> None:
    import json

    from mirror.bundle.inventory import HostRecord, Inventory, parse_inventory

    hosts = (HostRecord("a:1", "named", plain_http=True), HostRecord("b", "named"))
    raw = Inventory("id", "2026-01-01T00:00:00Z", "mirror test", (), (), hosts=hosts).to_bytes()
    assert parse_inventory(raw).hosts == hosts
    written = json.loads(raw)["hosts"]
    assert [("plainHTTP" in h, h.get("plainHTTP")) for h in written] == [(True, True), (False, None)]  # only where true


def test_an_inventory_hosts_entry_whose_plain_http_is_not_a_boolean_is_refused() -> None:
    import json

    from mirror.bundle.inventory import Inventory, parse_inventory
    from mirror.errors import BundleFormatError

    body = json.loads(Inventory("id", "2026-01-01T00:00:00Z", "mirror test", (), ()).to_bytes())
    body["hosts"] = [{"host": "a", "how": "named", "plainHTTP": "yes"}]
    with pytest.raises(BundleFormatError):
        parse_inventory(json.dumps(body).encode())
