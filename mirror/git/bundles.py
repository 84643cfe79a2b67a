"""Git bundles: collect one ref (and the tags in its history) into a bundle; check, stage and push it inside.

See docs/collector.md ("Git sources") and docs/importer.md ("Git pushes").
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import BinaryIO

from mirror.credentials import Credentials
from mirror.errors import (
    BundleFormatError,
    MirrorError,
    Problem,
    SourceNotFoundError,
    TransferError,
    UsageError,
    VerificationError,
)
from mirror.git.refs import (
    HEADS,
    PEELED_SUFFIX,
    TAGS,
    RemoteRefs,
    ResolvedRef,
    is_object_id,
    is_valid_ref_name,
    remote_refs,
)
from mirror.git.runner import DEFAULT_TRANSPORT, Transport, check_url, git_error, redact, run_git
from mirror.limits import DEFAULT_LIMITS, Limits

__all__ = [
    "BundleHeads",
    "BundleInfo",
    "PushPlan",
    "PushResult",
    "RefConflictError",
    "RefOutcome",
    "StagedRepo",
    "check_and_stage",
    "create_bundle",
    "inspect_bundle",
    "parse_header",
    "plan_push",
    "push_planned",
    "push_staged",
]

_SIGNATURES = {b"# v2 git bundle\n": 2, b"# v3 git bundle\n": 3}
_HASH_CHUNK = 1024 * 1024
# Where the quarantine keeps the target's refs while prerequisites are checked; never pushed.
_TARGET_NAMESPACE = "refs/mirror-target/"
_CAPABILITY = re.compile(r"[a-z][a-z0-9-]*")


class RefConflictError(UsageError):
    """The target has a branch with commits the bundle lacks, or a tag on another object; nothing was pushed."""

    def __init__(self, message: str, *, refs: list[str], problems: list[Problem], hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.refs = refs
        self.problems = problems

    def __str__(self) -> str:
        return self.message + "\n" + "\n".join(f"  - {p}" for p in self.problems)


@dataclass(frozen=True)
class BundleHeads:
    """What a bundle file declares: its refs (name → object id) and prerequisite commits (id → subject)."""

    version: int
    heads: dict[str, str]
    prerequisites: dict[str, str]
    capabilities: dict[str, str] = field(default_factory=dict)
    pack_offset: int = 0


@dataclass(frozen=True)
class BundleInfo:
    """A bundle written by create_bundle; path is None when nothing was new since the base commits."""

    path: Path | None
    resolved: ResolvedRef
    heads: dict[str, str]
    prerequisites: list[str]
    sha256: str
    size: int
    unchanged: dict[str, str] = field(default_factory=dict)

    @property
    def written(self) -> bool:
        return self.path is not None


@dataclass
class StagedRepo:
    """A quarantine repository holding a checked bundle's refs, ready for push_staged."""

    path: Path
    heads: dict[str, str]
    prerequisites: list[str]
    existing: dict[str, str] = field(default_factory=dict)
    # Refs mirror itself made here (relocation commits): moved on the target with a lease, never a conflict.
    owned: set[str] = field(default_factory=set)

    def discard(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


@dataclass(frozen=True)
class RefOutcome:
    ref: str
    old: str | None
    new: str
    outcome: str  # created, updated, unchanged or forced


@dataclass(frozen=True)
class PushResult:
    target: str
    refs: dict[str, RefOutcome]
    notes: list[str] = field(default_factory=list)

    def count(self, outcome: str) -> int:
        return sum(1 for r in self.refs.values() if r.outcome == outcome)


# --- small git helpers -------------------------------------------------------------------------------------


def _init_bare(path: Path) -> None:
    # An empty --template: no hooks, no sample files; core.hooksPath=/dev/null covers the rest.
    # A failure here is not the upstream's nor a bundle's: mirror's own (exit 1).
    run_git(
        ["init", "--bare", "--quiet", "--template=", str(path)],
        what=f"create the repository {path}",
        network=False,
        failure=MirrorError,
    )


def _local_refs(repo: Path, prefix: str = "refs/") -> dict[str, str]:
    done = run_git(["for-each-ref", "--format=%(objectname) %(refname)", prefix], git_dir=repo)
    refs: dict[str, str] = {}
    for line in done.stdout.splitlines():
        oid, _, name = line.partition(" ")
        refs[name] = oid
    return refs


def _object_types(repo: Path, oids: Iterable[str]) -> dict[str, str]:
    """id → type (commit, tag, tree, blob) for the ids present in `repo`; missing ones are left out."""
    wanted = sorted(set(oids))
    if not wanted:
        return {}
    done = run_git(
        ["cat-file", "--batch-check=%(objectname) %(objecttype)"], git_dir=repo, input="\n".join(wanted) + "\n"
    )
    types: dict[str, str] = {}
    for line in done.stdout.splitlines():
        oid, _, kind = line.partition(" ")
        if kind and kind != "missing":
            types[oid] = kind
    return types


def _is_ancestor(repo: Path, ancestor: str, descendant: str) -> bool:
    done = run_git(["merge-base", "--is-ancestor", ancestor, descendant], git_dir=repo, check=False)
    return done.returncode == 0


def _peel_commit(repo: Path, ref: str) -> str | None:
    done = run_git(["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], git_dir=repo, check=False)
    return done.stdout.strip() if done.returncode == 0 else None


def _fetch(
    repo: Path,
    source: str,
    refspecs: list[str],
    *,
    credentials: Credentials | None,
    transport: Transport,
    what: str,
    extra: list[str] | None = None,
    network: bool = True,
    failure: type[MirrorError] | None = None,
) -> None:
    options = ["--no-tags", "--no-write-fetch-head", "--quiet", "--no-recurse-submodules", "--stdin"]
    run_git(
        [*(extra or []), "fetch", *options, "--", source],
        git_dir=repo,
        credentials=credentials,
        transport=transport,
        input="\n".join(refspecs) + "\n",
        what=what,
        network=network,
        failure=failure,
        capped=network,  # a fetch from an upstream; a bundle read at import has a known, verified size
    )


def _moved(url: str, ref: str, listed: str | None, fetched: str | None) -> TransferError:
    return TransferError(
        f"{url}: {ref} changed while it was being collected"
        f" (listed {listed or 'absent'}, fetched {fetched or 'absent'})",
        hint="run the collection again; it resolves the refs anew",
    )


def _sha256_and_size(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(_HASH_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


# --- collect -------------------------------------------------------------------------------------------------


def create_bundle(
    url: str,
    resolved: ResolvedRef,
    dest_path: Path | str,
    *,
    credentials: Credentials | None = None,
    base_commits: Iterable[str] = (),
    base_refs: Mapping[str, str] | None = None,
    refs: Mapping[str, str] | None = None,
    transport: Transport = DEFAULT_TRANSPORT,
    pinned: bool = False,
) -> BundleInfo:
    """Fetch what `resolved` needs from `url` and write it as a git bundle at dest_path (see module doc).

    refs: the remote's refs as resolve_ref saw them (remote_refs is called again when not given); tags and
    moved refs are judged against them. base_commits: object ids the target already has, i.e. the previous
    bundle's heads (commits, and annotated tag objects: a tag whose object is listed is left out too). Those
    found in the fetched history are excluded, and the boundary commits become the bundle's prerequisites;
    the others are ignored (e.g. history rewritten upstream), so the bundle is as complete as it must be.
    base_refs: the refs the base recorded (name → id), when known. git leaves out of a bundle every ref whose object is
    excluded, so a ref that is new or moved but points into the base's history (a tag added to an old commit)
    could not travel in an incremental bundle; the source is then carried whole instead.
    pinned: `resolved` names a branch at an earlier commit than its tip (collect --lock): the branch is carried
    at that commit, which must still be in its history.
    """
    check_url(url, transport)
    bases = []
    for base in base_commits:
        if not is_object_id(base):
            raise UsageError(f"base commit {base!r} is not a full 40-hex commit id")
        bases.append(base)
    remote = refs if refs is not None else remote_refs(url, credentials, transport=transport)
    dest = Path(dest_path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".mirror-git-", dir=dest.parent))
    partial = work / "bundle.partial"  # inside the private work directory: no name anyone could plant a link at
    repo = work / "repo.git"
    try:
        _init_bare(repo)
        selected = _fetch_selected(
            repo, url, resolved, remote, credentials=credentials, transport=transport, pinned=pinned
        )
        tags = _fetch_reachable_tags(repo, url, remote, selected, credentials=credentials, transport=transport)
        carried = {**selected, **tags}
        present = _object_types(repo, bases)
        exclusions = [f"^{b}" for b in bases if present.get(b) in ("commit", "tag")]
        written = _write_bundle(repo, partial, carried, exclusions, dest)
        if exclusions and base_refs is not None and _left_behind(carried, written, base_refs):
            written = _write_bundle(repo, partial, carried, [], dest)
        if written is None:
            return BundleInfo(None, resolved, {}, [], "", 0, unchanged=dict(sorted(carried.items())))
        heads = written
        unexpected = set(heads.heads) - set(carried)
        if unexpected or any(carried[r] != oid for r, oid in heads.heads.items()):
            raise VerificationError(f"git bundle create wrote refs mirror did not ask for: {sorted(unexpected)}")
        sha256, size = _sha256_and_size(partial)
        os.replace(partial, dest)
        unchanged = {r: oid for r, oid in sorted(carried.items()) if r not in heads.heads}
        return BundleInfo(dest, resolved, heads.heads, sorted(heads.prerequisites), sha256, size, unchanged)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        partial.unlink(missing_ok=True)


def _write_bundle(
    repo: Path, partial: Path, carried: Mapping[str, str], exclusions: list[str], dest: Path
) -> BundleHeads | None:
    """`git bundle create` of the carried refs minus the exclusions; None when nothing is left to carry."""
    partial.unlink(missing_ok=True)
    done = run_git(
        ["bundle", "create", "--quiet", str(partial), "--stdin"],
        git_dir=repo,
        input="\n".join([*sorted(carried), *exclusions]) + "\n",
        check=False,
    )
    if done.returncode != 0:
        if "Refusing to create empty bundle" in done.stderr:
            return None
        # Writing our own bundle of objects already fetched and checked: a failure is mirror's own (exit 1).
        raise git_error(f"create the bundle {dest}", done.stderr, network=False, failure=MirrorError)
    return inspect_bundle(partial)


def _left_behind(carried: Mapping[str, str], written: BundleHeads | None, known: Mapping[str, str]) -> bool:
    """A ref git dropped from the bundle that the target does not hold as it is: it would never arrive."""
    heads = written.heads if written is not None else {}
    return any(ref not in heads and known.get(ref) != oid for ref, oid in carried.items())


def _fetch_selected(
    repo: Path,
    url: str,
    resolved: ResolvedRef,
    remote: Mapping[str, str],
    *,
    credentials: Credentials | None,
    transport: Transport,
    pinned: bool = False,
) -> dict[str, str]:
    """Fetch the resolved ref (or the branches holding a bare commit); return the refs to carry → object."""
    if resolved.name is not None:
        name = resolved.name
        _fetch(
            repo,
            url,
            [f"+{name}:{name}"],
            what=f"fetch {name} from {url}",
            credentials=credentials,
            transport=transport,
        )
        local = _local_refs(repo).get(name)
        listed = resolved.target or remote.get(name)
        if local is None or local != listed:
            raise _moved(url, name, listed, local)
        if pinned:
            if _object_types(repo, [resolved.commit]).get(resolved.commit) != "commit" or not _is_ancestor(
                repo, resolved.commit, name
            ):
                raise SourceNotFoundError(
                    f"{url}: the locked commit {resolved.commit} is no longer in the history of {name}",
                    hint="the branch was rewritten since the lock; resolve again and review the new lock",
                )
            run_git(["update-ref", name, resolved.commit], git_dir=repo)  # carried where the lock says
            return {name: resolved.commit}
        if resolved.kind == "commit":
            if _object_types(repo, [resolved.commit]).get(resolved.commit) != "commit" or not _is_ancestor(
                repo, resolved.commit, name
            ):
                raise SourceNotFoundError(f"{url}: commit {resolved.commit} is not on {name}")
        elif _peel_commit(repo, name) != resolved.commit:
            raise VerificationError(f"{url}: {name} does not point to the commit {resolved.commit} it was resolved to")
        return {name: local}
    commit = resolved.commit
    _fetch(
        repo,
        url,
        [f"+{HEADS}*:{HEADS}*"],
        what=f"fetch the branches of {url}",
        credentials=credentials,
        transport=transport,
    )
    if _object_types(repo, [commit]).get(commit) != "commit":
        raise SourceNotFoundError(
            f"{url}: commit {commit} is on no branch",
            hint="Flux looks for a commit in the repository's branches; name the branch with `branch:`",
        )
    done = run_git(["for-each-ref", "--format=%(refname)", f"--contains={commit}", HEADS], git_dir=repo)
    containing = sorted(done.stdout.split())
    head = getattr(remote, "head_symref", None)
    chosen = [head] if head in containing else containing
    branches = _local_refs(repo, HEADS)
    for name in chosen:
        if remote.get(name) != branches.get(name):
            raise _moved(url, name, remote.get(name), branches.get(name))
    return {name: branches[name] for name in chosen}


def _fetch_reachable_tags(
    repo: Path,
    url: str,
    remote: Mapping[str, str],
    selected: Mapping[str, str],
    *,
    credentials: Credentials | None,
    transport: Transport,
) -> dict[str, str]:
    """Fetch the remote's tags that point into the history of `selected`; return them (ref → object)."""
    candidates: dict[str, str] = {}
    for ref, oid in remote.items():
        if ref.startswith(TAGS) and not ref.endswith(PEELED_SUFFIX) and ref not in selected:
            candidates[ref] = remote.get(ref + PEELED_SUFFIX, oid)
    present = _object_types(repo, candidates.values())
    candidates = {ref: commit for ref, commit in candidates.items() if present.get(commit) == "commit"}
    if not candidates:
        return {}
    _fetch(
        repo,
        url,
        [f"+{ref}:{ref}" for ref in sorted(candidates)],
        credentials=credentials,
        transport=transport,
        what=f"fetch the tags of {url}",
    )
    merged_args = [f"--merged={ref}" for ref in sorted(selected)]
    done = run_git(["for-each-ref", "--format=%(objectname) %(refname)", *merged_args, TAGS], git_dir=repo)
    tags: dict[str, str] = {}
    for line in done.stdout.splitlines():
        oid, _, ref = line.partition(" ")
        if ref not in candidates:
            continue
        if oid != remote.get(ref):
            raise _moved(url, ref, remote.get(ref), oid)
        tags[ref] = oid
    return tags


# --- inspect -------------------------------------------------------------------------------------------------


def _format_error(path: Path | str, problem: str) -> BundleFormatError:
    return BundleFormatError(f"{path}: {problem}", hint="the bundle is damaged or was not written by mirror")


def _parse_header(path: Path) -> BundleHeads:
    try:
        with open(path, "rb") as f:
            return parse_header(f, str(path))
    except OSError as exc:
        raise BundleFormatError(f"{path}: cannot read the bundle: {exc.strerror or exc}") from exc


def parse_header(stream: BinaryIO, name: str, limits: Limits = DEFAULT_LIMITS) -> BundleHeads:
    """The header of the git bundle read from `stream` (at its start), strictly: v2 or v3, SHA-1 only, no filter,
    ids of 40 hex digits, valid ref names, bounded lines and size, and pack data right after it. `name` is the
    file named in messages. BundleFormatError when anything is off; pack_offset is where the pack begins."""
    heads: dict[str, str] = {}
    prerequisites: dict[str, str] = {}
    capabilities: dict[str, str] = {}
    first = stream.readline(64)
    version = _SIGNATURES.get(first)
    if version is None:
        raise _format_error(name, "not a git bundle (v2 or v3)")
    offset = len(first)
    while True:
        line = stream.readline(limits.max_git_bundle_header_line + 1)
        offset += len(line)
        if not line.endswith(b"\n"):
            raise _format_error(name, "the header ends early or has an overlong line")
        if offset > limits.max_git_bundle_header_bytes:
            raise _format_error(name, f"the header is larger than {limits.max_git_bundle_header_bytes} bytes")
        if line == b"\n":
            break
        try:
            text = line[:-1].decode("utf-8")
        except UnicodeDecodeError:
            raise _format_error(name, "a header line is not UTF-8") from None
        if text.startswith("@"):
            if version < 3 or heads or prerequisites:
                raise _format_error(name, f"capability {text!r} out of place")
            key, _, value = text[1:].partition("=")
            if not _CAPABILITY.fullmatch(key):
                raise _format_error(name, f"malformed capability {text[:80]!r}")
            capabilities[key] = value
        elif text.startswith("-"):
            oid, _, comment = text[1:].partition(" ")
            if heads or not is_object_id(oid):
                raise _format_error(name, f"malformed prerequisite line {text[:80]!r}")
            prerequisites[oid] = comment
        else:
            oid, _, ref = text.partition(" ")
            if not is_object_id(oid) or not is_valid_ref_name(ref):
                raise _format_error(name, f"malformed ref line {text[:200]!r}")
            if ref in heads:
                raise _format_error(name, f"ref {ref} is listed twice")
            heads[ref] = oid
    if stream.read(4) != b"PACK":
        raise _format_error(name, "no pack data after the header")
    fmt = capabilities.pop("object-format", "sha1")
    if fmt != "sha1":
        raise _format_error(name, f"object format {fmt!r}; mirror carries SHA-1 repositories only")
    if "filter" in capabilities:
        raise _format_error(name, f"a partial bundle (filter {capabilities['filter']!r}) lacks objects")
    if capabilities:
        raise _format_error(name, f"unknown capabilities {sorted(capabilities)}")
    if not heads:
        raise _format_error(name, "the header lists no refs")
    return BundleHeads(version, heads, prerequisites, {"object-format": fmt}, offset)


def _check_pack_trailer(path: Path, offset: int) -> None:
    """The pack ends with the SHA-1 of everything before it: a truncated or altered pack fails here."""
    size = path.stat().st_size
    if size - offset < 12 + 20:
        raise _format_error(path, "the pack is truncated")
    digest = hashlib.sha1(usedforsecurity=False)
    remaining = size - offset - 20
    with open(path, "rb") as f:
        f.seek(offset)
        while remaining > 0:
            chunk = f.read(min(_HASH_CHUNK, remaining))
            if not chunk:
                raise _format_error(path, "the pack is truncated")
            digest.update(chunk)
            remaining -= len(chunk)
        trailer = f.read(20)
    if trailer != digest.digest():
        raise _format_error(path, "the pack's checksum does not match: it is truncated or altered")


def inspect_bundle(path: Path | str) -> BundleHeads:
    """The refs and prerequisites of a bundle file: its header, parsed here and cross-checked with
    `git bundle list-heads`, and its pack checksum. BundleFormatError when anything is off."""
    path = Path(path).resolve()
    header = _parse_header(path)
    _check_pack_trailer(path, header.pack_offset)
    done = run_git(["bundle", "list-heads", str(path)], check=False)
    if done.returncode != 0:
        raise _format_error(path, f"git bundle list-heads refused it: {redact(done.stderr.strip()[-2000:])}")
    listed: dict[str, str] = {}
    for line in done.stdout.splitlines():
        oid, _, ref = line.partition(" ")
        listed[ref] = oid
    if listed != header.heads:
        raise _format_error(path, "git bundle list-heads and the header disagree")
    return header


# --- import --------------------------------------------------------------------------------------------------


def _compare_heads(actual: Mapping[str, str], expected: Mapping[str, str]) -> list[Problem]:
    problems = []
    for ref in sorted(set(actual) | set(expected)):
        if ref not in expected:
            problems.append(Problem("git-ref-unexpected", f"{ref} ({actual[ref]}) is in the bundle, not the inventory"))
        elif ref not in actual:
            problems.append(Problem("git-ref-missing", f"{ref} ({expected[ref]}) is in the inventory, not the bundle"))
        elif actual[ref] != expected[ref]:
            problems.append(
                Problem("git-ref-mismatch", f"{ref} is {actual[ref]} in the bundle, {expected[ref]} in the inventory")
            )
    return problems


def _check_expected(expected: Mapping[str, str]) -> dict[str, str]:
    checked = {}
    for ref, oid in expected.items():
        if not isinstance(ref, str) or not is_valid_ref_name(ref) or ref.startswith(_TARGET_NAMESPACE):
            raise BundleFormatError(f"the inventory lists {ref!r}, which is not a ref mirror carries")
        if not is_object_id(oid):
            raise BundleFormatError(f"the inventory lists {ref} at {oid!r}, which is not a 40-hex object id")
        checked[ref] = oid
    if not checked:
        raise BundleFormatError("the inventory lists no refs for this git bundle")
    return checked


def check_and_stage(
    bundle_path: Path | str,
    expected_heads: Mapping[str, str],
    *,
    quarantine_dir: Path | str,
    existing_repo_url: str | None = None,
    credentials: Credentials | None = None,
    transport: Transport = DEFAULT_TRANSPORT,
) -> StagedRepo:
    """Check a bundle against the inventory's refs and stage it in a new bare repository at quarantine_dir.

    existing_repo_url: the target repository, whose heads and tags are fetched into the quarantine when
    the bundle is incremental, so that its prerequisites are there (use the URL push_staged will push to).
    On any failure the quarantine directory is removed; on success the caller discards it after the push.
    """
    if existing_repo_url is not None:
        check_url(existing_repo_url, transport, where="target")
    bundle = Path(bundle_path).resolve()
    expected = _check_expected(expected_heads)
    quarantine = Path(quarantine_dir)
    if quarantine.exists() and (not quarantine.is_dir() or any(quarantine.iterdir())):
        raise UsageError(f"{quarantine}: the quarantine directory must be new or empty")
    header = inspect_bundle(bundle)
    problems = _compare_heads(header.heads, expected)
    if problems:
        raise BundleFormatError(
            f"{bundle}: its refs differ from the inventory's", problems=problems, hint="do not import this bundle"
        )
    if header.prerequisites and existing_repo_url is None:
        raise VerificationError(
            f"{bundle} is incremental, and no target repository was given to provide its prerequisites",
            problems=[Problem("git-prerequisite-missing", f"commit {c}") for c in sorted(header.prerequisites)],
        )
    quarantine.mkdir(parents=True, exist_ok=True)
    try:
        _init_bare(quarantine)
        existing: dict[str, str] = {}
        if header.prerequisites:
            assert existing_repo_url is not None
            existing = _fetch_existing(quarantine, existing_repo_url, expected, credentials, transport)
            types = _object_types(quarantine, header.prerequisites)
            missing = [c for c in sorted(header.prerequisites) if types.get(c) != "commit"]
            if missing:
                raise VerificationError(
                    f"{bundle} is incremental and needs {len(missing)} commit(s) that {existing_repo_url}"
                    f" does not have: {', '.join(missing)}",
                    problems=[
                        Problem("git-prerequisite-missing", f"commit {c} {header.prerequisites[c]}".rstrip())
                        for c in missing
                    ],
                    hint="import the earlier bundles of this repository first, or collect a full bundle",
                )
        run_git(
            ["bundle", "verify", "--quiet", str(bundle)],
            git_dir=quarantine,
            what=f"git bundle verify {bundle}",
            network=False,
            failure=BundleFormatError,
        )
        _fetch(
            quarantine,
            str(bundle),
            [f"+{ref}:{ref}" for ref in sorted(expected)],
            credentials=None,
            transport=replace(transport, allow_file=True),
            what=f"read {bundle}",
            extra=["-c", "fetch.fsckObjects=true"],
            network=False,
            failure=BundleFormatError,
        )
        staged = {ref: oid for ref, oid in _local_refs(quarantine).items() if not ref.startswith(_TARGET_NAMESPACE)}
        problems = _compare_heads(staged, expected)
        if problems:
            raise BundleFormatError(f"{bundle}: the refs read from it differ from the inventory's", problems=problems)
        fsck = run_git(["fsck", "--strict", "--no-dangling", "--no-progress"], git_dir=quarantine, check=False)
        findings = [
            line for line in (fsck.stdout + fsck.stderr).splitlines() if line.strip() and not line.startswith("notice:")
        ]
        if fsck.returncode != 0 or findings:
            shown = [Problem("git-fsck", redact(line)) for line in findings[:50]]
            raise VerificationError(
                f"{bundle}: git fsck --strict found problems in the bundle's objects"
                + ("" if shown else f" (exit code {fsck.returncode})"),
                problems=shown,
                hint="do not import this bundle; collect it again from the source",
            )
        return StagedRepo(quarantine, dict(sorted(expected.items())), sorted(header.prerequisites), existing)
    except BaseException:
        shutil.rmtree(quarantine, ignore_errors=True)
        raise


def _fetch_existing(
    quarantine: Path,
    url: str,
    expected: Mapping[str, str],
    credentials: Credentials | None,
    transport: Transport,
) -> dict[str, str]:
    """Fetch the target's heads and tags (and any other ref the bundle carries) into _TARGET_NAMESPACE."""
    check_url(url, transport, where="target")
    try:
        remote = remote_refs(url, credentials, transport=transport)
    except SourceNotFoundError:
        return {}  # a repository that does not exist yet has no prerequisites to offer
    wanted = sorted(
        r
        for r in remote
        if not r.endswith(PEELED_SUFFIX) and is_valid_ref_name(r) and (r.startswith((HEADS, TAGS)) or r in expected)
    )
    if wanted:
        _fetch(
            quarantine,
            url,
            [f"+{r}:{_TARGET_NAMESPACE}{r[len('refs/') :]}" for r in wanted],
            credentials=credentials,
            transport=transport,
            what=f"fetch the current refs of {url}",
        )
    return {r: remote[r] for r in wanted}


# --- push ----------------------------------------------------------------------------------------------------

_CONFLICT_REASONS = ("non-fast-forward", "fetch first", "already exists", "stale info", "atomic push failed")


@dataclass(frozen=True)
class PushPlan:
    """What pushing a staged repository would do to its target, compared with the target's refs now."""

    staged: StagedRepo
    target: str
    remote: RemoteRefs
    refs: dict[str, RefOutcome]
    conflicts: list[Problem]

    def refused(self) -> RefConflictError:
        return RefConflictError(
            f"{self.target}: {len(self.conflicts)} ref(s) would lose what the target has; nothing was pushed",
            refs=[p.message.split(":", 1)[0] for p in self.conflicts],
            problems=self.conflicts,
            hint="use --force-git to overwrite them with the bundle's",
        )


def plan_push(
    staged: StagedRepo,
    target_url: str,
    *,
    credentials: Credentials | None,
    transport: Transport = DEFAULT_TRANSPORT,
) -> PushPlan:
    """Compare the staged refs with the target's (ls-remote); writes nothing. See the module doc.

    A branch is a fast-forward when the target's commit is in the staged history (the bundle's history, or
    the target's refs fetched for an incremental bundle); a commit the quarantine lacks is a conflict.
    """
    check_url(target_url, transport, where="target")
    local = {ref: oid for ref, oid in _local_refs(staged.path).items() if ref in staged.heads}
    if local != staged.heads:
        raise VerificationError(f"{staged.path}: the staged repository no longer holds the checked refs")
    try:
        remote = remote_refs(target_url, credentials, transport=transport)
    except SourceNotFoundError:
        remote = RemoteRefs()  # a server that creates repositories on push; the push says if it does not
    outcomes: dict[str, RefOutcome] = {}
    conflicts: list[Problem] = []
    for ref, new in sorted(staged.heads.items()):
        old = remote.get(ref)
        if old is None:
            outcome = "created"
        elif old == new:
            outcome = "unchanged"
        elif ref.startswith(TAGS):
            outcome = "forced"
            conflicts.append(
                Problem("git-tag-exists", f"{ref}: the internal tag points to {old}, the bundle's to {new}")
            )
        elif _is_ancestor(staged.path, old, new):
            outcome = "updated"
        elif ref in staged.owned:
            outcome = "forced"  # mirror's own ref follows its upstream; the push's lease is on `old`
        else:
            outcome = "forced"
            conflicts.append(
                Problem(
                    "git-branch-diverged",
                    f"{ref}: the internal branch ({old[:12]}) has commits the bundle ({new[:12]}) does not",
                )
            )
        outcomes[ref] = RefOutcome(ref, old, new, outcome)
    return PushPlan(staged, target_url, remote, outcomes, conflicts)


def push_planned(
    plan: PushPlan,
    *,
    credentials: Credentials | None,
    force: bool = False,
    transport: Transport = DEFAULT_TRANSPORT,
) -> PushResult:
    """Push what `plan` found to push: explicit refspecs, atomic, never deleting.

    A ref overwritten by force carries a lease on the value the plan saw, so a target that changed since
    the plan is refused by git rather than overwritten unseen.
    """
    if plan.conflicts and not force:
        raise plan.refused()
    to_push = [o for o in plan.refs.values() if o.outcome != "unchanged"]
    if to_push:
        leases = [f"--force-with-lease={o.ref}:{o.old}" for o in to_push if o.outcome == "forced"]
        refspecs = [f"{o.ref}:{o.ref}" for o in to_push]
        done = run_git(
            ["push", "--atomic", "--porcelain", "--no-verify", *leases, plan.target, *refspecs],
            git_dir=plan.staged.path,
            credentials=credentials,
            transport=transport,
            check=False,
        )
        if done.returncode != 0:
            raise _push_error(plan.target, done.stdout, done.stderr, credentials)
    return PushResult(plan.target, plan.refs, _head_notes(plan.remote, plan.staged.heads))


def push_staged(
    staged: StagedRepo,
    target_url: str,
    *,
    credentials: Credentials | None,
    force: bool = False,
    transport: Transport = DEFAULT_TRANSPORT,
) -> PushResult:
    """plan_push, then push_planned: compare with the target and push, refusing conflicts unless forced."""
    plan = plan_push(staged, target_url, credentials=credentials, transport=transport)
    return push_planned(plan, credentials=credentials, force=force, transport=transport)


def _push_error(url: str, stdout: str, stderr: str, credentials: Credentials | None) -> MirrorError:
    rejected = []
    for line in stdout.splitlines():
        flag, _, rest = line.partition("\t")
        if flag == "!":
            spec, _, summary = rest.partition("\t")
            rejected.append((spec.partition(":")[2] or spec, summary))
    if not rejected:
        error = git_error(f"push to {url}", stderr or stdout, credentials=credentials)
        if isinstance(error, SourceNotFoundError):
            return UsageError(
                f"{redact(error.message, credentials)}",
                hint="create the repository on the git server first; git http-backend does not create it",
            )
        return error
    problems = [Problem("git-push-rejected", redact(f"{ref}: {summary}", credentials)) for ref, summary in rejected]
    if all(any(reason in summary for reason in _CONFLICT_REASONS) for _, summary in rejected):
        return RefConflictError(
            f"{url}: the server refused the push (it changed since it was checked); nothing was pushed",
            refs=[ref for ref, _ in rejected],
            problems=problems,
            hint="run the import again; use --force-git to overwrite diverged refs",
        )
    return UsageError(
        f"{url}: the server refused the push; nothing was pushed",
        problems=problems,
        hint="check the server's rules for these refs (protected branches, hooks, permissions)",
    )


def _head_notes(remote: RemoteRefs, pushed: Mapping[str, str]) -> list[str]:
    """What the operator must do about the server's HEAD, which git cannot set over smart HTTP."""
    branches = sorted({r for r in remote if r.startswith(HEADS)} | {r for r in pushed if r.startswith(HEADS)})
    if not branches:
        return []
    symref = remote.head_symref
    if symref is None and not any(r.startswith(HEADS) for r in remote):
        return [
            "the target repository was empty: git cannot set its HEAD over smart HTTP; set its default branch on "
            f"the server (e.g. to {branches[0][len(HEADS) :]})"
        ]
    if symref is not None and symref not in branches:
        return [
            f"the target's HEAD points to {symref}, which does not exist there; set its default branch on the "
            f"server to one of: {', '.join(b[len(HEADS) :] for b in branches)}"
        ]
    return []
