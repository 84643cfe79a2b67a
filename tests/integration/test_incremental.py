"""Incremental bundles (`collect --since`): three nights in a row against a real upstream, imported in order into
a real internal registry and Git server; an incremental bundle whose base is missing on the target is refused.
"""

from __future__ import annotations

import json
import tarfile
import uuid
from pathlib import Path

import pytest

from mirror.bundle.inventory import parse_inventory
from tests.conftest import CliResult
from tests.support.gitrepos import GitError, add_commit, delete_ref, ls_remote, make_upstream_repo, move_tag
from tests.support.images import Image, Layer, Layout, inspect_raw, push, sha256_digest
from tests.support.mirrorsets import mirrorset
from tests.support.services import UPSTREAM_REGISTRY

UPSTREAM_SETTINGS = {UPSTREAM_REGISTRY: {"plainHTTP": True}}


class Upstream:
    """Images of this test's own namespace on the upstream registry, built from seeded layers."""

    def __init__(self, services, tmp_path: Path) -> None:
        self.namespace = f"nightly{uuid.uuid4().hex[:8]}"
        self.host = services.upstream
        self.layout = Layout(tmp_path / "upstream-layout")
        self.base = Layer.from_seed(f"{self.namespace}/base", files=4, file_size=8192)
        self.images: dict[str, Image] = {}

    def ref(self, name: str) -> str:
        return f"{self.host}/{self.namespace}/{name}"

    def publish(self, name: str, image: Image) -> Image:
        self.layout.add(name, image)
        push(self.layout.path, name, self.ref(name))
        self.images[name] = image
        return image

    def image(self, name: str, seed: str) -> Image:
        return Image([self.base, Layer.from_seed(f"{self.namespace}/{seed}")], labels={"seed": seed})


def blobs_of(*images: Image) -> dict[str, int]:
    """Every blob an image pushes (layers, config, manifest), digest → size."""
    found: dict[str, int] = {}
    for image in images:
        for digest, data in image.blobs():
            assert data is not None
            found[digest] = len(data)
    return found


def carried_blobs(bundle: Path) -> dict[str, int]:
    """The blobs a bundle carries as files, read from the bundle (directory or tar), digest → size."""
    if bundle.is_dir():
        return {f"sha256:{p.name}": p.stat().st_size for p in (bundle / "blobs" / "sha256").iterdir()}
    with tarfile.open(bundle) as tar:
        return {
            "sha256:" + m.name.rsplit("/", 1)[1]: m.size
            for m in tar.getmembers()
            if m.isfile() and m.name.startswith("blobs/sha256/")
        }


def inventory_of(bundle: Path):
    if bundle.is_dir():
        return parse_inventory((bundle / "inventory.json").read_bytes())
    with tarfile.open(bundle) as tar:
        member = tar.extractfile("inventory.json")
        assert member is not None
        return parse_inventory(member.read())


def write_set(tmp_path: Path, images: list[str], git: list[dict] | None = None) -> Path:
    document = mirrorset(images, registries=UPSTREAM_SETTINGS)
    if git:
        document["spec"]["git"] = git
    path = tmp_path / f"night-{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(json.dumps(document))
    return path


def collect(mirror_cli, manifest: Path, out: Path, *extra: object) -> dict:
    result = mirror_cli("collect", manifest, "-o", out, "--json", "-q", *extra)
    assert result.exit_code == 0, result.stderr
    return result.json()


def import_(mirror_cli, bundle: Path, services, url: str, env: dict, *extra: object) -> CliResult:
    return mirror_cli(
        "import", bundle, "--registry", url, "--allow-unsigned", "--ca-file", services.ca_file, "--json", "-q",
        *extra, env=env,
    )  # fmt: skip


def landed_digest(services, target: str) -> str:
    creds = (services.internal_user, services.internal_password)
    return sha256_digest(inspect_raw(target, tls_verify=True, creds=creds, cert_dir=services.cert_dir))


@pytest.fixture
def upstream(services, tmp_path) -> Upstream:
    return Upstream(services, tmp_path)


