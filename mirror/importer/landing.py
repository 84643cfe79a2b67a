"""Where every artifact of a verified bundle will land, checked as a whole before anything is written.

Registry landing names (repository after the prefix, tag) follow the distribution grammar; Git landing URLs stay
under `--git BASE`. Every problem of both kinds is listed in one refusal (exit 3: the signed inventory names
something the targets must not receive); clashes between honest sources stay usage errors (exit 2).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mirror.bundle.verify import VerifiedBundle
from mirror.errors import VerificationError
from mirror.importer.git import TARGET_CLASH, check_git_targets, plan_git_targets
from mirror.importer.registry import ImagePlan, plan_images, plan_landings


@dataclass(frozen=True)
class Landings:
    images: list[ImagePlan]
    git: dict[str, str] = field(default_factory=dict)  # source URL → landing URL under the Git base


def plan_landing_names(verified: VerifiedBundle, registry_prefix: str, git_base: str | None) -> Landings:
    """Every landing name of the bundle, or VerificationError listing every invalid one."""
    _, problems = plan_landings(verified, registry_prefix)
    if git_base is not None:
        problems += [p for p in plan_git_targets(git_base, verified.git)[1] if p.code != TARGET_CLASH]
    if problems:
        raise VerificationError(
            f"{verified.reader.location}: {len(problems)} artifact(s) cannot land on the targets",
            problems=problems,
            hint="the inventory names repositories, tags or Git paths the targets must not receive; nothing was "
            "written",
        )
    images = plan_images(verified, registry_prefix)
    git = check_git_targets(git_base, verified.git, str(verified.reader.location)) if git_base else {}
    return Landings(images, git)
