"""The relocation commit: one commit on top of a carried upstream commit holding only the edits a caller makes
to its YAML files, built from git objects alone (no work tree, no index) in the quarantine repository.

Its identity and date are fixed (`mirror <mirror@localhost>`, the upstream commit's committer date) and its
message lists the upstream commit and the files edited, so the same upstream commit and the same edits give the
same commit id on any machine: anyone holding the upstream commit and the import flags can recompute it.
See docs/flux-high-side.md ("The relocation commit").
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from mirror.errors import BundleFormatError
from mirror.git.runner import run_git
from mirror.limits import DEFAULT_LIMITS

IDENTITY = "mirror <mirror@localhost>"
_FILE_MODES = ("100644", "100755")
_YAML_SUFFIXES = (".yaml", ".yml")  # what kustomize and Flux read as manifests


def _git(repo: Path, *args: str, input: str | None = None) -> str:
    return run_git(list(args), git_dir=repo, input=input, network=False, failure=BundleFormatError).stdout


def _committer_date(repo: Path, commit: str) -> str:
    """`<epoch> <zone>` of the commit's committer line."""
    for line in _git(repo, "cat-file", "commit", commit).splitlines():
        if not line:
            break  # the headers end here
        if line.startswith("committer "):
            epoch, zone = line.rsplit(" ", 2)[1:]
            return f"{epoch} {zone}"
    raise BundleFormatError(f"commit {commit}: no committer line")


def _holding(repo: Path, commit: str, text: str) -> set[str]:
    """The paths of the commit's YAML files that hold `text` (one `git grep`, not one read per file)."""
    done = run_git(
        ["grep", "-l", "-z", "--fixed-strings", "-e", text, commit, "--", *(f"*{s}" for s in _YAML_SUFFIXES)],
        git_dir=repo,
        network=False,
        check=False,
    )
    if done.returncode not in (0, 1):  # 1: nothing found
        raise BundleFormatError(f"commit {commit}: git grep failed: {done.stderr.strip()[:200]}")
    return {entry.removeprefix(f"{commit}:") for entry in done.stdout.split("\0") if entry}


def _yaml_blobs(repo: Path, commit: str, max_bytes: int, containing: str | None) -> list[tuple[str, str]]:
    """(path, blob id) of every YAML file of the commit's tree no larger than max_bytes (and holding
    `containing`, when given)."""
    wanted = None if containing is None else _holding(repo, commit, containing)
    found = []
    for entry in _git(repo, "ls-tree", "-r", "-z", "--long", commit).split("\0"):
        if not entry:
            continue
        info, _, path = entry.partition("\t")
        mode, kind, oid, size = info.split()
        if wanted is not None and path not in wanted:
            continue
        if kind == "blob" and mode in _FILE_MODES and path.endswith(_YAML_SUFFIXES) and int(size) <= max_bytes:
            found.append((path, oid))
    return found


def _rebuilt_tree(repo: Path, tree: str, blobs: dict[str, str]) -> str:
    """`tree` with the blobs at the given paths (relative to it) replaced, each parent tree made again."""
    here = {path: oid for path, oid in blobs.items() if "/" not in path}
    below: dict[str, dict[str, str]] = {}
    for path, oid in blobs.items():
        if "/" in path:
            folder, _, rest = path.partition("/")
            below.setdefault(folder, {})[rest] = oid
    lines = []
    for entry in _git(repo, "ls-tree", "-z", tree).split("\0"):
        if not entry:
            continue
        info, _, name = entry.partition("\t")
        mode, kind, oid = info.split()
        if name in here:
            oid = here[name]
        elif name in below and kind == "tree":
            oid = _rebuilt_tree(repo, oid, below[name])
        lines.append(f"{mode} {kind} {oid}\t{name}\0")
    return _git(repo, "mktree", "-z", input="".join(lines)).strip()


def relocation_commit(
    repo: Path,
    commit: str,
    edit: Callable[[str, str], str],
    *,
    max_file_bytes: int = DEFAULT_LIMITS.max_flux_objects_bytes,
    containing: str | None = None,
) -> tuple[str, list[str]]:
    """Write the relocation commit of `commit` into `repo`; return its id and the files edited: `edit(path, text)`
    is called for every YAML file of the tree (holding the text `containing`, when given: the others are not
    even read), and the files whose text it changes are the commit's diff."""
    edited: dict[str, str] = {}
    for path, oid in _yaml_blobs(repo, commit, max_file_bytes, containing):
        text = _git(repo, "cat-file", "blob", oid)
        if "\ufffd" in text:
            continue  # not UTF-8: kustomize would not read it either, and it cannot be edited as text
        new = edit(path, text)
        if new != text:
            edited[path] = _git(repo, "hash-object", "-w", "--stdin", input=new).strip()
    tree = _git(repo, "rev-parse", f"{commit}^{{tree}}").strip()
    if edited:
        tree = _rebuilt_tree(repo, tree, edited)
    date = _committer_date(repo, commit)
    message = "mirror: relocate the Flux sources to the internal endpoints\n\nUpstream-commit: " + commit + "\n"
    message += "".join(f"Edited: {path}\n" for path in sorted(edited))
    body = f"tree {tree}\nparent {commit}\nauthor {IDENTITY} {date}\ncommitter {IDENTITY} {date}\n\n{message}"
    relocated = _git(repo, "hash-object", "-t", "commit", "-w", "--stdin", input=body).strip()
    changed = _git(repo, "diff-tree", "-r", "-z", "--name-only", "--no-renames", commit, relocated).split("\0")
    if sorted(p for p in changed if p) != sorted(edited):  # e.g. a sibling whose name is not UTF-8
        raise BundleFormatError(
            f"commit {commit}: its relocation would change more than the edited files",
            hint="the tree holds names mirror cannot rebuild; report this repository",
        )
    return relocated, sorted(edited)