@pytest.fixture
def three_nights(tmp_path, mirror_cli, upstream) -> dict:
    """Night 1 full; night 2 with nothing changed; night 3 with app:2, sharing the base layer with app:1."""
    app1 = upstream.publish("app:1", upstream.image("app", "app-1"))
    tool = upstream.publish("tool:1", upstream.image("tool", "tool-1"))
    first = write_set(tmp_path, [upstream.ref("app:1"), upstream.ref("tool:1")])
    n1, n2, n3 = tmp_path / "n1", tmp_path / "n2.tar", tmp_path / "n3"
    summaries = [collect(mirror_cli, first, n1)]
    summaries.append(collect(mirror_cli, first, n2, "--since", n1))
    app2 = upstream.publish("app:2", upstream.image("app", "app-2"))
    third = write_set(tmp_path, [upstream.ref("app:1"), upstream.ref("app:2"), upstream.ref("tool:1")])
    summaries.append(collect(mirror_cli, third, n3, "--since", tmp_path / "n2.tar.inventory.json"))
    return {"bundles": [n1, n2, n3], "summaries": summaries, "images": {"app:1": app1, "tool:1": tool, "app:2": app2}}


def test_night_one_carries_every_blob_of_its_images(three_nights):
    images = three_nights["images"]
    n1 = three_nights["bundles"][0]
    assert carried_blobs(n1) == blobs_of(images["app:1"], images["tool:1"])
    assert inventory_of(n1).base is None and inventory_of(n1).expected == ()


def test_collect_writes_the_inventory_beside_every_bundle(three_nights, tmp_path):
    for bundle, beside in zip(three_nights["bundles"], ("n1", "n2.tar", "n3"), strict=True):
        copy = (tmp_path / f"{beside}.inventory.json").read_bytes()
        assert parse_inventory(copy) == inventory_of(bundle)
    assert (tmp_path / "n1.inventory.json").read_bytes() == (three_nights["bundles"][0] / "inventory.json").read_bytes()


def test_nothing_changed_night_carries_no_blob_and_weighs_a_few_kilobytes(three_nights):
    n1, n2, _ = three_nights["bundles"]
    assert carried_blobs(n2) == {}
    assert n2.stat().st_size < 16 * 1024
    inventory = inventory_of(n2)
    assert [a.to_json() for a in inventory.artifacts] == [a.to_json() for a in inventory_of(n1).artifacts]
    assert inventory.expected_sizes == {a.digest: a.size for a in inventory.artifacts}


def test_nothing_changed_night_lists_no_blob_its_base_carried(three_nights):
    """Each unchanged artifact is expected with its whole graph: the inventory need not name a blob of it."""
    n2 = three_nights["bundles"][1]
    assert inventory_of(n2).expected == ()


def test_incremental_inventory_names_its_base_by_inventory_digest(three_nights, tmp_path):
    n1, n2, n3 = three_nights["bundles"]
    base = inventory_of(n2).base
    assert base is not None
    assert base.inventory == sha256_digest((n1 / "inventory.json").read_bytes())
    assert (base.bundle_id, base.created) == (inventory_of(n1).bundle_id, inventory_of(n1).created)
    assert inventory_of(n3).base.inventory == sha256_digest((tmp_path / "n2.tar.inventory.json").read_bytes())


def test_new_tag_night_carries_exactly_its_new_layer_config_and_manifest(three_nights, upstream):
    images = three_nights["images"]
    n3 = three_nights["bundles"][2]
    app2 = images["app:2"]
    new = {app2.layers[1].digest, app2.config.digest, app2.manifest.digest}
    assert carried_blobs(n3) == {d: s for d, s in blobs_of(app2).items() if d in new}
    inventory = inventory_of(n3)
    assert {a.source for a in inventory.artifacts} == {upstream.ref(n) for n in ("app:1", "app:2", "tool:1")}
    # The base layer, shared with app:1 and carried by night 1, is left to the chain although night 2 (nothing
    # changed) listed none of app:1's blobs; app:1 and tool:1 are expected whole.
    assert {e.digest for e in inventory.expected} == {upstream.base.digest}
    assert set(inventory.expected_sizes) == {upstream.base.digest, images["app:1"].digest, images["tool:1"].digest}


