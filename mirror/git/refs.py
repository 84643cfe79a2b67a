"""A remote's refs (`git ls-remote --symref`), and which commit a Flux GitRepository `spec.ref` names.

See docs/collector.md ("Git sources").
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from mirror.credentials import Credentials
from mirror.errors import SourceNotFoundError, UsageError
from mirror.git.runner import DEFAULT_TRANSPORT, Transport, check_url, run_git
from mirror.limits import DEFAULT_LIMITS
from mirror.semver import Constraint, InvalidConstraint, InvalidVersion, Version

__all__ = [
    "REF_FIELDS",
    "RemoteRefs",
    "ResolvedRef",
    "flux_tag_version",
    "is_valid_ref_name",
    "remote_refs",
    "resolve_ref",
]

# In Flux's order of precedence.
REF_FIELDS = ("commit", "name", "semver", "tag", "branch")
PEELED_SUFFIX = "^{}"
HEADS = "refs/heads/"
TAGS = "refs/tags/"

_OID = re.compile(r"[0-9a-f]{40}")
_FORBIDDEN_IN_REF = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")


def is_object_id(text: object) -> bool:
    return isinstance(text, str) and _OID.fullmatch(text) is not None


def is_valid_ref_name(name: str) -> bool:
    """git check-ref-format for a full ref name under refs/ (no options: at least two components)."""
    if not name.startswith("refs/") or name.endswith("/") or name.endswith(".") or "//" in name:
        return False
    if ".." in name or "@{" in name or _FORBIDDEN_IN_REF.search(name):
        return False
    return all(part and not part.startswith(".") and not part.endswith(".lock") for part in name.split("/"))


class RemoteRefs(dict[str, str]):
    """The refs a remote advertises, name → object id, exactly as `git ls-remote` lists them.

    Annotated tags appear twice: `refs/tags/v1` → the tag object, `refs/tags/v1^{}` → the commit it peels
    to. `HEAD` is there when advertised; `head_symref` is the branch HEAD points to, when the server says.
    """

    head_symref: str | None = None
    invalid: tuple[str, ...] = ()  # advertised names git itself would refuse (check-ref-format); left out

    def peeled(self, name: str) -> str:
        """The object `name` finally points to (a tag's commit); KeyError when the remote lacks `name`."""
        return self.get(name + PEELED_SUFFIX) or self[name]

    def tags(self) -> list[str]:
        """Tag names (without refs/tags/), sorted."""
        return sorted(r[len(TAGS) :] for r in self if r.startswith(TAGS) and not r.endswith(PEELED_SUFFIX))


def parse_ls_remote(output: str) -> RemoteRefs:
    refs = RemoteRefs()
    invalid: list[str] = []
    for line in output.splitlines():
        if not line.strip():
            continue
        if line.startswith("ref: "):
            target, _, name = line[len("ref: ") :].partition("\t")
            if name == "HEAD":
                refs.head_symref = target
            continue
        oid, tab, name = line.partition("\t")
        if not tab or not is_object_id(oid) or not name:
            raise SourceNotFoundError(f"git ls-remote printed a line mirror cannot read: {line[:200]!r}")
        if name != "HEAD" and not is_valid_ref_name(name.removesuffix(PEELED_SUFFIX)):
            # A hostile or broken server may advertise any name; git refuses such names in a refspec, so one of
            # them would break the whole source. They cannot be carried, and are reported, not fatal.
            invalid.append(name)
            continue
        refs[name] = oid
    refs.invalid = tuple(invalid)
    return refs


def remote_refs(
    url: str,
    credentials: Credentials | None = None,
    *,
    transport: Transport = DEFAULT_TRANSPORT,
) -> RemoteRefs:
    """All refs of the repository at `url` (`git ls-remote --symref`): heads, tags with their peeled commits,
    HEAD and the branch it points to. Raises SourceNotFoundError when there is no such repository."""
    check_url(url, transport)
    done = run_git(
        ["ls-remote", "--symref", url],
        credentials=credentials,
        timeout=DEFAULT_LIMITS.git_ls_remote_timeout_s,
        transport=transport,
        what=f"list the refs of {url}",
    )
    return parse_ls_remote(done.stdout)


@dataclass(frozen=True)
class ResolvedRef:
    """What a ref spec designates on the remote.

    name: the full ref to carry (`refs/heads/main`, `refs/tags/v1.2.3`, ...), or None for a commit that is not
      tied to a branch (create_bundle then carries the branches that contain it).
    commit: the commit Flux checks out (a tag peeled to its commit).
    kind: the ref spec field that decided: branch, tag, semver, name or commit.
    target: the object `name` points to on the remote (for an annotated tag, the tag object); None when name is.
    ignored: ref spec fields that Flux's precedence overrides.
    default_branch: the ref spec was empty, and `name` is the branch the remote's HEAD points to.
    """

    name: str | None
    commit: str
    kind: str
    target: str | None = None
    ignored: tuple[str, ...] = ()
    default_branch: bool = False

    def describe(self) -> str:
        if self.kind == "commit":
            return f"commit {self.commit}" + (f" on {self.name}" if self.name else "")
        return f"{self.name} ({self.commit[:12]})"


def _text_field(spec: Mapping[str, object], key: str, where: str) -> str:
    value = spec[key]
    if not isinstance(value, str):
        raise UsageError(f"{where}.{key}: expected a string, got {type(value).__name__}")
    if not value:
        raise UsageError(f"{where}.{key}: is empty")
    return value


def _validate(ref_spec: Mapping[str, object] | None, where: str) -> dict[str, str]:
    if ref_spec is None:
        return {}
    if not isinstance(ref_spec, Mapping):
        raise UsageError(f"{where}: expected a mapping with one of {', '.join(REF_FIELDS)}")
    unknown = sorted(str(k) for k in ref_spec if k not in REF_FIELDS)
    if unknown:
        raise UsageError(
            f"{where}: unknown field(s) {', '.join(unknown)}",
            hint=f"a Git ref has {', '.join(REF_FIELDS)} (one of them, or commit with branch)",
        )
    fields = {key: _text_field(ref_spec, key, where) for key in REF_FIELDS if key in ref_spec}
    if "commit" in fields:
        commit = fields["commit"].lower()
        if not is_object_id(commit):
            raise UsageError(
                f"{where}.commit: {fields['commit']!r} is not a full 40-hex commit id",
                hint="write the whole SHA-1 (git rev-parse <ref>); abbreviated and SHA-256 ids are not accepted",
            )
        fields["commit"] = commit
    for key, prefix in (("branch", HEADS), ("tag", TAGS)):
        if key in fields:
            value = fields[key]
            if value.startswith("refs/"):
                raise UsageError(
                    f"{where}.{key}: {value!r} is a full ref name",
                    hint=f"write the {key} name without {prefix}, or use `name: {value}`",
                )
            if not is_valid_ref_name(prefix + value):
                raise UsageError(f"{where}.{key}: {value!r} is not a valid git {key} name")
    if "name" in fields and not is_valid_ref_name(fields["name"]):
        raise UsageError(
            f"{where}.name: {fields['name']!r} is not a valid full ref name",
            hint="write e.g. refs/heads/main, refs/tags/v1.0.0 or refs/pull/42/head",
        )
    if "semver" in fields:
        try:
            Constraint.parse(fields["semver"])
        except InvalidConstraint as exc:
            raise UsageError(f"{where}.semver: {exc.message}", hint=exc.hint) from exc
    return fields


def flux_tag_version(tag: str) -> Version | None:
    """The version Flux reads in a tag name (fluxcd/pkg/version.ParseVersion), or None when it is not one."""
    if len(tag.split(".", 2)) != 3:
        return None
    try:
        return Version.parse(tag)
    except InvalidVersion:
        return None


def _origin(url: str | None) -> str:
    return f" in {url}" if url else " on the remote"


def _lookup(refs: Mapping[str, str], name: str, label: str, where: str, url: str | None) -> tuple[str, str]:
    """(target, commit) of `name`, or SourceNotFoundError naming what is missing."""
    if name not in refs:
        raise SourceNotFoundError(f"{where}: {label} not found{_origin(url)}")
    target = refs[name]
    return target, refs.get(name + PEELED_SUFFIX, target)


def _select_semver(refs: Mapping[str, str], constraint_text: str, where: str, url: str | None) -> str:
    constraint = Constraint.parse(constraint_text)
    matches: list[tuple[Version, str]] = []
    for ref in refs:
        if not ref.startswith(TAGS) or ref.endswith(PEELED_SUFFIX):
            continue
        tag = ref[len(TAGS) :]
        version = flux_tag_version(tag)
        if version is not None and constraint.allows(version):
            matches.append((version, tag))
    if not matches:
        raise SourceNotFoundError(
            f'{where}.semver: no tag{_origin(url)} is a version that matches "{constraint_text}"',
            hint="tags are read as Flux reads them: MAJOR.MINOR.PATCH with an optional v prefix",
        )
    best = max(version for version, _ in matches)
    tied = sorted(tag for version, tag in matches if version == best)
    commits = {refs.get(TAGS + t + PEELED_SUFFIX, refs[TAGS + t]) for t in tied}
    if len(commits) > 1:
        raise UsageError(
            f"{where}.semver: tags {', '.join(tied)} are the same version {best} on different commits",
            hint="Flux would pick the one with the newest commit time; name the tag you want with `tag:`",
        )
    return tied[0]


def resolve_ref(
    refs: Mapping[str, str],
    ref_spec: Mapping[str, object] | None,
    *,
    where: str = "ref",
    url: str | None = None,
) -> ResolvedRef:
    """The ref and commit that `ref_spec` designates among `refs` (from remote_refs).

    Errors: UsageError for a ref spec that does not validate (unknown field, wrong type, bad name, bad
    commit id, bad constraint), and SourceNotFoundError (exit 2 too) naming the branch, tag, ref or
    constraint the remote does not have. `where` prefixes messages (e.g. `spec.git[0].ref`); `url` names
    the remote in them.
    """
    fields = _validate(ref_spec, where)
    chosen = next((key for key in REF_FIELDS if key in fields), None)
    used = {chosen} | ({"branch"} if chosen == "commit" else set())
    ignored = tuple(key for key in REF_FIELDS if key in fields and key not in used)

    if chosen is None:
        return _resolve_head(refs, where, url)
    value = fields[chosen]
    if chosen == "commit":
        if "branch" not in fields:
            return ResolvedRef(None, value, "commit", ignored=ignored)
        name = HEADS + fields["branch"]
        target, _ = _lookup(refs, name, f"branch {fields['branch']!r}", f"{where}.branch", url)
        return ResolvedRef(name, value, "commit", target=target, ignored=ignored)
    if chosen == "name":
        name, label = value, f"ref {value!r}"
    elif chosen == "semver":
        tag = _select_semver(refs, value, where, url)
        name, label = TAGS + tag, f"tag {tag!r}"
    elif chosen == "tag":
        name, label = TAGS + value, f"tag {value!r}"
    else:
        name, label = HEADS + value, f"branch {value!r}"
    target, commit = _lookup(refs, name, label, f"{where}.{chosen}", url)
    return ResolvedRef(name, commit, chosen, target=target, ignored=ignored)


def _resolve_head(refs: Mapping[str, str], where: str, url: str | None) -> ResolvedRef:
    symref = getattr(refs, "head_symref", None)
    if symref:
        if symref not in refs:
            raise SourceNotFoundError(
                f"{where}: the remote's HEAD points to {symref}, which does not exist{_origin(url)}",
                hint="name a branch, tag or commit in the ref",
            )
        target = refs[symref]
        kind = "branch" if symref.startswith(HEADS) else "name"
        return ResolvedRef(symref, refs.get(symref + PEELED_SUFFIX, target), kind, target=target, default_branch=True)
    if "HEAD" in refs:
        # A detached HEAD, or a server that does not say where HEAD points: carry its commit.
        return ResolvedRef(None, refs["HEAD"], "commit", default_branch=True)
    raise SourceNotFoundError(
        f"{where}: the repository{_origin(url)} has no HEAD (is it empty?)",
        hint="name a branch, tag or commit in the ref",
    )
