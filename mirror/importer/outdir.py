"""A directory of rendered files an import writes night after night (--flux-out, --mirror-config): new, empty, or
as the last night's import left it (its record lists what it wrote, with their sha256), never written through a
link, never holding an operator's file that a night would overwrite. See docs/importer.md."""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from mirror.errors import UsageError
from mirror.fsutil import atomic_write, create_exclusive
from mirror.limits import DEFAULT_LIMITS, Limits
from mirror.terminal import escape

# fsutil.temporary_name's file beside FOLDER/NAME: .NAME.<16 hex>.partial
_TEMPORARY = re.compile(r"(?P<folder>(?:[^/]+/)*)\.(?P<name>[^/]+)\.[0-9a-f]{16}\.partial")


@dataclass(frozen=True)
class RecordedDirectory:
    """One kind of output directory: the flag that names it and the record mirror keeps in it."""

    flag: str  # e.g. --flux-out, for the messages
    record_name: str  # a file name none of the rendered files can have
    record_format: str
    record_limit: Callable[[Limits], int]  # the Limits field bounding the record's size

    def check(self, directory: Path, *, limits: Limits = DEFAULT_LIMITS) -> dict[str, str]:
        """The files an earlier import wrote in `directory` ({relative path: sha256}), to be replaced in place.

        A directory that does not exist yet (it is created) or is empty gives {}. One that holds anything is
        accepted only if it holds mirror's record of what it wrote there, and nothing else: every file listed
        in that record with the content recorded. A file mirror did not write, one edited since, or a link is
        refused (all of them named), so a night never overwrites an operator's work.
        """
        directory = Path(directory)
        if directory.is_symlink() or (directory.exists() and not directory.is_dir()):
            raise UsageError(f"{directory}: exists and is not a directory")
        existing = next(p for p in (directory, *directory.absolute().parents) if p.exists())
        if not existing.is_dir():  # a file on the way: creating the directory would fail at the write
            raise UsageError(f"{directory}: cannot be created ({existing} exists and is not a directory)")
        if not os.access(existing, os.W_OK | os.X_OK):
            raise UsageError(f"{directory}: cannot be written ({existing} is not writable)")
        if not directory.exists() or not any(directory.iterdir()):
            return {}
        record_path = directory / self.record_name
        if record_path.is_symlink() or not record_path.is_file():
            raise UsageError(
                f"{directory}: is not empty, and mirror did not write it",
                hint=f"choose an empty directory for {self.flag}, or the one an earlier import wrote",
            )
        recorded = self._read_record(record_path, limits)
        present: dict[str, str] = {}
        problems: list[str] = []
        for root, folders, names in os.walk(directory, followlinks=False):
            base = Path(root)
            for name in sorted(folders + names):
                path = base / name
                relative = path.relative_to(directory).as_posix()
                if path.is_symlink():
                    problems.append(f"{escape(relative)}: a link")
                elif path.is_dir() or relative == self.record_name or self._leftover(relative, recorded):
                    continue
                elif not path.is_file():
                    problems.append(f"{escape(relative)}: not a regular file")
                elif relative not in recorded:
                    problems.append(f"{escape(relative)}: mirror did not write it")
                else:
                    digest = _file_digest(path)
                    if digest not in recorded[relative]:
                        problems.append(f"{escape(relative)}: changed since mirror wrote it")
                    present[relative] = digest
        if problems:
            shown = problems[: limits.max_problems]
            if len(problems) > len(shown):
                shown.append(f"… and {len(problems) - len(shown)} more")
            raise UsageError(
                f"{directory}: holds what an import cannot replace",
                problems=shown,
                hint=f"move these files elsewhere (or choose another {self.flag} directory); nothing was written",
            )
        return present

    def _leftover(self, relative: str, recorded: Mapping[str, object]) -> bool:
        """A temporary file of a night stopped while it wrote one of its files (or the record): mirror's own, so
        the next night is simply run again (its write removes it)."""
        match = _TEMPORARY.fullmatch(relative)
        return match is not None and match["folder"] + match["name"] in {*recorded, self.record_name}

    def remove_leftovers(self, directory: Path, *, limits: Limits = DEFAULT_LIMITS) -> None:
        """Remove the temporary files a stopped night left (the directory was just checked)."""
        record_path = directory / self.record_name
        if record_path.is_symlink() or not record_path.is_file():
            return
        recorded = self._read_record(record_path, limits)
        for root, _, names in os.walk(directory, followlinks=False):
            for name in names:
                path = Path(root) / name
                if self._leftover(path.relative_to(directory).as_posix(), recorded) and not path.is_symlink():
                    path.unlink(missing_ok=True)

    def _read_record(self, path: Path, limits: Limits) -> dict[str, frozenset[str]]:
        most = self.record_limit(limits)
        with path.open("rb") as handle:
            raw = handle.read(most + 1)
        if len(raw) > most:
            raise UsageError(f"{path}: larger than its limit of {most} bytes")
        try:
            document = json.loads(raw)
            if document.get("format") != self.record_format:
                raise ValueError("format")
            files = document["files"]
            return {
                str(name): frozenset(str(d) for d in digests)
                for name, digests in files.items()
                if isinstance(digests, list)
            }
        except (ValueError, TypeError, KeyError, AttributeError, RecursionError):
            raise UsageError(
                f"{path}: not mirror's record of a {self.flag} directory",
                hint=f"choose an empty {self.flag} directory",
            ) from None

    def record(self, files: Mapping[str, set[str]]) -> bytes:
        document = {"format": self.record_format, "files": {name: sorted(files[name]) for name in sorted(files)}}
        return (json.dumps(document, indent=1) + "\n").encode()

    def write(
        self,
        files: Mapping[str, str],
        directory: Path,
        planned: Mapping[str, str],
        *,
        on_file: Callable[[], None] = lambda: None,
        limits: Limits = DEFAULT_LIMITS,
    ) -> None:
        """Write the rendered files, replacing what the last night wrote (`planned`, as `check` found it when
        the import began: the directory must still be so) and removing its files this night no longer has;
        `on_file` is called after each file.

        The record first lists both nights' contents, so a night stopped half-way leaves a directory the next
        import accepts; it lists this night's alone at the end.
        """
        directory = Path(directory)
        if self.check(directory, limits=limits) != dict(planned):
            raise UsageError(f"{directory}: changed during the import; nothing was written there")
        new = {name: hashlib.sha256(text.encode("utf-8")).hexdigest() for name, text in files.items()}
        for name in new:
            _relative_parts(name)
        directory.mkdir(parents=True, exist_ok=True)
        both = {name: {d for d in (planned.get(name), new.get(name)) if d} for name in {*planned, *new}}
        self.remove_leftovers(directory, limits=limits)
        atomic_write(directory / self.record_name, self.record(both), durable=False)
        for relative, text in files.items():
            if planned.get(relative) != new[relative]:
                write_files({relative: text}, directory, overwrite=True)
            on_file()
        for relative in sorted(set(planned) - set(new)):
            (directory / relative).unlink(missing_ok=True)
            _remove_empty_parents(directory, relative)
        final = self.record({name: {digest} for name, digest in new.items()})
        atomic_write(directory / self.record_name, final, durable=False)


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _relative_parts(relative: str) -> list[str]:
    parts = relative.split("/")
    if relative.startswith("/") or any(part in ("", ".", "..") for part in parts):
        raise UsageError(f"{relative!r} is not a safe relative file name")
    return parts


def write_files(files: Mapping[str, str], directory: Path, *, overwrite: bool = False) -> list[Path]:
    """Write rendered files under `directory`, never through a link: directories are made (an existing one
    must be a real directory), and each file is new (O_EXCL|O_NOFOLLOW), or with `overwrite` replaced whole."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for relative, text in files.items():
        *folders, name = _relative_parts(relative)
        parent = directory
        for folder in folders:
            parent = parent / folder
            try:
                parent.mkdir()
            except FileExistsError:
                if parent.is_symlink() or not parent.is_dir():
                    raise UsageError(f"{parent}: exists and is not a directory") from None
        target = parent / name
        if overwrite:
            atomic_write(target, text.encode("utf-8"), durable=False)
        else:
            with create_exclusive(target) as handle:
                handle.write(text.encode("utf-8"))
        written.append(target)
    return written


def _remove_empty_parents(directory: Path, relative: str) -> None:
    parent = (directory / relative).parent
    while parent != directory:
        try:
            parent.rmdir()
        except OSError:
            return  # not empty
        parent = parent.parent
