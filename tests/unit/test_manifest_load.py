"""MirrorSet files: a valid manifest loads into frozen types, and each mistake names file, field and expectation."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from mirror.errors import ManifestError, UsageError
from mirror.manifest.load import load_mirrorset_file, load_mirrorsets
from mirror.oci.platform import Platform
from mirror.oci.reference import ImageReference
from mirror.registry.endpoint import RegistrySettings

HEADER = """\
apiVersion: mirror/v1
kind: MirrorSet
metadata:
  name: test
"""


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text))
    return path


def with_spec(spec: str) -> str:
    """A valid header followed by `spec:` and the given (already indented) lines."""
    return HEADER + "spec:\n" + textwrap.indent(textwrap.dedent(spec), "  ")


def refusal(path: Path) -> ManifestError:
    with pytest.raises(ManifestError) as caught:
        load_mirrorsets([path])
    return caught.value


def assert_names(error: ManifestError, path: Path, field: str, *expected: str) -> None:
    text = str(error)
    assert error.exit_code == 2
    assert str(path) in text
    assert field in text
    for fragment in expected:
        assert fragment in text


# --- the valid case -------------------------------------------------------------------------------------------


FULL_EXAMPLE = """\
apiVersion: mirror/v1
kind: MirrorSet
metadata:
  name: platform-images
  labels:
    team: infra
spec:
  platforms: all
  registries:
    127.0.0.1:5000:
      plainHTTP: true
    ghcr.io:
      endpoint: https://proxy.example.com/ghcr.io
    registry.example.com:
      caFile: certs/ca.pem
  images:
    - nginx
    - ref: ghcr.io/org/app:1.2
      platforms: [linux/amd64, linux/arm64/v8]
    - 127.0.0.1:5000/a/b:1
