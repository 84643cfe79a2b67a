"""Deterministic git repositories for the git servers started by ``scripts/services``.

Every git command here runs with a clean environment (no ``GIT_*`` or proxy variables from the caller,
``GIT_CONFIG_GLOBAL=/dev/null``, ``GIT_CONFIG_NOSYSTEM=1``, no prompts) and every commit and tag is written
by ``git fast-import`` with fixed names, e-mails and dates, so the same call makes the same commit ids on
any machine.

- ``make_upstream_repo(services, name, ...)`` makes the bare repository ``<git_upstream_dir>/<name>.git``
  (served as ``<git_upstream>/<name>.git``): branch ``main`` with ``history`` commits, a branch ``dev``
  (one commit on top of the commit before main's tip), tags spread over main's commits with the last on
  main's tip (by default lightweight ``v1.0.0`` and ``v2.0.0-rc.1``, annotated ``v1.1.0`` and ``v2.0.0``),
  and generic files including ``clusters/production/*.yaml``; ``files`` changes main's tip commit
  (``None`` deletes a path). When the repository already holds exactly the expected refs it is left
  alone; otherwise it is rebuilt and swapped in. Returns ``repo_info(...)``.
- ``repo_info(services, name, where="upstream"|"internal")`` describes a repository on disk::

      {"name", "url", "path", "default_branch",
       "heads": {branch: commit}, "tags": {tag: peeled commit}, "tag_objects": {annotated tag: tag object},
       "refs": {full ref name: object id as ls-remote shows it (tag object for annotated tags)},
       "history": [commits of the default branch, first parent, oldest first]}

  (``default_branch`` is None when HEAD names a missing branch, e.g. a repository a push just created.)
- ``add_commit(...)`` advances (or creates) a branch by one commit; ``rewrite_branch(...)`` replaces the
  last ``drop`` commits of a branch by one different commit (a non-fast-forward change, as after a force
  push); ``move_tag(...)``, ``delete_ref(...)``, ``set_head(...)``. They work on either server's directory
  (``where=``): changing a bare repository on disk is what a push would do, without the server's checks.
- ``seed_git(services)`` makes the standard ``fleet`` and ``apps`` repositories.
- ``git_env(services, auth=True)`` is the clean environment, with an ``Authorization`` header for the
  internal server (``http.extraHeader`` through ``GIT_CONFIG_COUNT``, so no credential ends up in a URL
  or on disk); ``run_git``, ``ls_remote`` and ``internal_url`` help tests talk to the servers.

Repositories that a test changes should have a name of their own: changing a shared one (``fleet``)
under another test, or rebuilding it with ``make_upstream_repo``, can fail that test.

CLI (from the repository root): ``python -m tests.support.gitrepos`` starts the services if needed, seeds
and prints the result as JSON. Standard library only; never imports ``mirror``.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Collection, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.support.services import Services

AUTHOR = "Mirror Test Author <author@mirror.test>"
COMMITTER = "Mirror Test Committer <committer@mirror.test>"
TAGGER = "Mirror Test Tagger <tagger@mirror.test>"
#: Date of a repository's first commit (2024-01-01T00:00:00Z); later commits are STEP seconds apart.
FIXED_EPOCH = 1704067200
STEP = 3600

DEFAULT_BRANCH = "main"
DEFAULT_BRANCHES: tuple[str, ...] = ("dev",)
DEFAULT_TAGS: tuple[str, ...] = ("v1.0.0", "v1.1.0", "v2.0.0-rc.1", "v2.0.0")
DEFAULT_ANNOTATED: tuple[str, ...] = ("v1.1.0", "v2.0.0")
DEFAULT_HISTORY = 5

#: A file's content for ``files=``: bytes or text (UTF-8), or None to delete the path.
FileContent = bytes | str | None

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*")
# Variables of the caller that would steer git (GIT_DIR, GIT_SSH_COMMAND, ...) or its HTTP.
_DROP_PREFIXES = ("GIT_",)
_DROP = {
    "SSH_ASKPASS",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
    "CURL_CA_BUNDLE",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
}


class GitError(RuntimeError):
    """A git command failed; the message carries the command and its stderr."""


# ---------------------------------------------------------------------------------------------------------
# Running git
# ---------------------------------------------------------------------------------------------------------


def _split_ident(ident: str) -> tuple[str, str]:
    name, _, rest = ident.partition(" <")
    return name, rest.rstrip(">")


def git_env(services: Services | None = None, *, auth: bool = False, when: int = FIXED_EPOCH) -> dict[str, str]:
    """A clean environment for git: no user or system configuration, no prompts, fixed identities and dates.

    With ``auth=True`` (needs ``services``), requests carry basic auth for the internal git server.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(_DROP_PREFIXES) and k not in _DROP}
    author, author_email = _split_ident(AUTHOR)
    committer, committer_email = _split_ident(COMMITTER)
    env.update(
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_CONFIG_NOSYSTEM="1",
        GIT_TERMINAL_PROMPT="0",
        GIT_ASKPASS="",
        GIT_AUTHOR_NAME=author,
        GIT_AUTHOR_EMAIL=author_email,
        GIT_AUTHOR_DATE=f"{when} +0000",
        GIT_COMMITTER_NAME=committer,
        GIT_COMMITTER_EMAIL=committer_email,
        GIT_COMMITTER_DATE=f"{when} +0000",
        LC_ALL="C",
        TZ="UTC",
    )
    if auth:
        if services is None:
            raise ValueError("auth=True needs services")
        token = base64.b64encode(f"{services.git_user}:{services.git_password}".encode()).decode()
        env.update(
            GIT_CONFIG_COUNT="1",
            GIT_CONFIG_KEY_0="http.extraHeader",
            GIT_CONFIG_VALUE_0=f"Authorization: Basic {token}",
        )
    return env


