"""Which bundles `mirror restore` accepts, in which order: exactly the bundles the journal lists as imported, a
chain from a full bundle on, in the order they were first imported. Pure: the bundles' heads and the journal in.

See docs/day-two.md ("Restore").
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from mirror.errors import Problem, UsageError, VerificationError
from mirror.trust.journal import JournalEntry
from mirror.trust.journal_read import landed

RESTORE_NOT_IMPORTED = "RESTORE_NOT_IMPORTED"
RESTORE_DUPLICATE = "RESTORE_DUPLICATE"
RESTORE_BASE_MISSING = "RESTORE_BASE_MISSING"
RESTORE_INCOMPLETE = "RESTORE_INCOMPLETE"
RESTORE_GIT_NEEDED = "RESTORE_GIT_NEEDED"

_HINT = "nothing was written; give every bundle of the chain, from a full bundle to the last one imported"


@dataclass(frozen=True)
class BundleHead:
    """What the chain check reads of a bundle: its signed inventory's digest, id and base."""

    location: str  # as given on the command line
    inventory: str  # sha256:<hex> of its inventory.json
    bundle_id: str
    base: str | None  # an incremental bundle's base inventory, sha256:<hex>
    carries_git: bool


@dataclass(frozen=True)
class _Imported:
    bundle_id: str
    first: int  # the entry of its first import: the chain's order
    target: str  # where that import landed it
    latest: int  # the entry of its latest import or restore: what a restore repeats


@dataclass(frozen=True)
class ChainLink:
    head: BundleHead
    first: int
    restores: int
    target: str  # the registry it was first imported to


def _imports(entries: Iterable[JournalEntry]) -> dict[str, _Imported]:
    found: dict[str, _Imported] = {}
    for entry in entries:
        if not landed(entry):
            continue
        body = entry.body
        inventory = str(body["inventory"])
        known = found.get(inventory)
        if known is None:
            found[inventory] = _Imported(str(body["bundleId"]), entry.seq, body["registry"], entry.seq)
        else:
            found[inventory] = _Imported(known.bundle_id, known.first, known.target, entry.seq)
    return found


def plan_chain(heads: Sequence[BundleHead], entries: Iterable[JournalEntry], *, git: bool) -> list[ChainLink]:
    """The bundles in the order of their first import; every problem listed at once, before anything is written.

    A bundle the journal does not list as imported is a verification failure (exit 3); a chain given incomplete
    (a base missing, a later import left out, a bundle twice, Git sources without --git) is a usage error (exit 2).
    """
    imports = _imports(entries)
    unknown = [
        Problem(
            RESTORE_NOT_IMPORTED,
            f"{h.location}: bundle {h.bundle_id} ({h.inventory}) is not imported, says the journal",
        )
        for h in heads
        if h.inventory not in imports
    ]
    if unknown:
        raise VerificationError(
            f"restore refused: {len(unknown)} bundle(s) the journal does not list as imported",
            problems=unknown,
            hint=_HINT,
        )
    problems = _duplicates(heads)
    given = {h.inventory: h for h in heads}
    problems += [
        Problem(
            RESTORE_BASE_MISSING,
            f"{h.location}: bundle {h.bundle_id} is incremental on {h.base}, which is not among the bundles given",
        )
        for h in given.values()
        if h.base is not None and h.base not in given
    ]
    chain = sorted(
        (
            ChainLink(h, imports[h.inventory].first, imports[h.inventory].latest, imports[h.inventory].target)
            for h in given.values()
        ),
        key=lambda link: link.first,
    )
    problems += _left_out(chain, imports, given)
    if not git:
        problems += [
            Problem(RESTORE_GIT_NEEDED, f"{h.location}: bundle {h.bundle_id} carries Git sources; give --git URL")
            for h in given.values()
            if h.carries_git
        ]
    if problems:
        raise UsageError(
            f"restore refused: {len(problems)} problem(s) with the bundles given", problems=problems, hint=_HINT
        )
    return chain


def _duplicates(heads: Sequence[BundleHead]) -> list[Problem]:
    seen: dict[str, BundleHead] = {}
    problems = []
    for head in heads:
        first = seen.setdefault(head.inventory, head)
        if first is not head:
            problems.append(
                Problem(RESTORE_DUPLICATE, f"{head.location}: the same bundle as {first.location} ({head.inventory})")
            )
    return problems


def _left_out(chain: list[ChainLink], imports: dict[str, _Imported], given: dict[str, BundleHead]) -> list[Problem]:
    """Bundles imported to the chain's targets after its first bundle, and not given: without them the targets
    would end older than the journal says they were."""
    if not chain:
        return []
    start, targets = chain[0].first, {link.target for link in chain}
    return [
        Problem(
            RESTORE_INCOMPLETE,
            f"bundle {found.bundle_id} ({inventory}) was imported to {found.target} after {chain[0].head.bundle_id} "
            f"(journal entry {found.first}), and is not among the bundles given",
        )
        for inventory, found in sorted(imports.items(), key=lambda item: item[1].first)
        if found.first > start and found.target in targets and inventory not in given
    ]
