"""What `mirror prune` plans to delete, read from the journal alone (docs/day-two.md, "What prune deletes")."""

from __future__ import annotations

from pathlib import Path

from mirror.prune.plan import Candidate, plan_prune
from tests.support.prunejournals import TARGET, attached, digest, entries, image, night, write_nights

APP = "mirror/team/app"
BASE = "mirror/library/base"


def planned(state_file: Path, keep: int, target: str = TARGET) -> list[tuple[str, str]]:
    return [(c.repository, c.digest) for c in plan_prune(entries(state_file), target, keep).candidates]


def test_keep_one_of_three_nights_deletes_what_only_the_two_older_nights_used(tmp_path: Path) -> None:
    state_file = write_nights(
        tmp_path,
        [
            night(1, [image(APP, "1.0", digest("app 1"))]),
            night(2, [image(APP, "2.0", digest("app 2"))]),
            night(3, [image(APP, "3.0", digest("app 3"))]),
        ],
    )
    plan = plan_prune(entries(state_file), TARGET, 1)
    assert [b.bundle_id for b in plan.kept] == ["night-3"]
    assert [b.bundle_id for b in plan.pruned] == ["night-1", "night-2"]
    assert plan.candidates == [
        Candidate(APP, digest("app 1"), "image", ("1.0",)),
        Candidate(APP, digest("app 2"), "image", ("2.0",)),
    ]
    assert plan.problems == []


def test_keep_two_deletes_only_what_the_oldest_night_used(tmp_path: Path) -> None:
    state_file = write_nights(
        tmp_path,
        [
            night(1, [image(APP, "1.0", digest("app 1"))]),
            night(2, [image(APP, "2.0", digest("app 2"))]),
            night(3, [image(APP, "3.0", digest("app 3"))]),
        ],
    )
    assert planned(state_file, 2) == [(APP, digest("app 1"))]


def test_a_base_image_every_night_shares_is_kept(tmp_path: Path) -> None:
    base = image(BASE, "1", digest("base"), [digest("base amd64")])
    state_file = write_nights(
        tmp_path,
        [night(1, [base, image(APP, "1.0", digest("app 1"))]), night(2, [base, image(APP, "2.0", digest("app 2"))])],
    )
    assert planned(state_file, 1) == [(APP, digest("app 1"))]


def test_a_digest_a_kept_night_uses_in_another_repository_is_still_deleted_where_only_old_nights_used_it(
    tmp_path: Path,
) -> None:
    state_file = write_nights(
        tmp_path,
        [night(1, [image(APP, "1.0", digest("shared"))]), night(2, [image(BASE, "1.0", digest("shared"))])],
    )
    assert planned(state_file, 1) == [(APP, digest("shared"))]


def test_a_child_manifest_a_kept_index_also_lists_is_kept(tmp_path: Path) -> None:
    state_file = write_nights(
        tmp_path,
        [
            night(1, [image(APP, "1.0", digest("index 1"), [digest("amd64"), digest("arm64 old")])]),
            night(2, [image(APP, "2.0", digest("index 2"), [digest("amd64"), digest("arm64 new")])]),
        ],
    )
    assert planned(state_file, 1) == [(APP, digest("index 1")), (APP, digest("arm64 old"))]


def test_an_index_is_deleted_before_its_children_and_attached_manifests_before_both(tmp_path: Path) -> None:
    state_file = write_nights(
        tmp_path,
        [
            night(
                1,
                [image(APP, "1.0", digest("index 1"), [digest("child 1")])],
                [attached(APP, "sha256-x.sig", digest("sig 1"))],
            ),
            night(2, [image(APP, "2.0", digest("index 2"))]),
        ],
    )
    plan = plan_prune(entries(state_file), TARGET, 1)
    assert [(c.digest, c.role) for c in plan.candidates] == [
        (digest("sig 1"), "attached"),
        (digest("index 1"), "image"),
        (digest("child 1"), "child"),
    ]


def test_a_tag_a_later_night_moved_goes_with_the_old_manifest_and_the_kept_tag_is_recorded(tmp_path: Path) -> None:
    state_file = write_nights(
        tmp_path,
        [
            night(1, [image(APP, "latest", digest("app 1"))]),
            night(2, [image(APP, "latest", digest("app 2"))]),
        ],
    )
    plan = plan_prune(entries(state_file), TARGET, 1)
    assert plan.candidates == [Candidate(APP, digest("app 1"), "image", ("latest",))]
    assert plan.kept_tags == {(APP, "latest"): digest("app 2")}


