"""However many problems a hostile bundle yields, a refusal lists at most max_problems and counts the rest."""

from __future__ import annotations

from mirror.errors import PROBLEMS_OMITTED, Problem, VerificationError, cap_problems, problem_count


def problems(code: str, count: int) -> list[Problem]:
    return [Problem(code, f"file {i}") for i in range(count)]


def test_a_short_list_is_kept_as_it_is():
    short = problems("FILE_DIGEST", 3)
    assert cap_problems(short, 5) == short


def test_a_long_list_keeps_the_first_ones_and_summarises_the_rest_by_code():
    capped = cap_problems([*problems("FILE_UNLISTED", 999_990), *problems("FILE_DIGEST", 10)], 100)
    assert len(capped) == 101
    assert capped[:100] == problems("FILE_UNLISTED", 100)
    summary = capped[100]
    assert summary.code == PROBLEMS_OMITTED
    assert summary.message == "... and 999,900 more problem(s) of these kinds: FILE_UNLISTED x999,890, FILE_DIGEST x10"
    assert problem_count(capped) == 1_000_000


def test_capping_a_capped_list_again_loses_no_count():
    once = cap_problems(problems("FILE_UNLISTED", 500), 100)
    twice = cap_problems([*once, *problems("SUBJECT_MISMATCH", 2)], 100)
    assert problem_count(twice) == 502
    assert dict(twice[-1].omitted) == {"FILE_UNLISTED": 400, "SUBJECT_MISMATCH": 2}


def test_a_generator_is_consumed_without_being_held():
    produced = (Problem("FILE_UNLISTED", f"file {i}") for i in range(200_000))
    capped = cap_problems(produced, 10)
    assert len(capped) == 11 and problem_count(capped) == 200_000


def test_every_verification_error_shows_at_most_the_limit():
    error = VerificationError("refused", problems=problems("FILE_UNLISTED", 5_000))
    assert len(error.problems) == 101
    assert str(error).count("\n") == 101
    assert "4,900 more problem(s)" in str(error)
