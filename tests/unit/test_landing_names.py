"""Landing names: what a (signed) inventory names becomes a registry repository and tag only if the distribution
grammar accepts it, so no artifact can address another repository or a URL path of the registry's API."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from mirror.bundle.inventory import ArtifactRecord
from mirror.bundle.verify import VerifiedImage
from mirror.errors import VerificationError
from mirror.landing import LANDING_NAME_INVALID, plan_images, plan_landings

DIGEST = "sha256:" + "a" * 64
REPO = "https://charts.example.com/stable"


def _image(source: str) -> VerifiedImage:
    return VerifiedImage(
        ArtifactRecord("image", source, DIGEST, "application/vnd.oci.image.manifest.v1+json", 1), [], {}
    )


def _chart(name: Any, version: Any, source: str = f"{REPO}/app") -> VerifiedImage:
    extra = {"chart": name, "version": version, "repo": REPO}
    return VerifiedImage(
        ArtifactRecord("chart", source, DIGEST, "application/vnd.oci.image.manifest.v1+json", 1, extra), [], {}
    )


def _file(name: Any, tag: Any = "latest", source: str = "https://get.example.com/install.sh") -> VerifiedImage:
    extra = {"name": name, "tag": tag, "fileSha256": "b" * 64, "fileSize": 1}
    return VerifiedImage(
        ArtifactRecord("file", source, DIGEST, "application/vnd.oci.image.manifest.v1+json", 1, extra), [], {}
    )


def _attached(source: str) -> VerifiedImage:
    extra = {"subject": DIGEST, "artifactType": "application/spdx+json", "found": "referrers", "image": source}
    return VerifiedImage(
        ArtifactRecord("attached", source, DIGEST, "application/vnd.oci.image.manifest.v1+json", 1, extra), [], {}
    )


def _verified(*images: VerifiedImage) -> Any:
    return SimpleNamespace(
        images=[i for i in images if i.artifact.kind != "attached"],
        attached=[i for i in images if i.artifact.kind == "attached"],
        reader=SimpleNamespace(location="bundle"),
    )


LANDED = [
    (_image("docker.io/library/nginx:1.27"), "library/nginx", "1.27"),
    (_image(f"ghcr.io/team/app:v1@{DIGEST}"), "team/app", "v1"),
    (_image(f"ghcr.io/team/app@{DIGEST}"), "team/app", None),
    (_image("ghcr.io/stefanprodan/charts/podinfo:6.7.1"), "stefanprodan/charts/podinfo", "6.7.1"),
    (_chart("podinfo", "6.5.0"), "charts/podinfo", "6.5.0"),
    (_chart("PodInfo", "6.5.0+build.1"), "charts/podinfo", "6.5.0_build.1"),  # '+' becomes '_', as Helm does
    (_attached(f"ghcr.io/team/app@{DIGEST}"), "team/app", None),  # by digest; a cosign tag is checked at verify
    (_file("rke2-install.sh"), "files/rke2-install.sh", "latest"),
    (_file("Tool", "v1.4.0", source="bin/Tool"), "files/tool", "v1.4.0"),  # a local path names no registry
]


@pytest.mark.parametrize(("image", "repository", "tag"), LANDED)
def test_a_valid_artifact_lands_at_its_repository_and_tag(image, repository, tag):
    [plan] = plan_images(_verified(image), "mirror")
    assert (plan.repository, plan.tag) == (repository, tag)


REFUSED = [
    (_chart("app", "1.0/../../x"), "tag '1.0/../../x'"),
    (_chart("app", "../../../../v2/other/manifests/x"), "tag '../../../../v2/other/manifests/x'"),
    (_chart("app", "-1.0"), "tag '-1.0'"),
    (_chart("app", "1.0 beta"), "tag '1.0 beta'"),
    (_chart("app", "1" * 129), "does not match"),
    (_chart("app", ".1"), "tag '.1'"),
    (_chart("app/../../x", "1.0"), "repository 'mirror/charts/app/../../x'"),
    (_chart("a..b", "1.0"), "repository 'mirror/charts/a..b'"),
    (_chart("app", 5), "chart without name, version and repo"),
    (_image("ghcr.io/team/App:1.0"), "team/App"),
    (_image("ghcr.io/team/../app:1.0"), "team/../app"),
    (_image("ghcr.io/team/app:1.0/../../x"), "1.0/../../x"),
    (_image("ghcr.io/team/%2e%2e/app:1.0"), "team/%2e%2e/app"),
    (_attached(f"ghcr.io/team/App@{DIGEST}"), "team/App"),
    (_file("a/b"), "file without a valid name"),
    (_file("../../v2/x"), "file without a valid name"),
    (_file(".."), "file without a valid name"),
    (_file("a..b"), "repository 'mirror/files/a..b'"),
    (_file("tool", "1.0/../x"), "tag '1.0/../x'"),
    (_file("tool", None), "file without a valid name and tag"),
]


@pytest.mark.parametrize(("image", "why"), REFUSED)
def test_an_invalid_landing_name_is_a_problem(image, why):
    plans, problems = plan_landings(_verified(image), "mirror")
    assert plans == []
    [problem] = problems
    assert problem.code == LANDING_NAME_INVALID
    assert image.artifact.source in problem.message and why in problem.message


def test_every_invalid_landing_name_is_listed_in_one_refusal():
    bad = [_chart("app", "1.0/../../x"), _image("ghcr.io/team/App:1.0"), _image("ghcr.io/team/../app:1.0")]
    with pytest.raises(VerificationError) as refused:
        plan_images(_verified(_image("ghcr.io/team/ok:1.0"), *bad), "mirror")
    assert refused.value.exit_code == 3
    assert [p.code for p in refused.value.problems] == [LANDING_NAME_INVALID] * 3


def test_an_invalid_landing_name_is_shown_without_its_control_characters():
    _, [problem] = plan_landings(_verified(_image("ghcr.io/team/App:1.0\n  - [OK] verified\x1b[2J")), "mirror")
    assert "\n" not in problem.message and "\x1b" not in problem.message