def test_an_incremental_bundle_listing_every_blob_of_its_base_as_older_versions_did_still_imports(
    three_nights, mirror_cli, services, internal_env, internal_url, tmp_path
):
    n1, n2, _ = three_nights["bundles"]
    older = tmp_path / "older-n2"
    older.mkdir()
    with tarfile.open(n2) as tar:
        for name in ("oci-layout", "index.json", "inventory.json"):
            member = tar.extractfile(name)
            assert member is not None
            (older / name).write_bytes(member.read())
    body = json.loads((older / "inventory.json").read_bytes())
    body["expected"] = [{"digest": d, "size": s} for d, s in sorted(carried_blobs(n1).items())]
    (older / "inventory.json").write_text(json.dumps(body, indent=1, sort_keys=True) + "\n")
    for bundle in (n1, older):
        result = import_(mirror_cli, bundle, services, internal_url, internal_env)
        assert result.exit_code == 0, result.stderr


def test_three_nights_import_in_order_with_the_same_digests(
    three_nights, mirror_cli, services, internal_env, internal_url, upstream
):
    images = three_nights["images"]
    landed = f"{internal_url.removeprefix('https://')}/{upstream.namespace}"
    for night, bundle in enumerate(three_nights["bundles"], start=1):
        result = import_(mirror_cli, bundle, services, internal_url, internal_env)
        assert result.exit_code == 0, f"night {night}: {result.stderr}"
    for name, image in images.items():
        assert landed_digest(services, f"{landed}/{name}") == image.digest


def test_incremental_bundle_into_an_empty_registry_is_refused_naming_its_base(
    three_nights, mirror_cli, services, internal_env, internal_url, written_repositories
):
    n3 = three_nights["bundles"][2]
    result = import_(mirror_cli, n3, services, internal_url, internal_env)
    assert result.exit_code == 3
    assert "[EXPECTED_BLOB_MISSING]" in result.stderr and "[EXPECTED_MANIFEST_MISSING]" in result.stderr
    assert inventory_of(n3).base.bundle_id in result.stderr
    assert written_repositories() == []


def test_dry_run_reports_the_missing_base_too(three_nights, mirror_cli, services, internal_env, internal_url):
    n2 = three_nights["bundles"][1]
    result = import_(mirror_cli, n2, services, internal_url, internal_env, "--dry-run")
    assert result.exit_code == 3
    assert inventory_of(n2).base.bundle_id in result.stderr


def test_signed_incremental_bundle_is_approved_and_verified_on_its_own(
    tmp_path, mirror_cli, upstream, services, internal_env, internal_url
):
    for name in ("collector", "officer"):
        assert mirror_cli("keygen", tmp_path / name).exit_code == 0
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        json.dumps(
            {
                "apiVersion": "mirror/v1",
                "kind": "TrustPolicy",
                "collectors": {"keys": [str(tmp_path / "collector.pub")], "threshold": 1},
                "approvers": {"keys": [str(tmp_path / "officer.pub")], "threshold": 1},
                "maxAge": "14d",
                "stateFile": "state.json",
            }
        )
    )
    upstream.publish("app:1", upstream.image("app", "app-1"))
    manifest = write_set(tmp_path, [upstream.ref("app:1")])
    key = ("--key", tmp_path / "collector.key")
    collect(mirror_cli, manifest, tmp_path / "n1.tar", *key)
    collect(mirror_cli, manifest, tmp_path / "n2.tar", *key, "--since", tmp_path / "n1.tar")
    for night in ("n1.tar", "n2.tar"):
        approved = mirror_cli("approve", tmp_path / night, "--key", tmp_path / "officer.key", "--trust", policy)
        assert approved.exit_code == 0, approved.stderr
        verified = mirror_cli("verify", tmp_path / night, "--trust", policy)
        assert verified.exit_code == 0, verified.stderr
        imported = mirror_cli(
            "import", tmp_path / night, "--registry", internal_url, "--trust", policy, "--ca-file", services.ca_file,
            "-q", env=internal_env,
        )  # fmt: skip
        assert imported.exit_code == 0, imported.stderr
    assert carried_blobs(tmp_path / "n2.tar") == {}


