"""What `mirror serve` serves from several bundles: each verified as `mirror verify` verifies it, a chain of
incremental bundles merged into one view (a later bundle's tag wins, what an incremental leaves to its base comes
from the base), and any refusal before a socket is opened. Tar and split bundles are served as directories are."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import pytest

from mirror.bundle.inventory import parse_inventory
from mirror.bundle.splitting import write_split
from mirror.errors import UsageError, VerificationError
from mirror.progress import Progress
from mirror.serve.run import prepare
from tests.conftest import MIRROR
from tests.support.servebundles import ChainBundle, layer_of, manifest_of, serving
from tests.support.signedbundles import Trust, as_tar, make_trust, sign

APP = "registry.example/team/app:1.0"
TOOL = "registry.example/team/tool:1"


def _night(root: Path, name: str, trust: Trust | None, build) -> ChainBundle:
    bundle = ChainBundle(root / name, name)
    build(bundle)
    bundle.finish()
    if trust is not None:
        sign(bundle.root, trust)
    return bundle


@pytest.fixture
def trust(tmp_path) -> Trust:
    return make_trust(tmp_path / "trust")


@pytest.fixture
def first(tmp_path, trust) -> ChainBundle:
    def build(bundle: ChainBundle) -> None:
        bundle.image_with_layer(APP, b"app, night one " * 100)
        bundle.image_with_layer(TOOL, b"the tool " * 100)

    return _night(tmp_path, "n1", trust, build)


@pytest.fixture
def second(tmp_path, trust, first) -> ChainBundle:
    """Night two: app:1.0 moved to a new image, tool:1 unchanged (left to the base)."""
    tool_digest, tool_raw = manifest_of(first, TOOL)

    def build(bundle: ChainBundle) -> None:
        bundle.based_on(first.root)
        bundle.image_with_layer(APP, b"app, night two " * 100)
        bundle.expect_image(TOOL, tool_digest, len(tool_raw))

    return _night(tmp_path, "n2", trust, build)


def test_a_later_bundle_of_the_chain_moves_a_tag(first, second, trust):
    moved, raw = manifest_of(second, APP)

    with serving([first.root, second.root], trust=trust.policy) as served:
        response = httpx.get(f"{served.url}/v2/team/app/manifests/1.0")

    assert response.headers["Docker-Content-Digest"] == moved and response.content == raw


def test_the_image_a_tag_pointed_at_before_stays_served_by_digest(first, second, trust):
    earlier, raw = manifest_of(first, APP)

    with serving([first.root, second.root], trust=trust.policy) as served:
        response = httpx.get(f"{served.url}/v2/team/app/manifests/{earlier}")

    assert response.status_code == 200 and response.content == raw


def test_what_an_incremental_leaves_to_its_base_is_served_from_the_base(first, second, trust):
    digest, _ = layer_of(first, TOOL)

    with serving([first.root, second.root], trust=trust.policy) as served:
        manifest = httpx.get(f"{served.url}/v2/team/tool/manifests/1")
        layer = httpx.get(f"{served.url}/v2/team/tool/blobs/{digest}")

    assert manifest.status_code == 200
    assert layer.content == b"the tool " * 100


def test_an_incremental_bundle_without_its_base_is_refused(second, trust):
    with pytest.raises(VerificationError) as refused:
        prepare([second.root], trust=trust.policy, jobs=1, progress=Progress(quiet=True))

    assert refused.value.exit_code == 3
    assert any("base" in str(p) for p in refused.value.problems)


def test_a_chain_given_out_of_order_is_refused(first, second, trust):
    with pytest.raises(VerificationError):
        prepare([second.root, first.root], trust=trust.policy, jobs=1, progress=Progress(quiet=True))


def test_an_incremental_after_another_bundle_than_its_base_is_refused(tmp_path, first, second, trust):
    other = _night(tmp_path, "other", trust, lambda b: b.image("registry.example/team/other:1"))

    with pytest.raises(VerificationError) as refused:
        prepare([first.root, other.root, second.root], trust=trust.policy, jobs=1, progress=Progress(quiet=True))

    assert any("n1" in str(p) for p in refused.value.problems)


def test_unrelated_full_bundles_are_served_together(tmp_path, first, trust):
    other = _night(tmp_path, "other", trust, lambda b: b.image("registry.example/team/other:1"))

    with serving([first.root, other.root], trust=trust.policy) as served:
        catalog = httpx.get(f"{served.url}/v2/_catalog").json()

    assert catalog["repositories"] == ["team/app", "team/other", "team/tool"]


def test_two_sources_that_would_land_on_one_repository_are_refused(tmp_path, trust):
    def build(bundle: ChainBundle) -> None:
        bundle.image("registry.example/team/app:1")
        bundle.image("elsewhere.example/team/app:2")

    clash = _night(tmp_path, "clash", trust, build)

    with pytest.raises(UsageError):
        prepare([clash.root], trust=trust.policy, jobs=1, progress=Progress(quiet=True))


def test_every_bundle_the_policy_refuses_is_listed(tmp_path, trust):
    unsigned = _night(tmp_path, "unsigned", None, lambda b: b.image("registry.example/team/a:1"))
    unapproved = _night(tmp_path, "unapproved", None, lambda b: b.image("registry.example/team/b:1"))
    sign(unapproved.root, trust, approve=False)

    with pytest.raises(VerificationError) as refused:
        prepare([unsigned.root, unapproved.root], trust=trust.policy, jobs=1, progress=Progress(quiet=True))

    problems = [str(p) for p in refused.value.problems]
    assert any("unsigned" in p for p in problems) and any("unapproved" in p for p in problems)


def test_a_damaged_bundle_is_refused(first, trust):
    _, layer = layer_of(first, APP)
    layer.write_bytes(b"X" + layer.read_bytes()[1:])

    with pytest.raises(VerificationError):
        prepare([first.root], trust=trust.policy, jobs=1, progress=Progress(quiet=True))


def test_without_a_policy_the_bundles_are_served_on_checksums_alone(tmp_path):
    unsigned = _night(tmp_path, "lab", None, lambda b: b.image_with_layer(APP, b"lab"))

    with serving([unsigned.root]) as served:
        assert httpx.get(f"{served.url}/v2/team/app/manifests/1.0").status_code == 200


def test_a_tar_bundle_is_served_from_its_members(tmp_path, first):
    tar = as_tar(first.root, tmp_path / "n1.tar")
    digest, _ = layer_of(first, APP)

    with serving([tar]) as served:
        response = httpx.get(f"{served.url}/v2/team/app/blobs/{digest}", headers={"Range": "bytes=5-9"})

    assert response.status_code == 206 and response.content == (b"app, night one " * 100)[5:10]


def test_a_split_bundle_is_served_across_its_volumes(tmp_path):
    layer = bytes(range(256)) * 64
    lab = _night(tmp_path, "lab", None, lambda b: b.image_with_layer(APP, layer))
    digest, _ = layer_of(lab, APP)
    inventory = parse_inventory((lab.root / "inventory.json").read_bytes())
    _, volumes = write_split(lab.root, inventory, tmp_path / "lab.tar", 4096, lambda _: [])

    with serving([volumes[0]]) as served:
        response = httpx.get(f"{served.url}/v2/team/app/blobs/{digest}")

    assert len(volumes) > 3 and response.content == layer


def test_a_policy_and_allow_unsigned_together_are_a_usage_error(first, trust):
    with pytest.raises(UsageError):
        prepare([first.root], trust=trust.policy, allow_unsigned=True, jobs=1, progress=Progress(quiet=True))


def _serve(*args: object) -> subprocess.CompletedProcess[str]:
    """`mirror serve` as a process that must stop by itself (a refusal): a server that listens is a failure."""
    command = [str(MIRROR), "serve", *map(str, args), "--listen", "127.0.0.1:0"]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def test_the_command_refuses_a_bundle_the_policy_refuses_with_exit_3_before_listening(tmp_path, trust):
    unsigned = _night(tmp_path, "unsigned", None, lambda b: b.image("registry.example/team/a:1"))

    done = _serve(unsigned.root, "--trust", trust.policy)

    assert done.returncode == 3, done.stderr
    assert "listening" not in done.stdout + done.stderr


def test_the_command_needs_a_policy_or_allow_unsigned(first):
    done = _serve(first.root)

    assert done.returncode == 2 and "--trust" in done.stderr