"""


@pytest.fixture
def full_example(tmp_path: Path) -> Path:
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    return write(tmp_path, "mirror.yaml", FULL_EXAMPLE)


def test_full_example_loads_one_mirrorset(full_example):
    (mirrorset,) = load_mirrorsets([full_example])
    assert (mirrorset.name, mirrorset.path, mirrorset.platforms) == ("platform-images", str(full_example), None)


def test_full_example_registry_settings(full_example):
    (mirrorset,) = load_mirrorsets([full_example])
    assert dict(mirrorset.registries) == {
        "127.0.0.1:5000": RegistrySettings(plain_http=True),
        "ghcr.io": RegistrySettings(endpoint="https://proxy.example.com/ghcr.io"),
        "registry.example.com": RegistrySettings(ca_file=str(full_example.parent / "certs" / "ca.pem")),
    }


def test_full_example_images_and_their_platforms(full_example):
    (mirrorset,) = load_mirrorsets([full_example])
    assert [(image.reference, image.platforms) for image in mirrorset.images] == [
        (ImageReference("docker.io", "library/nginx", "latest"), None),
        (
            ImageReference("ghcr.io", "org/app", "1.2"),
            (Platform("linux", "amd64"), Platform("linux", "arm64", "v8")),
        ),
        (ImageReference("127.0.0.1:5000", "a/b", "1"), None),
    ]


def test_image_origin_names_file_and_field(full_example):
    (mirrorset,) = load_mirrorsets([full_example])
    assert mirrorset.images[1].origin == f"{full_example}: spec.images[1].ref"


def test_shorthand_image_inherits_spec_platforms(tmp_path):
    path = write(tmp_path, "m.yaml", with_spec("platforms: [linux/amd64]\nimages: [nginx]\n"))
    (mirrorset,) = load_mirrorsets([path])
    assert mirrorset.images[0].platforms == (Platform("linux", "amd64"),)


def test_image_platforms_all_overrides_spec_platforms(tmp_path):
    path = write(tmp_path, "m.yaml", with_spec("platforms: [linux/amd64]\nimages:\n  - {ref: nginx, platforms: all}\n"))
    (mirrorset,) = load_mirrorsets([path])
    assert mirrorset.images[0].platforms is None


def test_two_documents_in_one_file_load_as_two_mirrorsets(tmp_path):
    path = write(tmp_path, "m.yaml", with_spec("images: [nginx]\n") + "---\n" + with_spec("images: [redis]\n"))
    assert len(load_mirrorset_file(path)) == 2


def test_same_image_in_two_files_with_same_platforms_is_accepted(tmp_path):
    first = write(tmp_path, "a.yaml", with_spec("images: [nginx]\n"))
    second = write(tmp_path, "b.yaml", with_spec("images: [docker.io/library/nginx:latest]\n"))
    assert len(load_mirrorsets([first, second])) == 2


# --- one refusal per mistake ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "field", "expected"),
    [
        pytest.param(
            HEADER + "spec: {images: [nginx]}\nextra: 1\n",
            "extra",
            ["unknown field"],
            id="unknown-top-level-field",
        ),
        pytest.param(
            with_spec("images: [nginx]\nimagez: [redis]\n"), "spec.imagez", ["unknown field"], id="unknown-spec-field"
        ),
        pytest.param(
            with_spec("images:\n  - {ref: nginx, tag: '1'}\n"),
            "spec.images[0].tag",
            ["unknown field"],
            id="unknown-image-field",
        ),
        pytest.param(
            with_spec("registries:\n  h.example.com: {insecure: true}\n"),
            "spec.registries['h.example.com'].insecure",
            ["unknown field"],
            id="unknown-registry-field",
        ),
        pytest.param(
            HEADER.replace("mirror/v1", "mirror/v2") + "spec: {}\n",
            "apiVersion",
            ["'mirror/v1'"],
            id="wrong-api-version",
        ),
        pytest.param(HEADER.replace("MirrorSet", "ImageSet") + "spec: {}\n", "kind", ["'MirrorSet'"], id="wrong-kind"),
        pytest.param(
            "apiVersion: mirror/v1\nkind: MirrorSet\nmetadata: {labels: {a: b}}\nspec: {}\n",
            "metadata.name",
            ["non-empty string"],
            id="missing-metadata-name",
        ),
        pytest.param(
            "apiVersion: mirror/v1\nkind: MirrorSet\nspec: {}\n", "metadata", ["mapping"], id="missing-metadata"
        ),
        pytest.param(HEADER, "spec", ["mapping"], id="missing-spec"),
        pytest.param(
            with_spec("registries:\n  h: {plainHTTP: 'true'}\n"),
            "spec.registries['h'].plainHTTP",
            ["true or false"],
            id="plain-http-quoted-string",
        ),
        pytest.param(
            with_spec("registries:\n  h: {plainHTTP: 1}\n"),
            "spec.registries['h'].plainHTTP",
            ["true or false"],
            id="plain-http-integer",
        ),
        pytest.param(
            with_spec("registries:\n  h: {endpoint: 'https://user:pw@proxy.example.com'}\n"),
            "spec.registries['h'].endpoint",
            ["credentials"],
            id="endpoint-with-credentials",
        ),
        pytest.param(
            with_spec("registries:\n  h: {endpoint: 'ftp://proxy.example.com'}\n"),
            "spec.registries['h'].endpoint",
            ["http://", "https://"],
            id="endpoint-not-http",
        ),
        pytest.param(
            with_spec("registries:\n  h: {endpoint: 'https://[::1'}\n"),
            "spec.registries['h'].endpoint",
            ["URL"],
            id="endpoint-malformed-url",
        ),
        pytest.param(
            with_spec("registries:\n  h: {endpoint: 'https://proxy.example.com', plainHTTP: true}\n"),
            "spec.registries['h']",
            ["plainHTTP and endpoint"],
            id="endpoint-and-plain-http",
        ),
        pytest.param(
            with_spec("registries:\n  h: {caFile: missing.pem}\n"),
            "spec.registries['h'].caFile",
            ["not a file"],
            id="ca-file-missing",
        ),
        pytest.param(
            with_spec("registries:\n  'https://h.example.com': {}\n"),
            "spec.registries['https://h.example.com']",
            ["host[:port]"],
            id="registry-key-with-scheme",
        ),
        pytest.param(
            with_spec("registries:\n  ghcr.io/org: {}\n"),
            "spec.registries['ghcr.io/org']",
            ["host[:port]"],
            id="registry-key-with-path",
        ),
        pytest.param(
            with_spec("platforms: [linux]\n"), "spec.platforms[0]", ["os/architecture"], id="bad-spec-platform"
        ),
        pytest.param(
            with_spec("platforms: []\n"), "spec.platforms", ["'all' or a non-empty list"], id="empty-platform-list"
        ),
        pytest.param(
            with_spec("images:\n  - nginx\n  - {ref: redis, platforms: [linux/amd64, amd64]}\n"),
            "spec.images[1].platforms[1]",
            ["os/architecture"],
            id="bad-image-platform",
        ),
        pytest.param(
            with_spec("images:\n  - nginx\n  - {ref: Bad/Ref}\n"),
            "spec.images[1].ref",
            ["lowercase"],
            id="bad-reference-in-mapping",
        ),
        pytest.param(
            with_spec("images:\n  - nginx\n  - 'redis:bad+tag'\n"),
            "spec.images[1]",
            ["tag"],
            id="bad-reference-shorthand",
        ),
        pytest.param(
            with_spec("images:\n  - {platforms: all}\n"), "spec.images[0].ref", ["missing"], id="image-without-ref"
        ),
        pytest.param(with_spec("images:\n  - ''\n"), "spec.images[0]", ["non-empty string"], id="empty-reference"),
        pytest.param(with_spec("images: nginx\n"), "spec.images", ["list"], id="images-not-a-list"),
        pytest.param(
            with_spec("charts:\n  - {name: podinfo}\n"), "spec.charts[0].repo", ["non-empty string"], id="chart-no-repo"
        ),
        pytest.param(
            with_spec("charts:\n  - {name: podinfo, repo: 'ftp://charts.example'}\n"),
            "spec.charts[0].repo",
            ["oci://"],
            id="chart-repo-scheme",
        ),
        pytest.param(
            with_spec("charts:\n  - {name: podinfo, repo: 'https://u:pw@charts.example'}\n"),
            "spec.charts[0].repo",
            ["credentials"],
            id="chart-repo-credentials",
        ),
        pytest.param(
            with_spec("charts:\n  - {name: podinfo, repo: 'https://charts.example', version: '>>1'}\n"),
            "spec.charts[0].version",
            ["constraint"],
            id="chart-bad-constraint",
        ),
        pytest.param(
            with_spec("charts:\n  - {name: podinfo, repo: 'https://charts.example', imagez: true}\n"),
            "spec.charts[0].imagez",
            ["unknown field"],
            id="chart-unknown-field",
        ),
        pytest.param(
            with_spec("charts:\n  - {name: 'Pod info', repo: 'https://charts.example'}\n"),
            "spec.charts[0].name",
            ["chart name"],
            id="chart-bad-name",
        ),
        pytest.param(
            with_spec("charts:\n  - {name: podinfo, repo: 'https://charts.example', images: {include: ['A:b']}}\n"),
            "spec.charts[0].images.include[0]",
            ["invalid image reference"],
            id="chart-bad-included-image",
        ),
        pytest.param(
            with_spec("git:\n  - {url: 'https://example.com/r.git'}\n"),
            "spec.git[0].name",
            ["non-empty string"],
            id="git-without-name",
        ),
        pytest.param(
            with_spec("git:\n  - {name: fleet, url: 'https://user:tok@example.com/r.git'}\n"),
            "spec.git[0].url",
            ["credentials"],
            id="git-url-credentials",
        ),
        pytest.param(
            with_spec("git:\n  - {name: fleet, url: 'ftp://example.com/r.git'}\n"),
            "spec.git[0].url",
            ["https://"],
            id="git-url-scheme",
        ),
        pytest.param(
            with_spec("git:\n  - {name: fleet, url: 'https://example.com/r.git', ref: {branch: a, tag: b}}\n"),
            "spec.git[0].ref",
            ["exactly one"],
            id="git-two-refs",
        ),
        pytest.param(
            with_spec("git:\n  - {name: fleet, url: 'https://example.com/r.git', ref: {commit: abc}}\n"),
            "spec.git[0].ref.commit",
            ["40-character"],
            id="git-short-commit",
        ),
        pytest.param(
            with_spec(
                "git:\n  - {name: fleet, url: 'https://e.com/r.git'}\n  - {name: fleet, url: 'https://e.com/s.git'}\n"
            ),
            "spec.git[1].name",
            ["twice"],
            id="git-name-twice",
        ),
        pytest.param(
            with_spec("flux:\n  - {name: cluster}\n"), "spec.flux[0].name", ["unknown field"], id="flux-unknown-field"
        ),
        pytest.param(
            with_spec("flux:\n  - {git: nope, path: clusters}\n"),
            "spec.flux[0].git",
            ["no git source named"],
            id="flux-unknown-git-source",
        ),
        pytest.param(
            with_spec("git:\n  - {name: fleet, url: 'https://e.com/f.git'}\nflux:\n  - {git: fleet, path: ../x}\n"),
            "spec.flux[0].path",
            ["relative path"],
            id="flux-path-escapes",
        ),
        pytest.param(
            with_spec("flux:\n  - {path: does-not-exist}\n"),
            "spec.flux[0].path",
            ["not a directory"],
            id="flux-local-directory-missing",
        ),
    ],
)
def test_invalid_manifest_is_refused_naming_file_field_and_expectation(tmp_path, text, field, expected):
    path = write(tmp_path, "mirror.yaml", text)
    assert_names(refusal(path), path, field, *expected)


def test_unknown_field_hint_lists_allowed_fields(tmp_path):
    path = write(tmp_path, "mirror.yaml", with_spec("images:\n  - {ref: nginx, tag: '1'}\n"))
    assert refusal(path).hint == "allowed fields here: platforms, ref, tags, verify"


def test_document_that_is_not_a_mapping_is_refused(tmp_path):
    path = write(tmp_path, "mirror.yaml", "- nginx\n- redis\n")
    assert_names(refusal(path), path, "", "expected a mapping")


@pytest.mark.parametrize(
    "endpoint",
    [
        pytest.param("https://user:s3cret@proxy.example.com", id="https"),
        pytest.param("ftp://user:s3cret@proxy.example.com", id="wrong-scheme"),
        pytest.param("https://user:s3cret@", id="no-host"),
    ],
)
def test_endpoint_credentials_never_appear_in_the_error(tmp_path, endpoint):
    path = write(tmp_path, "mirror.yaml", with_spec(f"registries:\n  h: {{endpoint: '{endpoint}'}}\n"))
    error = refusal(path)
    assert "s3cret" not in f"{error} {error.hint}"


def test_duplicate_yaml_key_is_refused_with_its_line(tmp_path):
    path = write(tmp_path, "mirror.yaml", HEADER + "spec:\n  images: [nginx]\n  images: [redis]\n")
    assert_names(refusal(path), path, "", "duplicate", "images", "line 7")


def test_invalid_yaml_is_refused(tmp_path):
    path = write(tmp_path, "mirror.yaml", HEADER + "spec:\n  images: [nginx\n")
    assert_names(refusal(path), path, "", "YAML")


@pytest.mark.parametrize(
    "text",
    [pytest.param("", id="empty"), pytest.param("# nothing here\n---\n", id="only-comments-and-separator")],
)
def test_file_without_a_document_is_refused(tmp_path, text):
    path = write(tmp_path, "mirror.yaml", text)
    assert_names(refusal(path), path, "", "no MirrorSet document")


def test_conflicting_registry_settings_in_two_files_are_refused(tmp_path):
    first = write(tmp_path, "a.yaml", with_spec("registries:\n  h.example.com: {plainHTTP: true}\n"))
    second = write(tmp_path, "b.yaml", with_spec("registries:\n  h.example.com: {plainHTTP: false}\n"))
    with pytest.raises(ManifestError) as caught:
        load_mirrorsets([first, second])
    assert_names(caught.value, second, "spec.registries['h.example.com']", "differs", str(first))


def test_same_image_twice_with_different_platforms_is_refused(tmp_path):
    first = write(tmp_path, "a.yaml", with_spec("images:\n  - {ref: nginx, platforms: [linux/amd64]}\n"))
    second = write(tmp_path, "b.yaml", with_spec("images:\n  - docker.io/library/nginx:latest\n"))
    with pytest.raises(ManifestError) as caught:
        load_mirrorsets([first, second])
    assert_names(caught.value, second, "spec.images[0]", str(first), "platforms")


def test_registry_settings_under_a_hub_alias_apply_to_docker_io(tmp_path):
    path = write(
        tmp_path,
        "m.yaml",
        with_spec("""\
        registries:
          index.docker.io: {endpoint: "https://proxy.example/hub"}
        images: [nginx]
        """),
    )
    [mirrorset] = load_mirrorsets([path])
    assert set(mirrorset.registries) == {"docker.io"}


def test_the_same_registry_twice_under_two_spellings_is_refused(tmp_path):
    path = write(
        tmp_path,
        "m.yaml",
        with_spec("""\
        registries:
          docker.io: {}
          index.docker.io: {plainHTTP: false}
        images: [nginx]
        """),
    )
    assert_names(refusal(path), path, "spec.registries['index.docker.io']", "twice")


def test_chart_entries_load_with_their_image_choices(tmp_path):
    path = write(
        tmp_path,
        "m.yaml",
        with_spec("""\
        platforms: [linux/amd64]
        charts:
          - {name: podinfo, repo: "https://charts.example/podinfo/", version: ">=6.5.0 <7.0.0", images: true}
          - name: app
            repo: oci://registry-1.docker.io/bitnamicharts
            version: 1.2.3
            images: [ghcr.io/org/app:1.0]
          - name: other
            repo: https://charts.example
            images: {exclude: ["docker.io/*"], include: [busybox]}
            dependencies: false
        """),
    )
    [mirrorset] = load_mirrorsets([path])
    podinfo, app, other = mirrorset.charts
    assert (podinfo.repo, podinfo.version, podinfo.images.discover) == (
        "https://charts.example/podinfo",
        ">=6.5.0 <7.0.0",
        True,
    )
    assert (app.repo, app.is_oci, app.images.discover) == ("oci://docker.io/bitnamicharts", True, False)
    assert [str(r) for r in app.images.include] == ["ghcr.io/org/app:1.0"]
    assert other.images.discover and other.images.exclude == ("docker.io/*",) and not other.dependencies
    assert [str(r) for r in other.images.include] == ["docker.io/library/busybox:latest"]
    assert str(podinfo.platforms[0]) == "linux/amd64"


def test_git_entries_load_with_their_refs(tmp_path):
    path = write(
        tmp_path,
        "m.yaml",
        with_spec(
            """\
        git:
          - {name: fleet, url: "https://git.example.com/fleet/infra.git/", ref: {branch: main}}
          - {name: apps, url: "http://git.example.com/apps.git", ref: {semver: ">=1.0.0"}}
          - {name: pinned, url: "https://git.example.com/p.git", ref: {commit: "%s"}}
          - {name: head, url: "https://git.example.com/h.git"}
        """
            % ("a" * 40)
        ),
    )
    [mirrorset] = load_mirrorsets([path])
    fleet, apps, pinned, head = mirrorset.git
    assert (fleet.url, dict(fleet.ref)) == ("https://git.example.com/fleet/infra.git", {"branch": "main"})
    assert apps.url == "http://git.example.com/apps.git" and dict(apps.ref) == {"semver": ">=1.0.0"}
    assert dict(pinned.ref) == {"commit": "a" * 40}
    assert dict(head.ref) == {}


def test_flux_entry_may_name_the_git_repository_flux_knows_its_source_as(tmp_path):
    path = write(
        tmp_path,
        "m.yaml",
        with_spec("""\
        git:
          - {name: fleet, url: "https://git.example.com/fleet.git"}
        flux:
          - {git: fleet, path: clusters/production, gitRepository: flux-system/flux-system}
        """),
    )
    [mirrorset] = load_mirrorsets([path])
    [entry] = mirrorset.flux
    assert (entry.git, entry.path, entry.git_repository) == (
        "fleet",
        "clusters/production",
        ("flux-system", "flux-system"),
    )


def test_flux_git_repository_must_be_namespace_and_name(tmp_path):
    path = write(
        tmp_path,
        "m.yaml",
        with_spec("""\
        git:
          - {name: fleet, url: "https://git.example.com/fleet.git"}
        flux:
          - {git: fleet, path: clusters, gitRepository: Flux_System}
        """),
    )
    assert_names(refusal(path), path, "spec.flux[0].gitRepository", "NAMESPACE/NAME")


def test_an_ssh_git_url_is_refused_at_load_naming_the_file_and_field(tmp_path):
    # The collector's git runs over HTTP(S) only; an ssh:// source used to pass here and fail mid-collect.
    path = write(tmp_path, "m.yaml", with_spec('git:\n  - {name: apps, url: "ssh://git@git.example.com/apps.git"}\n'))
    with pytest.raises(ManifestError, match=r"m.yaml: spec.git\[0\].url: .*ssh://.*https://"):
        load_mirrorsets([path])


def test_a_mirrorset_that_is_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "m.yaml"
    os.mkfifo(fifo)
    with pytest.raises(UsageError, match="not a regular file"):
        load_mirrorsets([fifo])


def test_an_image_entry_with_tags_names_its_repository_alone(tmp_path: Path) -> None:
    path = write(
        tmp_path, "m.yaml", with_spec("images:\n  - ref: ghcr.io/team/app\n    tags: {semver: '>=1.2 <2', latest: 3}\n")
    )
    [mirrorset] = load_mirrorsets([path])
    [image] = mirrorset.images
    assert image.reference == ImageReference("ghcr.io", "team/app")
    assert image.tags is not None and (image.tags.semver, image.tags.latest) == (">=1.2 <2", 3)


@pytest.mark.parametrize("ref", ["ghcr.io/team/app:1.0", "ghcr.io/team/app@sha256:" + "a" * 64])
def test_tags_beside_a_tag_or_digest_in_ref_are_refused(tmp_path: Path, ref: str) -> None:
    path = write(tmp_path, "m.yaml", with_spec(f"images:\n  - ref: {ref}\n    tags: {{latest: 1}}\n"))
    assert_names(refusal(path), path, "spec.images[0].ref", "names a tag or digest")


def test_an_invalid_tag_selector_is_refused_naming_its_field(tmp_path: Path) -> None:
    path = write(tmp_path, "m.yaml", with_spec("images:\n  - ref: ghcr.io/team/app\n    tags: {regex: '(a'}\n"))
    assert_names(refusal(path), path, "spec.images[0].tags.regex", "not valid RE2 syntax")