def test_new_repository_sharing_a_layer_mounts_it_from_the_repository_that_has_it(
    tmp_path, mirror_cli, services, internal_env, internal_url, upstream
):
    upstream.publish("app:1", upstream.image("app", "app-1"))
    manifest = write_set(tmp_path, [upstream.ref("app:1")])
    collect(mirror_cli, manifest, tmp_path / "n1")
    other = upstream.publish("other:1", upstream.image("other", "other-1"))
    manifest = write_set(tmp_path, [upstream.ref("app:1"), upstream.ref("other:1")])
    collect(mirror_cli, manifest, tmp_path / "n2", "--since", tmp_path / "n1")
    assert upstream.base.digest not in carried_blobs(tmp_path / "n2")
    for night in ("n1", "n2"):
        result = import_(mirror_cli, tmp_path / night, services, internal_url, internal_env)
        assert result.exit_code == 0, result.stderr
    landed = f"{internal_url.removeprefix('https://')}/{upstream.namespace}"
    assert landed_digest(services, f"{landed}/other:1") == other.digest
    assert result.json()["blobsMounted"] == 1


def test_a_tag_moved_since_the_base_is_reported_with_both_digests(tmp_path, mirror_cli, upstream):
    before = upstream.publish("app:1", upstream.image("app", "app-1"))
    manifest = write_set(tmp_path, [upstream.ref("app:1")])
    collect(mirror_cli, manifest, tmp_path / "n1")
    after = upstream.publish("app:1", upstream.image("app", "app-1-rebuilt"))
    result = mirror_cli("collect", manifest, "-o", tmp_path / "n2", "--since", tmp_path / "n1", "--json")
    assert result.exit_code == 0, result.stderr
    assert f"{upstream.ref('app:1')}: moved since the base, from {before.digest} to {after.digest}" in result.stderr
    assert result.json()["movedTags"] == [
        {"kind": "image", "source": upstream.ref("app:1"), "old": before.digest, "new": after.digest}
    ]


# --- git ------------------------------------------------------------------------------------------------------


@pytest.fixture
def git_env(services, internal_env) -> dict[str, str]:
    return {**internal_env, "MIRROR_GIT_USERNAME": services.git_user, "MIRROR_GIT_PASSWORD": services.git_password}


def _internal_refs(services, path: str) -> dict[str, str]:
    try:
        return ls_remote(f"{services.git_internal}/{path}", services, auth=True)
    except GitError as exc:
        if "not found" in str(exc):
            return {}
        raise


@pytest.fixture
def git_nights(tmp_path, mirror_cli, services) -> dict:
    """Night 1 full; night 2 after one new commit on main; night 3 with nothing new."""
    repo = make_upstream_repo(services, f"t{uuid.uuid4().hex[:8]}/fleet")
    manifest = write_set(tmp_path, [], git=[{"name": "fleet", "url": repo["url"], "ref": {"branch": "main"}}])
    collect(mirror_cli, manifest, tmp_path / "g1")
    commit = add_commit(services, repo["name"], "main", {"night-2.txt": "new\n"})
    collect(mirror_cli, manifest, tmp_path / "g2", "--since", tmp_path / "g1")
    collect(mirror_cli, manifest, tmp_path / "g3", "--since", tmp_path / "g2.inventory.json")
    return {"repo": repo, "commit": commit, "bundles": [tmp_path / n for n in ("g1", "g2", "g3")]}


def _git_import(mirror_cli, bundle, services, internal_url, git_base, env, *extra) -> CliResult:
    return import_(mirror_cli, bundle, services, internal_url, env, "--git", git_base, *extra)


def test_incremental_git_bundle_has_the_base_heads_as_prerequisites(git_nights):
    g1, g2, g3 = git_nights["bundles"]
    [before] = inventory_of(g1).artifacts
    [after] = inventory_of(g2).artifacts
    assert after.extra["prerequisites"] == [before.extra["heads"]["refs/heads/main"]]
    assert after.extra["heads"] == {"refs/heads/main": git_nights["commit"]}
    assert carried_blobs(g2)[after.digest] < carried_blobs(g1)[before.digest]
    [unmoved] = inventory_of(g3).artifacts
    assert carried_blobs(g3) == {}
    assert inventory_of(g3).expected == ()  # the source did not move: its record is what it leaves to the base
    assert list(inventory_of(g3).expected_sizes) == [after.digest]
    assert unmoved.extra["heads"]["refs/heads/main"] == git_nights["commit"]


def test_git_nights_import_in_order(git_nights, mirror_cli, services, internal_url, target_prefix, git_env):
    git_base = f"{services.git_internal}/{target_prefix}"
    for bundle in git_nights["bundles"]:
        result = _git_import(mirror_cli, bundle, services, internal_url, git_base, git_env)
        assert result.exit_code == 0, result.stderr
    landed = _internal_refs(services, f"{target_prefix}/{git_nights['repo']['name']}.git")
    assert landed["refs/heads/main"] == git_nights["commit"]


