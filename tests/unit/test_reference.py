"""Image reference parsing: the distribution grammar, normalised the way docker and containerd do."""

from __future__ import annotations

import pytest

from mirror.errors import ReferenceError_, UsageError
from mirror.oci.reference import ImageReference, parse_reference

HEX = "0123456789abcdef" * 4
DIGEST = f"sha256:{HEX}"


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag", "digest"),
    [
        pytest.param("nginx", "docker.io", "library/nginx", "latest", None, id="bare-hub-name"),
        pytest.param("nginx:1.27", "docker.io", "library/nginx", "1.27", None, id="bare-hub-name-with-tag"),
        pytest.param("docker.io/nginx", "docker.io", "library/nginx", "latest", None, id="docker-io-single-component"),
        pytest.param(
            "docker.io/library/nginx", "docker.io", "library/nginx", "latest", None, id="docker-io-explicit-library"
        ),
        pytest.param("index.docker.io/x/y", "docker.io", "x/y", "latest", None, id="index-docker-io-alias"),
        pytest.param("registry-1.docker.io/x/y", "docker.io", "x/y", "latest", None, id="registry-1-docker-io-alias"),
        pytest.param(
            "index.docker.io/nginx", "docker.io", "library/nginx", "latest", None, id="alias-single-component"
        ),
        pytest.param("bitnami/redis", "docker.io", "bitnami/redis", "latest", None, id="hub-two-components-no-library"),
        pytest.param("ghcr.io/app", "ghcr.io", "app", "latest", None, id="non-hub-single-component-no-library"),
        pytest.param("quay.io/org/team/app:v2", "quay.io", "org/team/app", "v2", None, id="deep-path"),
        pytest.param("127.0.0.1:5000/a/b:1", "127.0.0.1:5000", "a/b", "1", None, id="ip-with-port-and-tag"),
        pytest.param("127.0.0.1:5000/a/b", "127.0.0.1:5000", "a/b", "latest", None, id="port-colon-is-not-a-tag"),
        pytest.param("localhost/x", "localhost", "x", "latest", None, id="localhost-without-dot"),
        pytest.param("localhost:5000/x:dev", "localhost:5000", "x", "dev", None, id="localhost-with-port"),
        pytest.param("[::1]:5000/x", "[::1]:5000", "x", "latest", None, id="ipv6-with-port"),
        pytest.param("[::1]:5000/x:2", "[::1]:5000", "x", "2", None, id="ipv6-with-port-and-tag"),
        pytest.param(f"x:1@{DIGEST}", "docker.io", "library/x", "1", DIGEST, id="tag-and-digest-kept"),
        pytest.param(f"x@{DIGEST}", "docker.io", "library/x", None, DIGEST, id="digest-only-gets-no-default-tag"),
        pytest.param(
            f"reg.example.com:443/a/b@{DIGEST}", "reg.example.com:443", "a/b", None, DIGEST, id="port-and-digest"
        ),
        pytest.param("a/b.c_d__e-f--g", "docker.io", "a/b.c_d__e-f--g", "latest", None, id="all-separators"),
        pytest.param("x:" + "t" * 128, "docker.io", "library/x", "t" * 128, None, id="tag-of-128-chars"),
        pytest.param("x:_A.b-9", "docker.io", "library/x", "_A.b-9", None, id="tag-mixed-case-and-punctuation"),
    ],
)
def test_valid_reference_is_normalised(text, registry, repository, tag, digest):
    assert parse_reference(text) == ImageReference(registry, repository, tag, digest)


@pytest.mark.parametrize(
    ("text", "host"),
    [
        pytest.param("Example.COM/team/app", "example.com", id="uppercase-with-dot"),
        pytest.param("MyRegistry/team/app", "myregistry", id="uppercase-without-dot"),
    ],
)
def test_uppercase_first_component_is_a_registry_host(text, host):
    # Hosts are case-insensitive: whether the case is kept or folded, it must not become part of the path.
    reference = parse_reference(text)
    assert (reference.registry.lower(), reference.repository) == (host, "team/app")


def test_reference_prints_fully_qualified():
    assert str(parse_reference("nginx")) == "docker.io/library/nginx:latest"


def test_reference_with_tag_and_digest_prints_both():
    assert str(parse_reference(f"ghcr.io/a/b:1@{DIGEST}")) == f"ghcr.io/a/b:1@{DIGEST}"


def test_short_and_long_hub_spellings_are_equal():
    assert parse_reference("nginx") == parse_reference("index.docker.io/library/nginx:latest")


