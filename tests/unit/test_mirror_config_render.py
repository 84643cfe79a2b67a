"""The registry mirror configurations for cluster nodes (mirror/nodeconfig/): every file parses back (tomllib,
yaml.safe_load) to the structure that makes nodes pull `SRC-HOST/PATH` from `INTERNAL/PREFIX/PATH`; what the
inventory names is held to a strict host grammar before anything is rendered. See docs/mirror-config.md."""

from __future__ import annotations

import tomllib

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from mirror.errors import UsageError, VerificationError
from mirror.nodeconfig.hosts import MirrorTarget, registry_host_problem
from mirror.nodeconfig.render import CONTAINERS_DROP_IN, K3S_REGISTRIES, OPENSHIFT_DIGESTS, OPENSHIFT_TAGS, render
from mirror.nodeconfig.toml import toml_string

PREFIXED = MirrorTarget("https", "registry.internal:5000", "mirror")
BARE = MirrorTarget("https", "registry.internal", "")
PLAIN = MirrorTarget("http", "10.0.0.5:5000", "a/b")
SOURCES = ["ghcr.io", "docker.io", "ghcr.io", "quay.io:443"]


def hosts_toml(files: dict[str, str], source: str) -> dict:
    return tomllib.loads(files[f"containerd/certs.d/{source}/hosts.toml"])


class TestContainerd:
    def test_a_hosts_toml_per_source_registry(self) -> None:
        files = render(PREFIXED, SOURCES)
        assert sorted(name for name in files if name.startswith("containerd/")) == [
            "containerd/certs.d/docker.io/hosts.toml",
            "containerd/certs.d/ghcr.io/hosts.toml",
            "containerd/certs.d/quay.io:443/hosts.toml",
        ]

    def test_with_a_prefix_the_host_holds_v2_prefix_and_overrides_the_path(self) -> None:
        assert hosts_toml(render(PREFIXED, ["ghcr.io"]), "ghcr.io") == {
            "server": "https://ghcr.io",
            "host": {
                "https://registry.internal:5000/v2/mirror": {"capabilities": ["pull", "resolve"], "override_path": True}
            },
        }

    def test_without_a_prefix_the_path_is_containerds_own(self) -> None:
        assert hosts_toml(render(BARE, ["ghcr.io"]), "ghcr.io")["host"] == {
            "https://registry.internal": {"capabilities": ["pull", "resolve"]}
        }

    def test_docker_hubs_server_is_registry_1(self) -> None:
        assert hosts_toml(render(PREFIXED, ["docker.io"]), "docker.io")["server"] == "https://registry-1.docker.io"

    def test_a_plain_http_registry_is_an_http_host(self) -> None:
        assert list(hosts_toml(render(PLAIN, ["docker.io"]), "docker.io")["host"]) == ["http://10.0.0.5:5000/v2/a/b"]

    def test_the_node_ca_path_is_the_hosts_ca(self) -> None:
        config = hosts_toml(render(PREFIXED, ["ghcr.io"], node_ca_path="/etc/pki/mirror ca.pem"), "ghcr.io")
        assert config["host"]["https://registry.internal:5000/v2/mirror"]["ca"] == "/etc/pki/mirror ca.pem"

    def test_the_text_is_as_before(self) -> None:
        # The --flux-out nights wrote this text; a night with the same bundle must not rewrite it.
        assert render(PREFIXED, ["docker.io"])["containerd/certs.d/docker.io/hosts.toml"] == (
            "# docker.io images are pulled from registry.internal:5000/mirror/<path>, where mirror puts them\n"
            'server = "https://registry-1.docker.io"\n'
            "\n"
            '[host."https://registry.internal:5000/v2/mirror"]\n'
            '  capabilities = ["pull", "resolve"]\n'
            "  override_path = true\n"
        )