@pytest.mark.parametrize("night", [1, 2], ids=["new-commit", "nothing-new"])
def test_incremental_git_bundle_without_its_base_is_refused(
    git_nights, night, mirror_cli, services, internal_url, target_prefix, git_env
):
    bundle = git_nights["bundles"][night]
    git_base = f"{services.git_internal}/{target_prefix}"
    result = _git_import(mirror_cli, bundle, services, internal_url, git_base, git_env)
    assert result.exit_code == 3
    assert inventory_of(bundle).base.bundle_id in result.stderr
    assert _internal_refs(services, f"{target_prefix}/{git_nights['repo']['name']}.git") == {}


def test_a_tag_added_on_a_commit_the_base_carried_reaches_the_target(
    tmp_path, mirror_cli, services, internal_url, target_prefix, git_env
):
    # git leaves out of a bundle every ref whose commit is excluded as the base's: such a tag must still travel.
    repo = make_upstream_repo(services, f"t{uuid.uuid4().hex[:8]}/fleet", tags=(), annotated=())
    manifest = write_set(tmp_path, [], git=[{"name": "fleet", "url": repo["url"], "ref": {"branch": "main"}}])
    collect(mirror_cli, manifest, tmp_path / "t1")
    main = repo["heads"]["main"]
    move_tag(services, repo["name"], "v9.0.0", main)
    collect(mirror_cli, manifest, tmp_path / "t2", "--since", tmp_path / "t1")
    [record] = inventory_of(tmp_path / "t2").artifacts
    assert record.extra["heads"]["refs/tags/v9.0.0"] == main

    git_base = f"{services.git_internal}/{target_prefix}"
    for night in ("t1", "t2"):
        result = _git_import(mirror_cli, tmp_path / night, services, internal_url, git_base, git_env)
        assert result.exit_code == 0, result.stderr
    landed = _internal_refs(services, f"{target_prefix}/{repo['name']}.git")
    assert landed["refs/tags/v9.0.0"] == main


def test_a_source_with_nothing_new_is_refused_when_the_target_lacks_one_of_its_refs(
    tmp_path, mirror_cli, services, internal_url, target_prefix, git_env
):
    repo = make_upstream_repo(services, f"t{uuid.uuid4().hex[:8]}/fleet")
    manifest = write_set(tmp_path, [], git=[{"name": "fleet", "url": repo["url"], "ref": {"branch": "main"}}])
    collect(mirror_cli, manifest, tmp_path / "u1")
    collect(mirror_cli, manifest, tmp_path / "u2", "--since", tmp_path / "u1")
    git_base = f"{services.git_internal}/{target_prefix}"
    assert _git_import(mirror_cli, tmp_path / "u1", services, internal_url, git_base, git_env).exit_code == 0
    # main's commit stays in the repository as the tip of the annotated v2.0.0; the branch itself is gone.
    delete_ref(services, f"{target_prefix}/{repo['name']}", "refs/heads/main", where="internal")

    result = _git_import(mirror_cli, tmp_path / "u2", services, internal_url, git_base, git_env)
    assert result.exit_code == 3
    assert "refs/heads/main" in result.stderr and "EXPECTED_GIT_MISSING" in result.stderr


def test_an_unreadable_since_is_a_usage_error_naming_the_flag(tmp_path, mirror_cli, upstream):
    manifest = write_set(tmp_path, [upstream.ref("app:1")])
    (tmp_path / "bad.tar").write_bytes(b"not a tar at all" * 64)
    result = mirror_cli("collect", manifest, "-o", tmp_path / "out", "--since", tmp_path / "bad.tar")
    assert result.exit_code == 2
    assert f"--since {tmp_path / 'bad.tar'}" in result.stderr


def test_a_diff_of_two_nights_counts_as_new_only_what_the_later_carries(three_nights, mirror_cli):
    """Night 3 leaves app:2's base layer to the chain (night 2 listed none of its blobs): not a new blob."""
    _, n2, n3 = three_nights["bundles"]
    result = mirror_cli("diff", n2, n3, "--json")
    assert result.exit_code == 0, result.stderr
    assert result.json()["newBlobs"]["count"] == len(carried_blobs(n3)) == 3