def test_an_attached_manifest_the_kept_night_still_lists_is_kept_and_an_old_one_is_deleted(tmp_path: Path) -> None:
    app = image(APP, "1.0", digest("app 1"))
    state_file = write_nights(
        tmp_path,
        [
            night(1, [app], [attached(APP, None, digest("sbom")), attached(APP, "sha256-a.sig", digest("sig old"))]),
            night(2, [app], [attached(APP, None, digest("sbom")), attached(APP, "sha256-a.sig", digest("sig new"))]),
        ],
    )
    plan = plan_prune(entries(state_file), TARGET, 1)
    assert plan.candidates == [Candidate(APP, digest("sig old"), "attached", ("sha256-a.sig",))]


def test_keeping_as_many_bundles_as_were_imported_deletes_nothing(tmp_path: Path) -> None:
    state_file = write_nights(tmp_path, [night(1, [image(APP, "1.0", digest("app 1"))])])
    plan = plan_prune(entries(state_file), TARGET, 1)
    assert (plan.candidates, [b.bundle_id for b in plan.kept], plan.pruned) == ([], ["night-1"], [])


def test_refused_failed_and_partial_attempts_are_not_imported_bundles(tmp_path: Path) -> None:
    state_file = write_nights(
        tmp_path,
        [
            night(1, [image(APP, "1.0", digest("app 1"))]),
            night(2, [], result="refused"),
            night(3, [], result="failed"),
            night(4, [image(APP, "4.0", digest("app 4"))]),
        ],
    )
    plan = plan_prune(entries(state_file), TARGET, 1)
    assert [b.bundle_id for b in plan.kept] == ["night-4"]
    assert [b.bundle_id for b in plan.pruned] == ["night-1"]


def test_what_a_partial_import_after_the_kept_bundles_set_out_to_write_is_kept(tmp_path: Path) -> None:
    state_file = write_nights(
        tmp_path,
        [
            night(1, [image(APP, "1.0", digest("app 1"))]),
            night(2, [image(APP, "2.0", digest("app 2"))]),
            night(3, [image(APP, "1.0", digest("app 1"))], result="partial"),
        ],
    )
    assert planned(state_file, 1) == []


def test_only_bundles_imported_to_the_target_are_counted_and_another_prefix_on_the_same_host_is_protected(
    tmp_path: Path,
) -> None:
    other = "https://registry.test/staging"
    state_file = write_nights(
        tmp_path,
        [
            night(1, [image(APP, "1.0", digest("app 1")), image(APP, "9.0", digest("app 9"))]),
            night(2, [image("staging/team/app", "9.0", digest("app 9"))], registry=other),
            night(3, [image(APP, "3.0", digest("app 3"))]),
            night(4, [image(APP, "1.0", digest("app 1"))], registry="https://elsewhere.test/mirror"),
        ],
    )
    plan = plan_prune(entries(state_file), TARGET, 1)
    assert [b.bundle_id for b in plan.kept] == ["night-3"]
    assert [(c.repository, c.digest) for c in plan.candidates] == [(APP, digest("app 1")), (APP, digest("app 9"))]
    assert planned(state_file, 1, other) == []


def test_a_repository_another_target_on_the_same_host_recorded_is_never_pruned(tmp_path: Path) -> None:
    # `https://registry.test` lands `mirror/team/app` too: the same repository as TARGET's prefix gives it.
    state_file = write_nights(
        tmp_path,
        [
            night(1, [image(APP, "1.0", digest("app 1"))]),
            night(2, [image(APP, "1.0", digest("app 1"))], registry="https://registry.test"),
            night(3, [image(APP, "3.0", digest("app 3"))]),
        ],
    )
    assert planned(state_file, 1) == []


def test_a_target_the_journal_never_imported_to_is_a_problem_naming_the_ones_it_did(tmp_path: Path) -> None:
    state_file = write_nights(tmp_path, [night(1, [image(APP, "1.0", digest("app 1"))])])
    plan = plan_prune(entries(state_file), "https://registry.test/other", 1)
    [problem] = plan.problems
    assert problem.code == "PRUNE_TARGET_UNKNOWN" and TARGET in problem.message


def test_a_kept_bundle_whose_entry_could_not_list_what_it_wrote_refuses_the_prune(tmp_path: Path) -> None:
    unlisted = {**night(2, []), "written": None}
    state_file = write_nights(tmp_path, [night(1, [image(APP, "1.0", digest("app 1"))]), unlisted])
    plan = plan_prune(entries(state_file), TARGET, 1)
    assert [p.code for p in plan.problems] == ["PRUNE_KEPT_UNLISTED"]
    assert plan.candidates == []


def test_an_older_bundle_whose_entry_could_not_list_what_it_wrote_is_noted_and_deletes_nothing(
    tmp_path: Path,
) -> None:
    unlisted = {**night(1, []), "written": None}
    state_file = write_nights(tmp_path, [unlisted, night(2, [image(APP, "2.0", digest("app 2"))])])
    plan = plan_prune(entries(state_file), TARGET, 1)
    assert plan.candidates == [] and plan.problems == []
    assert any("night-1" in note for note in plan.notes)
