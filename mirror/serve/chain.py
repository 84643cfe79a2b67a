"""The bundles `mirror serve` is given, each verified as `mirror verify --trust` verifies it (or on checksums alone
with --allow-unsigned), and in an order that holds: every incremental bundle right after its base.

Every problem of every bundle is listed in one refusal, before anything listens. See docs/serve.md.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

from mirror.bundle.opening import open_bundle
from mirror.bundle.verify import VerifiedBundle, check_bundle
from mirror.errors import Problem, VerificationError, problem_count
from mirror.limits import Limits
from mirror.progress import Progress
from mirror.terminal import escape
from mirror.trust.check import check_trust

CHAIN_BROKEN = "CHAIN_BROKEN"  # an incremental bundle not right after its base
UNREADABLE = "BUNDLE_UNREADABLE"  # no inventory to check the rest against, or a tar that does not parse


def _verified(
    bundle: Path, trust: Path | None, *, jobs: int, progress: Progress, limits: Limits, clock: dt.datetime | None
) -> tuple[VerifiedBundle | None, list[Problem]]:
    """The bundle checked completely, and its problems, each naming the bundle."""
    try:
        if trust is None:
            checked = check_bundle(open_bundle(bundle, limits), jobs=jobs, limits=limits, progress=progress)
            problems = checked.problems
        else:
            report = check_trust(bundle, trust, jobs=jobs, limits=limits, progress=progress, clock=clock)
            checked, problems = report.checked, report.problems
    except VerificationError as exc:  # an unreadable inventory, a malformed tar: nothing more to check
        return None, [Problem(UNREADABLE, f"{bundle}: {exc.one_line()}")]
    return checked, [Problem(p.code, f"{bundle}: {p.message}") for p in problems]


def _link_problems(bundles: Sequence[Path], checked: Sequence[VerifiedBundle]) -> list[Problem]:
    """Each incremental bundle must follow its base: the bundle before it, by its inventory's sha256."""
    problems = []
    for index, (path, bundle) in enumerate(zip(bundles, checked, strict=True)):
        base = bundle.inventory.base
        if base is None:
            continue
        wanted = f"its base {escape(base.describe())}"
        if index == 0:
            problems.append(Problem(CHAIN_BROKEN, f"{path}: an incremental bundle, given without {wanted} before it"))
        elif base.inventory != "sha256:" + checked[index - 1].inventory_sha256:
            problems.append(
                Problem(
                    CHAIN_BROKEN, f"{path}: an incremental bundle, given after {bundles[index - 1]} instead of {wanted}"
                )
            )
    return problems


def verify_chain(
    bundles: Sequence[Path],
    *,
    trust: Path | None,
    jobs: int,
    progress: Progress,
    limits: Limits,
    clock: dt.datetime | None = None,
) -> list[VerifiedBundle]:
    """Every bundle verified, in the order given; raises VerificationError listing every problem of all of them.

    trust: the policy each bundle is judged by; None verifies checksums and graphs alone (--allow-unsigned).
    """
    checked: list[VerifiedBundle] = []
    problems: list[Problem] = []
    for bundle in bundles:
        verified, found = _verified(bundle, trust, jobs=jobs, progress=progress, limits=limits, clock=clock)
        problems += found
        if verified is not None:
            checked.append(verified)
    if not problems:
        problems = _link_problems(bundles, checked)
    if problems:
        raise VerificationError(
            f"refused to serve {len(bundles)} bundle(s): {problem_count(problems)} problem(s)",
            problems=problems,
            hint="nothing was served; give verified bundles, each incremental one right after its base",
        )
    return checked
