"""The plan held against the registry as it is now: which candidates are still there, which tags point at them,
and so which may go. `read_registry` only reads; `decide` is pure.

See docs/day-two.md ("The check before any delete").
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mirror.errors import Problem, RegistryHTTPError
from mirror.parallel import run_parallel
from mirror.prune.plan import Candidate, PrunePlan
from mirror.registry.client import RegistryClient

PRUNE_TAG_NOT_JOURNALED = "PRUNE_TAG_NOT_JOURNALED"
PRUNE_TAG_MOVED = "PRUNE_TAG_MOVED"
PRUNE_REPOSITORY_LEFT_WHOLE = "PRUNE_REPOSITORY_LEFT_WHOLE"

DELETE, GONE, SKIP = "delete", "gone", "skip"


@dataclass
class RegistryView:
    """What the registry holds now, of the repositories the plan touches."""

    present: set[tuple[str, str]] = field(default_factory=set)  # candidates (repository, digest) still there
    tags: dict[str, dict[str, str]] = field(default_factory=dict)  # repository → tag → the digest it names now

    def tags_on(self, repository: str, digest: str) -> tuple[str, ...]:
        return tuple(sorted(t for t, d in self.tags.get(repository, {}).items() if d == digest))


@dataclass(frozen=True)
class Decision:
    candidate: Candidate
    action: str  # delete, gone (the registry no longer has it), skip (left, with the problem saying why)
    tags: tuple[str, ...] = ()  # the tags that point at it now: they go with it
    problem: Problem | None = None

    def to_json(self) -> dict[str, object]:
        return {
            **self.candidate.to_json(),
            "action": self.action,
            "currentTags": list(self.tags),
            "problem": None if self.problem is None else self.problem.to_json(),
        }


def _tag_list(client: RegistryClient, repository: str) -> list[str]:
    try:
        return list(client.iter_tags(repository))
    except RegistryHTTPError as exc:
        if exc.status == 404:  # the repository is gone, or was never there
            return []
        raise


def read_registry(client: RegistryClient, plan: PrunePlan, jobs: int) -> RegistryView:
    """Every tag of each repository the plan touches, the digest each names now, and which candidates remain.

    Every tag, not only those the journal recorded: a tag put on a candidate outside mirror would go with it.
    """
    view = RegistryView()
    repositories = plan.repositories
    listed = run_parallel(repositories, lambda repository: _tag_list(client, repository), jobs)
    pairs = [(repository, tag) for repository, tags in zip(repositories, listed, strict=True) for tag in tags]
    named = run_parallel(pairs, lambda pair: client.manifest_digest(*pair), jobs)
    for (repository, tag), digest in zip(pairs, named, strict=True):
        if digest is not None:  # a tag deleted since it was listed names nothing
            view.tags.setdefault(repository, {})[tag] = digest
    refs = [(c.repository, c.digest) for c in plan.candidates]
    found = run_parallel(refs, lambda ref: client.manifest_digest(*ref) is not None, jobs)
    view.present = {ref for ref, there in zip(refs, found, strict=True) if there}
    return view


def _tag_problem(plan: PrunePlan, candidate: Candidate, tag: str) -> Problem | None:
    where = f"{candidate.repository}:{tag}"
    if tag not in candidate.tags:
        return Problem(
            PRUNE_TAG_NOT_JOURNALED,
            f"{where} points at {candidate.digest}, and the journal never recorded that tag on it (tagged outside "
            "mirror?): deleting the manifest would delete the tag",
        )
    kept = plan.kept_tags.get((candidate.repository, tag))
    if kept is not None:
        return Problem(
            PRUNE_TAG_MOVED,
            f"{where} points at {candidate.digest}, and a kept bundle put it on {kept}: moved since, outside mirror",
        )
    return None


def decide(plan: PrunePlan, view: RegistryView) -> list[Decision]:
    """Each candidate deleted, already gone, or skipped: a repository where a tag not as mirror left it points at a
    candidate is left whole (an operator was there: nothing in it is deleted, and the reason is reported)."""
    first: list[Decision] = []
    troubled: dict[str, Problem] = {}
    for candidate in plan.candidates:
        if (candidate.repository, candidate.digest) not in view.present:
            first.append(Decision(candidate, GONE))
            continue
        tags = view.tags_on(candidate.repository, candidate.digest)
        problems = [p for p in (_tag_problem(plan, candidate, tag) for tag in tags) if p is not None]
        if problems:
            troubled.setdefault(candidate.repository, problems[0])
            first.append(Decision(candidate, SKIP, tags, problems[0]))
        else:
            first.append(Decision(candidate, DELETE, tags))
    return [_left_whole(d, troubled[d.candidate.repository]) if _caught(d, troubled) else d for d in first]


def _caught(decision: Decision, troubled: dict[str, Problem]) -> bool:
    return decision.action == DELETE and decision.candidate.repository in troubled


def _left_whole(decision: Decision, cause: Problem) -> Decision:
    candidate = decision.candidate
    problem = Problem(
        PRUNE_REPOSITORY_LEFT_WHOLE,
        f"{candidate.repository}@{candidate.digest} not deleted: its repository is left whole ({cause.code})",
    )
    return Decision(candidate, SKIP, decision.tags, problem)