def run_git(
    args: Sequence[str | os.PathLike[str]],
    *,
    git_dir: Path | None = None,
    cwd: Path | None = None,
    input: bytes | None = None,
    env: Mapping[str, str] | None = None,
    check: bool = True,
    timeout: float = 300,
) -> subprocess.CompletedProcess[bytes]:
    """Run ``git [--git-dir DIR] ARGS`` in the clean environment (or ``env``); raise GitError on failure."""
    cmd = ["git"]
    if git_dir is not None:
        cmd += ["--git-dir", str(git_dir)]
    cmd += [os.fspath(a) for a in args]
    proc = subprocess.run(
        cmd,
        cwd=cwd,
        input=input,
        env=dict(env) if env is not None else git_env(),
        capture_output=True,
        timeout=timeout,
        check=False,
        stdin=None if input is not None else subprocess.DEVNULL,
    )
    if check and proc.returncode != 0:
        raise GitError(
            f"{' '.join(cmd)} exited with {proc.returncode}\n{proc.stderr.decode(errors='replace').rstrip()}"
        )
    return proc


def _out(args: Sequence[str | os.PathLike[str]], **kwargs: Any) -> str:
    return run_git(args, **kwargs).stdout.decode().strip()


def ls_remote(url: str, services: Services | None = None, *, auth: bool = False) -> dict[str, str]:
    """``git ls-remote URL`` as {ref: object id} (including ``HEAD`` and ``refs/tags/x^{}`` lines)."""
    text = _out(["ls-remote", url], env=git_env(services, auth=auth))
    refs: dict[str, str] = {}
    for line in text.splitlines():
        oid, _, ref = line.partition("\t")
        refs[ref] = oid
    return refs


def internal_url(services: Services, name: str, *, credentials: bool = False) -> str:
    """``<git_internal>/<name>.git``; with ``credentials=True`` the user and password are in the URL
    (only for a quick manual check: git may echo such URLs in its messages)."""
    url = f"{services.git_internal}/{_check_name(name)}.git"
    if credentials:
        scheme, _, rest = url.partition("://")
        url = f"{scheme}://{services.git_user}:{services.git_password}@{rest}"
    return url


def upstream_url(services: Services, name: str) -> str:
    return f"{services.git_upstream}/{_check_name(name)}.git"


# ---------------------------------------------------------------------------------------------------------
# Repositories on disk
# ---------------------------------------------------------------------------------------------------------


def _check_name(name: str) -> str:
    name = name.removesuffix(".git")
    if not _NAME.fullmatch(name) or ".." in name or any(seg.endswith(".git") for seg in name.split("/")):
        raise ValueError(f"bad repository name {name!r}: [A-Za-z0-9][A-Za-z0-9._-]* segments separated by /")
    return name