class TestK3s:
    def test_a_mirror_per_source_rewritten_under_the_prefix(self) -> None:
        assert yaml.safe_load(render(PREFIXED, SOURCES)[K3S_REGISTRIES]) == {
            "mirrors": {
                source: {"endpoint": ["https://registry.internal:5000"], "rewrite": {"^(.*)$": "mirror/$1"}}
                for source in ("docker.io", "ghcr.io", "quay.io:443")
            }
        }

    def test_without_a_prefix_no_rewrite(self) -> None:
        assert yaml.safe_load(render(BARE, ["ghcr.io"])[K3S_REGISTRIES]) == {
            "mirrors": {"ghcr.io": {"endpoint": ["https://registry.internal"]}}
        }

    def test_the_node_ca_path_is_the_endpoints_tls_ca_file(self) -> None:
        document = yaml.safe_load(render(BARE, ["ghcr.io"], node_ca_path="/etc/ca.pem")[K3S_REGISTRIES])
        assert document["configs"] == {"registry.internal": {"tls": {"ca_file": "/etc/ca.pem"}}}

    def test_a_plain_http_endpoint(self) -> None:
        document = yaml.safe_load(render(PLAIN, ["docker.io"])[K3S_REGISTRIES])
        assert document["mirrors"]["docker.io"] == {
            "endpoint": ["http://10.0.0.5:5000"],
            "rewrite": {"^(.*)$": "a/b/$1"},
        }


class TestContainersRegistriesConf:
    def test_a_registry_per_source_with_the_internal_mirror_under_the_prefix(self) -> None:
        document = tomllib.loads(render(PREFIXED, SOURCES)[CONTAINERS_DROP_IN])
        assert document == {
            "registry": [
                {"prefix": source, "location": source, "mirror": [{"location": "registry.internal:5000/mirror"}]}
                for source in ("docker.io", "ghcr.io", "quay.io:443")
            ]
        }

    def test_without_a_prefix_the_mirror_is_the_host(self) -> None:
        document = tomllib.loads(render(BARE, ["ghcr.io"])[CONTAINERS_DROP_IN])
        assert document["registry"][0]["mirror"] == [{"location": "registry.internal"}]

    def test_a_plain_http_mirror_is_insecure(self) -> None:
        document = tomllib.loads(render(PLAIN, ["docker.io"])[CONTAINERS_DROP_IN])
        assert document["registry"][0]["mirror"] == [{"location": "10.0.0.5:5000/a/b", "insecure": True}]

    def test_the_drop_in_sits_in_registries_conf_d(self) -> None:
        assert CONTAINERS_DROP_IN == "containers/registries.conf.d/50-mirror.conf"


class TestOpenShift:
    def test_an_image_digest_mirror_set_maps_every_source(self) -> None:
        document = yaml.safe_load(render(PREFIXED, SOURCES)[OPENSHIFT_DIGESTS])
        assert document == {
            "apiVersion": "config.openshift.io/v1",
            "kind": "ImageDigestMirrorSet",
            "metadata": {"name": "mirror-registry.internal-5000-mirror"},
            "spec": {
                "imageDigestMirrors": [
                    {"source": source, "mirrors": ["registry.internal:5000/mirror"]}
                    for source in ("docker.io", "ghcr.io", "quay.io:443")
                ]
            },
        }

    def test_an_image_tag_mirror_set_maps_every_source(self) -> None:
        document = yaml.safe_load(render(BARE, ["ghcr.io"])[OPENSHIFT_TAGS])
        assert document["kind"] == "ImageTagMirrorSet"
        assert document["spec"] == {"imageTagMirrors": [{"source": "ghcr.io", "mirrors": ["registry.internal"]}]}

    @pytest.mark.parametrize(
        ("target", "name"),
        [
            (
                MirrorTarget("https", "Registry.Internal:5000", "a__b/c.d/e-f"),
                "mirror-registry.internal-5000-a--b-c.d-e-f",
            ),
            (MirrorTarget("http", "10.0.0.5", ""), "mirror-10.0.0.5"),
            (MirrorTarget("https", "r.internal", "x" * 300), "mirror-"),  # too long: a digest of it instead
        ],
    )
    def test_the_name_is_a_dns_1123_subdomain_naming_the_registry(self, target: MirrorTarget, name: str) -> None:
        metadata_name = yaml.safe_load(render(target, ["ghcr.io"])[OPENSHIFT_DIGESTS])["metadata"]["name"]
        assert metadata_name.startswith(name) and len(metadata_name) <= 253
        assert all(
            label
            and label[0].isalnum()
            and label[-1].isalnum()
            and set(label) <= set("abcdefghijklmnopqrstuvwxyz0123456789-")
            for label in metadata_name.split(".")
        )


