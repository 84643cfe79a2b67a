"""The checks of a bundle's attached manifests beyond their graphs: each is attached to a manifest the bundle
carries or expects, in that manifest's repository, as its record says. See docs/bundle-format.md
("Attached manifests").
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING

from mirror.bundle.inventory import Inventory, blob_path
from mirror.errors import Problem, ReferenceError_
from mirror.oci.digest import is_digest
from mirror.oci.reference import parse_reference
from mirror.supplychain.attached import ATTACHED, COSIGN_SUFFIXES, FOUND, FOUND_COSIGN_TAG, cosign_tag
from mirror.terminal import escape

if TYPE_CHECKING:
    from mirror.bundle.verify import VerifiedImage

ATTACHED_SUBJECT_UNKNOWN = "ATTACHED_SUBJECT_UNKNOWN"  # attached to nothing the bundle carries or expects
ATTACHED_REPOSITORY_MISMATCH = "ATTACHED_REPOSITORY_MISMATCH"  # in another repository than its subject
ATTACHED_RECORD_INVALID = "ATTACHED_RECORD_INVALID"  # its record contradicts itself or its manifest


def _repository(source: str) -> str | None:
    try:
        return parse_reference(source).name
    except ReferenceError_:
        return None  # a chart from an HTTP repository: nothing is attached to it


def _holders(images: list[VerifiedImage], attached: list[VerifiedImage], inventory: Inventory) -> dict[str, set[str]]:
    """Every manifest the bundle carries or expects → the repositories (HOST/PATH) it is in.

    An image a platform filter narrowed also holds its upstream index (`sourceDigest`) when the bundle carries or
    expects that index's bytes: what is attached upstream is attached to it. Every artifact holds its own
    digest, even when its graph has a problem: that problem is reported once, not again for what it carries.
    """
    carried = {f.path for f in inventory.files}
    expected = inventory.expected_sizes
    holders: dict[str, set[str]] = defaultdict(set)
    for artifact in inventory.artifacts:
        repository = _repository(artifact.source)
        if repository is not None and artifact.kind in ("image", "chart", ATTACHED):
            holders[artifact.digest].add(repository)
    for image in [*images, *attached]:
        repository = _repository(image.artifact.source)
        if repository is None or image.artifact.kind == "file":  # a file's source is a URL or a local path
            continue
        digests = [m.digest for m in image.manifests] + list(image.expected_manifests)
        upstream = image.artifact.extra.get("sourceDigest")
        if is_digest(upstream) and (blob_path(upstream) in carried or upstream in expected):
            digests.append(upstream)
        for digest in digests:
            holders[digest].add(repository)
    return holders


def _record_problem(image: VerifiedImage) -> str | None:
    """What is wrong with an attached record on its own, or None."""
    artifact = image.artifact
    extra = artifact.extra
    subject, found, tag = extra.get("subject"), extra.get("found"), extra.get("tag")
    if not is_digest(subject) or not isinstance(extra.get("image"), str):
        return "its record names no subject digest or no image"
    if found not in FOUND:
        return f"found {found!r}, not one of {', '.join(FOUND)}"
    if found == FOUND_COSIGN_TAG:
        if tag not in {cosign_tag(subject, suffix) for suffix in COSIGN_SUFFIXES}:
            return f"its tag {tag!r} is not one of cosign's tags for {subject}"
    elif tag is not None:
        return f"it names a tag ({tag!r}) but was found through {found}"
    try:
        reference = parse_reference(artifact.source)
    except ReferenceError_:
        reference = None
    if reference is None or reference.tag is not None or reference.digest != artifact.digest:
        return f"its source is not pinned to its own digest {artifact.digest}"
    if image.carried:
        # Found through a subject, it must name that subject; found under cosign's tag, it may name none, but
        # never another: the import lists a manifest in its subject's fallback index, a tag named after it.
        named = image.top.body.get("subject")
        named_digest = named.get("digest") if isinstance(named, dict) else None
        if (found != FOUND_COSIGN_TAG or named is not None) and named_digest != subject:
            return f"its manifest's subject is {str(named_digest)[:100]}, not {subject}"
    return None


def check_attached(images: list[VerifiedImage], attached: list[VerifiedImage], inventory: Inventory) -> list[Problem]:
    """Every attached record consistent, attached to a manifest the bundle carries or expects, and in the
    repository of that manifest (it lands there)."""
    holders = _holders(images, attached, inventory)
    problems = []
    for image in attached:
        where = f"attached {image.artifact.source}"
        wrong = _record_problem(image)
        if wrong is not None:
            problems.append(Problem(ATTACHED_RECORD_INVALID, escape(f"{where}: {wrong}")))
            continue
        subject = str(image.artifact.extra["subject"])
        if subject not in holders:
            problems.append(
                Problem(ATTACHED_SUBJECT_UNKNOWN, escape(f"{where}: its subject {subject} is not in the bundle"))
            )
        elif _repository(image.artifact.source) not in holders[subject]:
            problems.append(
                Problem(
                    ATTACHED_REPOSITORY_MISMATCH,
                    escape(f"{where}: its subject {subject} is in {', '.join(sorted(holders[subject]))}, not here"),
                )
            )
    return problems