def _root(services: Services, where: str) -> Path:
    if where == "upstream":
        return Path(services.git_upstream_dir)
    if where == "internal":
        return Path(services.git_internal_dir)
    raise ValueError(f"where must be 'upstream' or 'internal', not {where!r}")


def repo_path(services: Services, name: str, where: str = "upstream") -> Path:
    return _root(services, where) / f"{_check_name(name)}.git"


@contextlib.contextmanager
def _locked(services: Services, name: str, where: str) -> Iterator[Path]:
    """Serialise changes to one repository across processes (pytest-xdist workers)."""
    path = repo_path(services, name, where)
    locks = _root(services, where) / ".locks"
    locks.mkdir(parents=True, exist_ok=True)
    with open(locks / (name.removesuffix(".git").replace("/", "--") + ".lock"), "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield path
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def repo_info(services: Services, name: str, where: str = "upstream") -> dict[str, Any]:
    """Describe the bare repository ``name`` of either server (see the module docstring)."""
    name = _check_name(name)
    path = repo_path(services, name, where)
    return _describe(path, name, upstream_url(services, name) if where == "upstream" else internal_url(services, name))


def _describe(path: Path, name: str, url: str) -> dict[str, Any]:
    if not (path / "HEAD").is_file():
        raise FileNotFoundError(f"no bare repository at {path}")
    lines = _out(
        ["for-each-ref", "--format=%(refname)%00%(objectname)%00%(objecttype)"],
        git_dir=path,
    ).splitlines()
    refs: dict[str, str] = {}
    heads: dict[str, str] = {}
    tags: dict[str, str] = {}
    tag_objects: dict[str, str] = {}
    for line in lines:
        ref, oid, kind = line.split("\0")
        refs[ref] = oid
        if ref.startswith("refs/heads/"):
            heads[ref.removeprefix("refs/heads/")] = oid
        elif ref.startswith("refs/tags/"):
            tag = ref.removeprefix("refs/tags/")
            tags[tag] = oid
            if kind == "tag":
                tag_objects[tag] = oid
    if tag_objects:
        names = sorted(tag_objects)
        peeled = _out(["rev-parse", *(f"refs/tags/{t}^{{}}" for t in names)], git_dir=path).splitlines()
        tags.update(zip(names, peeled, strict=True))
    head = run_git(["symbolic-ref", "-q", "HEAD"], git_dir=path, check=False).stdout.decode().strip()
    default_branch = head.removeprefix("refs/heads/") if head.removeprefix("refs/heads/") in heads else None
    history: list[str] = []
    if default_branch:
        rev_list = ["rev-list", "--first-parent", "--reverse", f"refs/heads/{default_branch}"]
        history = _out(rev_list, git_dir=path).split()
    return {
        "name": name,
        "url": url,
        "path": str(path),
        "default_branch": default_branch,
        "heads": heads,
        "tags": tags,
        "tag_objects": tag_objects,
        "refs": refs,
        "history": history,
    }


# ---------------------------------------------------------------------------------------------------------
# fast-import streams
# ---------------------------------------------------------------------------------------------------------


def _quote_path(path: str) -> bytes:
    parts = path.split("/")
    if not path or path.startswith("/") or any(p in ("", ".", "..", ".git") for p in parts) or "\0" in path:
        raise ValueError(f"bad path in files: {path!r}")
    out = bytearray(b'"')
    for byte in path.encode():
        ch = bytes([byte])
        if ch in (b'"', b"\\"):
            out += b"\\" + ch
        elif byte < 0x20 or byte == 0x7F:
            out += b"\\%03o" % byte
        else:
            out += ch
    out += b'"'
    return bytes(out)


def _data(payload: bytes) -> bytes:
    return b"data %d\n" % len(payload) + payload + b"\n"


def _content(value: bytes | str) -> bytes:
    return value.encode() if isinstance(value, str) else value


class _Stream:
    """Builds a ``git fast-import`` stream; marks name the commits it creates."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.next_mark = 1

    def commit(
        self,
        ref: str,
        message: str,
        when: int,
        parent: str | None,
        changes: Mapping[str, FileContent | tuple[str, bytes]],
    ) -> str:
        mark = f":{self.next_mark}"
        self.next_mark += 1
        block = [
            f"commit {ref}\n".encode(),
            f"mark {mark}\n".encode(),
            f"author {AUTHOR} {when} +0000\n".encode(),
            f"committer {COMMITTER} {when} +0000\n".encode(),
            _data(message.encode()),
        ]
        if parent is not None:
            block.append(f"from {parent}\n".encode())
        for path in sorted(changes):
            value = changes[path]
            if value is None:
                block.append(b"D " + _quote_path(path) + b"\n")
                continue
            mode, payload = value if isinstance(value, tuple) else ("100644", _content(value))
            block.append(f"M {mode} inline ".encode() + _quote_path(path) + b"\n" + _data(payload))
        block.append(b"\n")
        self.parts.append(b"".join(block))
        return mark

    def tag(self, tag: str, target: str, *, annotated: bool, when: int, message: str | None = None) -> None:
        if annotated:
            self.parts.append(
                f"tag {tag}\nfrom {target}\ntagger {TAGGER} {when} +0000\n".encode()
                + _data((message or f"Release {tag}\n").encode())
            )
        else:
            self.parts.append(f"reset refs/tags/{tag}\nfrom {target}\n\n".encode())

    def run(self, git_dir: Path, *, force: bool = False) -> dict[str, str]:
        """Import into ``git_dir``; returns {mark: commit id}."""
        with tempfile.TemporaryDirectory(prefix="gitrepos-marks-") as tmp:
            marks = Path(tmp) / "marks"
            args = ["fast-import", "--quiet", "--date-format=raw", f"--export-marks={marks}"]
            if force:
                args.append("--force")
            run_git(args, git_dir=git_dir, input=b"".join(self.parts) + b"done\n")
            text = marks.read_text() if marks.exists() else ""
        result = {}
        for line in text.splitlines():
            mark, _, oid = line.partition(" ")
            result[mark] = oid
        return result


# ---------------------------------------------------------------------------------------------------------
# The standard content
# ---------------------------------------------------------------------------------------------------------


def _base_files(name: str) -> dict[str, FileContent | tuple[str, bytes]]:
    return {
        "README.md": f"# {name}\n\nA test repository made by tests/support/gitrepos.py.\n",
        "CHANGELOG.md": "# Changelog\n\n- 1: initial content\n",
        "clusters/production/kustomization.yaml": (
            "apiVersion: kustomize.config.k8s.io/v1beta1\n"
            "kind: Kustomization\n"
            "resources:\n"
            "  - namespace.yaml\n"
            "  - configmap.yaml\n"
        ),
        "clusters/production/namespace.yaml": (
            f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name.replace('/', '-').lower()}\n"
        ),
        "clusters/production/configmap.yaml": _configmap(name, 1),
        "clusters/staging/namespace.yaml": (
            f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name.replace('/', '-').lower()}-staging\n"
        ),
        "scripts/check.sh": ("100755", b"#!/bin/sh\n# An executable file, to see that modes survive.\nexit 0\n"),
    }


def _configmap(name: str, revision: int) -> str:
    return (
        "apiVersion: v1\n"
        "kind: ConfigMap\n"
        "metadata:\n"
        "  name: settings\n"
        f"  namespace: {name.replace('/', '-').lower()}\n"
        "data:\n"
        f'  revision: "{revision}"\n'
    )


def _tag_positions(count: int, history: int) -> list[int]:
    """Indexes into main's commits, spread out, the last on the tip (first commit left untagged if it can be)."""
    return [-(-(k + 1) * history // count) - 1 for k in range(count)]


def _build(
    git_dir: Path,
    name: str,
    *,
    default_branch: str,
    branches: Sequence[str],
    tags: Sequence[str],
    annotated: Collection[str],
    history: int,
    files: Mapping[str, FileContent] | None,
) -> None:
    run_git(["init", "--quiet", "--bare", f"--initial-branch={default_branch}", str(git_dir)])
    stream = _Stream()
    main_ref = f"refs/heads/{default_branch}"
    commits: list[str] = []
    for i in range(history):
        changes: dict[str, FileContent | tuple[str, bytes]]
        if i == 0:
            changes = _base_files(name)
        else:
            log = "# Changelog\n\n" + "".join(
                f"- {n}: {'initial content' if n == 1 else f'change {n}'}\n" for n in range(1, i + 2)
            )
            changes = {"CHANGELOG.md": log, "clusters/production/configmap.yaml": _configmap(name, i + 1)}
        if i == history - 1 and files:
            changes.update(files)
        commits.append(
            stream.commit(
                main_ref,
                f"{name}: commit {i + 1} on {default_branch}\n",
                FIXED_EPOCH + i * STEP,
                commits[-1] if commits else None,
                changes,
            )
        )
    base = max(0, history - 2)
    for j, branch in enumerate(branches):
        if branch == default_branch:
            continue
        stream.commit(
            f"refs/heads/{branch}",
            f"{name}: work on {branch}\n",
            FIXED_EPOCH + base * STEP + (j + 1) * 60,
            commits[base],
            {f"branches/{branch}.txt": f"{branch}\n"},
        )
    for tag, pos in zip(tags, _tag_positions(len(tags), history), strict=True):
        stream.tag(tag, commits[pos], annotated=tag in annotated, when=FIXED_EPOCH + pos * STEP + 30)
    stream.run(git_dir)


def make_upstream_repo(
    services: Services,
    name: str,
    *,
    branches: Sequence[str] = DEFAULT_BRANCHES,
    tags: Sequence[str] = DEFAULT_TAGS,
    annotated: Collection[str] = DEFAULT_ANNOTATED,
    history: int = DEFAULT_HISTORY,
    files: Mapping[str, FileContent] | None = None,
    default_branch: str = DEFAULT_BRANCH,
) -> dict[str, Any]:
    """Make (or keep, when it already holds exactly these refs) ``<git_upstream_dir>/<name>.git``.

    ``branches``: branches besides ``default_branch``, each one commit on top of the commit before the
    default branch's tip. ``tags``: spread over the default branch's commits, the last on its tip;
    those in ``annotated`` are annotated tags. ``files``: {path: bytes | str | None} applied in the tip
    commit of the default branch (None deletes). Returns ``repo_info(...)``.
    """
    name = _check_name(name)
    if history < 1:
        raise ValueError("history must be at least 1")
    unknown = set(annotated) - set(tags)
    if unknown:
        raise ValueError(f"annotated names tags that are not in tags: {sorted(unknown)}")
    with _locked(services, name, "upstream") as path:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
        try:
            fresh = tmp / "repo.git"
            _build(
                fresh,
                name,
                default_branch=default_branch,
                branches=branches,
                tags=tags,
                annotated=annotated,
                history=history,
                files=files,
            )
            url = upstream_url(services, name)
            wanted = _describe(fresh, name, url)
            if (path / "HEAD").is_file():
                try:
                    current = _describe(path, name, url)
                except GitError:
                    current = None
                if current is not None and _same(current, wanted):
                    return current
                old = tmp / "old.git"
                path.rename(old)
            fresh.rename(path)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return repo_info(services, name)


def _same(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    return a["refs"] == b["refs"] and a["default_branch"] == b["default_branch"]


# ---------------------------------------------------------------------------------------------------------
# Changes after creation
# ---------------------------------------------------------------------------------------------------------


def _latest_time(git_dir: Path) -> int:
    """The newest commit or tag date in the repository (FIXED_EPOCH when empty)."""
    text = _out(["for-each-ref", "--format=%(creatordate:unix)"], git_dir=git_dir)
    return max([FIXED_EPOCH, *(int(t) for t in text.split())])


def _resolve(git_dir: Path, rev: str) -> str:
    return _out(["rev-parse", "--verify", f"{rev}^{{commit}}"], git_dir=git_dir)


def _try_resolve(git_dir: Path, rev: str) -> str | None:
    proc = run_git(["rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"], git_dir=git_dir, check=False)
    return proc.stdout.decode().strip() if proc.returncode == 0 else None


def add_commit(
    services: Services,
    name: str,
    branch: str,
    files: Mapping[str, FileContent],
    *,
    message: str | None = None,
    where: str = "upstream",
    start: str | None = None,
) -> str:
    """Add one commit changing ``files`` on top of ``branch`` and return its id.

    A missing branch starts from ``start`` (a revision), by default the default branch's tip. The date is
    STEP seconds after the newest commit or tag in the repository, so repeating the same calls on a fresh
    repository gives the same ids.
    """
    with _locked(services, name, where) as path:
        ref = f"refs/heads/{branch}"
        parent: str | None = _try_resolve(path, ref)
        if parent is None:
            # A new branch: from `start`, else from HEAD's branch, else (empty repository) a root commit.
            parent = _resolve(path, start) if start else _try_resolve(path, "HEAD")
        when = _latest_time(path) + STEP
        stream = _Stream()
        mark = stream.commit(ref, message or f"{_check_name(name)}: update {branch}\n", when, parent, files)
        return stream.run(path)[mark]


def rewrite_branch(
    services: Services,
    name: str,
    branch: str,
    files: Mapping[str, FileContent] | None = None,
    *,
    drop: int = 1,
    message: str | None = None,
    where: str = "upstream",
) -> dict[str, str]:
    """Replace the last ``drop`` commits of ``branch`` with one new commit: a non-fast-forward change.

    Returns {"old": previous tip, "base": the commit kept, "new": the new tip}. By default the new commit
    writes ``REWRITTEN.md``; ``files`` replaces that.
    """
    if drop < 1:
        raise ValueError("drop must be at least 1")
    with _locked(services, name, where) as path:
        ref = f"refs/heads/{branch}"
        old = _resolve(path, ref)
        base_id = _try_resolve(path, f"{old}~{drop}")
        if base_id is None:
            raise GitError(f"{branch} has fewer than {drop + 1} commits; dropping {drop} would leave it empty")
        when = _latest_time(path) + STEP
        changes = files if files is not None else {"REWRITTEN.md": f"{branch} rewritten; it was {old}\n"}
        stream = _Stream()
        mark = stream.commit(
            ref, message or f"{_check_name(name)}: rewrite {branch} (was {old})\n", when, base_id, changes
        )
        new = stream.run(path, force=True)[mark]
        return {"old": old, "base": base_id, "new": new}


def move_tag(
    services: Services,
    name: str,
    tag: str,
    target: str,
    *,
    annotated: bool = False,
    message: str | None = None,
    where: str = "upstream",
) -> str:
    """Point ``tag`` at ``target`` (a revision), replacing it; returns the tag's new object id."""
    with _locked(services, name, where) as path:
        commit = _resolve(path, target)
        when = _latest_time(path) + STEP
        stream = _Stream()
        stream.tag(tag, commit, annotated=annotated, when=when, message=message or f"Release {tag} (moved)\n")
        stream.run(path, force=True)
        return _out(["rev-parse", f"refs/tags/{tag}"], git_dir=path)


def delete_ref(services: Services, name: str, ref: str, *, where: str = "upstream") -> None:
    """Delete a full ref name (``refs/heads/dev``, ``refs/tags/v1.0.0``)."""
    if not ref.startswith("refs/"):
        raise ValueError(f"give a full ref name, not {ref!r}")
    with _locked(services, name, where) as path:
        run_git(["update-ref", "-d", ref], git_dir=path)


def set_head(services: Services, name: str, branch: str, *, where: str = "upstream") -> None:
    """Make ``branch`` the repository's default branch (HEAD)."""
    with _locked(services, name, where) as path:
        run_git(["symbolic-ref", "HEAD", f"refs/heads/{branch}"], git_dir=path)


def seed_git(services: Services) -> dict[str, dict[str, Any]]:
    """The standard upstream repositories; idempotent.

    - ``fleet``: main with 5 commits, dev, tags v1.0.0 (lightweight), v1.1.0 (annotated), v2.0.0-rc.1
      (lightweight), v2.0.0 (annotated, main's tip); generic ``clusters/production`` and ``clusters/staging``.
    - ``apps``: main with 3 commits, dev and release-1.x, tags v0.1.0 (lightweight), v0.2.0 (annotated, tip).
    """
    return {
        "fleet": make_upstream_repo(services, "fleet"),
        "apps": make_upstream_repo(
            services,
            "apps",
            branches=("dev", "release-1.x"),
            tags=("v0.1.0", "v0.2.0"),
            annotated=("v0.2.0",),
            history=3,
        ),
    }


def main(argv: list[str] | None = None) -> int:
    from tests.support.services import ensure_services

    parser = argparse.ArgumentParser(prog="python -m tests.support.gitrepos", description=__doc__.split("\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log timing to stderr")
    args = parser.parse_args(argv)
    start = time.monotonic()
    result = seed_git(ensure_services())
    json.dump(result, sys.stdout, indent=2)
    print()
    if args.verbose:
        print(f"seeded in {time.monotonic() - start:.2f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