class TestSources:
    def test_the_internal_registry_is_no_source_of_itself(self) -> None:
        files = render(PREFIXED, ["registry.internal:5000", "ghcr.io"])
        assert "containerd/certs.d/registry.internal:5000/hosts.toml" not in files
        assert list(yaml.safe_load(files[K3S_REGISTRIES])["mirrors"]) == ["ghcr.io"]

    def test_no_source_at_all_still_renders_every_file_empty(self) -> None:
        files = render(PREFIXED, [])
        assert sorted(files) == sorted([K3S_REGISTRIES, CONTAINERS_DROP_IN, OPENSHIFT_DIGESTS, OPENSHIFT_TAGS])
        assert tomllib.loads(files[CONTAINERS_DROP_IN]) == {}
        assert yaml.safe_load(files[OPENSHIFT_DIGESTS])["spec"] == {"imageDigestMirrors": []}

    @pytest.mark.parametrize(
        "host",
        [
            "../../etc",
            "[::1]:5000",
            "ghcr.io:0",
            "ghcr.io:65536",
            "ghcr.io:99999999",
            "-ghcr.io",
            "ghcr-.io",
            "ghcr..io",
            "a" * 64 + ".io",
            ("a" * 60 + ".") * 5 + "io",
            'ghcr.io"\n[host."https://evil"]',
            "ghcr.io\nserver = x",
            "ghcr.io/x",
            "gh cr.io",
            "ghcr.io:",
            "",
        ],
    )
    def test_a_hostile_source_host_is_refused_before_anything_is_rendered(self, host: str) -> None:
        with pytest.raises(VerificationError) as raised:
            render(PREFIXED, ["ghcr.io", host])
        assert [p.code for p in raised.value.problems] == ["MIRROR_CONFIG_HOST_INVALID"]
        assert "\n" not in raised.value.problems[0].message

    def test_every_hostile_source_host_is_listed(self) -> None:
        with pytest.raises(VerificationError) as raised:
            render(PREFIXED, ["[::1]", "a:0", "ghcr.io"])
        assert len(raised.value.problems) == 2

    @pytest.mark.parametrize("host", ["ghcr.io", "localhost:5000", "127.0.0.1:25000", "Quay.IO", "a-b.c-d.e:65535"])
    def test_ordinary_hosts_pass_the_grammar(self, host: str) -> None:
        assert registry_host_problem(host) is None

    def test_an_internal_registry_outside_the_grammar_is_a_usage_error(self) -> None:
        with pytest.raises(UsageError):
            render(MirrorTarget("https", "[::1]:5000", ""), ["ghcr.io"])


class TestNodeCaPath:
    @pytest.mark.parametrize("path", ["ca.pem", "./ca.pem", "", "/etc/ca\n.pem", "/etc/ca\x00.pem", "/etc/\x1b[2Jca"])
    def test_a_node_ca_path_must_be_absolute_and_printable(self, path: str) -> None:
        with pytest.raises(UsageError):
            render(PREFIXED, ["ghcr.io"], node_ca_path=path)

    def test_a_plain_http_registry_takes_no_ca(self) -> None:
        with pytest.raises(UsageError):
            render(PLAIN, ["ghcr.io"], node_ca_path="/etc/ca.pem")

    def test_with_a_node_ca_path_no_other_path_is_written(self) -> None:
        files = render(PREFIXED, SOURCES, node_ca_path="/etc/containerd/mirror-ca.pem")
        everything = "\n".join(files.values())
        assert everything.count("/etc/containerd/mirror-ca.pem") == 4  # three hosts.toml and registries.yaml
        assert "/etc/" not in everything.replace("/etc/containerd/mirror-ca.pem", "")

    def test_a_path_with_quotes_and_backslashes_round_trips(self) -> None:
        path = '/etc/ca "dir"\\x/ü.pem'
        files = render(BARE, ["ghcr.io"], node_ca_path=path)
        assert hosts_toml(files, "ghcr.io")["host"]["https://registry.internal"]["ca"] == path
        assert yaml.safe_load(files[K3S_REGISTRIES])["configs"]["registry.internal"]["tls"]["ca_file"] == path


class TestTomlString:
    @given(st.text(alphabet=st.characters(blacklist_categories=("Cs",))))
    def test_any_text_round_trips_through_tomllib(self, text: str) -> None:
        assert tomllib.loads(f"key = {toml_string(text)}\n") == {"key": text}

    def test_control_characters_are_escaped_not_written(self) -> None:
        written = toml_string('a"\n\x00\x7f\\')
        assert "\n" not in written and "\x00" not in written and "\x7f" not in written