def test_name_is_registry_and_repository():
    assert parse_reference("127.0.0.1:5000/a/b:1").name == "127.0.0.1:5000/a/b"


def test_name_of_exactly_255_characters_is_accepted():
    text = "reg.example.com/" + "a" * (255 - len("reg.example.com/"))
    assert parse_reference(text).name == text


@pytest.mark.parametrize(
    "text",
    [
        # repository names are lowercase
        pytest.param("docker.io/Nginx", id="uppercase-repository"),
        pytest.param("Nginx", id="uppercase-bare-name"),
        pytest.param("example.com/Team/app", id="uppercase-path-component"),
        # path component separators must sit between alphanumerics
        pytest.param("example.com/a/-b", id="component-starts-with-dash"),
        pytest.param("example.com/a/b_", id="component-ends-with-separator"),
        pytest.param("example.com/a//b", id="empty-path-component"),
        pytest.param("example.com/a___b", id="triple-underscore-separator"),
        pytest.param("example.com/a/b$c", id="dollar-in-path"),
        pytest.param("example.com/", id="registry-without-repository"),
        # tags are [A-Za-z0-9_][A-Za-z0-9._-]{0,127}
        pytest.param("x:1+2", id="plus-in-tag"),
        pytest.param("x:-1", id="tag-starts-with-dash"),
        pytest.param("x:.1", id="tag-starts-with-dot"),
        pytest.param("x:", id="empty-tag"),
        pytest.param("x:" + "t" * 129, id="tag-of-129-chars"),
        # digests must be sha256:<64 lowercase hex>, checked before any path or URL use
        pytest.param(f"x@sha256:{HEX.upper()}", id="digest-uppercase-hex"),
        pytest.param(f"x@sha256:{HEX[:-1]}", id="digest-63-hex"),
        pytest.param(f"x@sha256:{HEX}0", id="digest-65-hex"),
        pytest.param(f"x@sha512:{HEX}{HEX}", id="digest-sha512-not-accepted"),
        pytest.param("x@sha256:../../x", id="digest-path-traversal"),
        pytest.param("x@", id="empty-digest"),
        pytest.param(f"x@{DIGEST}@{DIGEST}", id="two-digests"),
        pytest.param(f"@{DIGEST}", id="digest-without-name"),
        # a reference has no scheme
        pytest.param("https://example.com/x", id="https-scheme"),
        pytest.param("docker://nginx", id="docker-scheme"),
        # whitespace anywhere
        pytest.param(" nginx", id="leading-space"),
        pytest.param("nginx ", id="trailing-space"),
        pytest.param("ngi nx", id="inner-space"),
        pytest.param("nginx\n", id="trailing-newline"),
        pytest.param("nginx:\t1", id="tab-before-tag"),
        # nothing at all
        pytest.param("", id="empty"),
        # the host must be host[:port]
        pytest.param("example.com:abc/x", id="non-numeric-port"),
        pytest.param("-bad.example.com/x", id="host-starts-with-dash"),
        # the full name is at most 255 characters
        pytest.param("reg.example.com/" + "a" * (256 - len("reg.example.com/")), id="name-of-256-chars"),
        pytest.param("reg.example.com/" + "/".join(["abcdefghij"] * 30), id="name-far-over-255-chars"),
    ],
)
def test_invalid_reference_is_refused(text):
    with pytest.raises(ReferenceError_) as caught:
        parse_reference(text)
    assert caught.value.exit_code == 2
    assert isinstance(caught.value, UsageError)


def test_refusal_names_the_reference():
    with pytest.raises(ReferenceError_, match=r"docker\.io/Nginx"):
        parse_reference("docker.io/Nginx")


def test_refusal_of_long_tag_says_what_a_tag_may_be():
    with pytest.raises(ReferenceError_, match=r"tag .* must match"):
        parse_reference("x:" + "t" * 129)


def test_refusal_of_bad_digest_says_what_a_digest_must_be():
    with pytest.raises(ReferenceError_, match="sha256:<64 lowercase hex>"):
        parse_reference("x@sha256:../../x")


def test_refusal_of_long_name_mentions_the_limit():
    with pytest.raises(ReferenceError_, match="255"):
        parse_reference("reg.example.com/" + "a" * 250)


def test_pinned_adds_digest_and_keeps_tag():
    assert parse_reference("ghcr.io/a/b:1").pinned(DIGEST) == ImageReference("ghcr.io", "a/b", "1", DIGEST)


def test_without_digest_drops_only_the_digest():
    assert parse_reference(f"ghcr.io/a/b:1@{DIGEST}").without_digest() == ImageReference("ghcr.io", "a/b", "1")
