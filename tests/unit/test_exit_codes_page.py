"""docs/exit-codes.md lists every exit code and every problem code the code can report.

A problem code is found in mirror/ as written: the first argument of a `Problem(...)` call, or of any function
or class whose first parameter is `code` (a literal string, either branch of `a if c else b`, or a module-level
constant named there), every constant of a `codes.py` module, and every module-level constant spelled as its own
value (`ROLLBACK = "ROLLBACK"`)."""

from __future__ import annotations

import ast
import functools
import re
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "exit-codes.md"
_CODE_NAME = re.compile(r"[A-Z][A-Z0-9]*(_[A-Z0-9]+)+")


def _modules() -> dict[Path, ast.Module]:
    return {path: ast.parse(path.read_text(encoding="utf-8")) for path in sorted((ROOT / "mirror").rglob("*.py"))}


def _string_constants(module: ast.Module) -> Iterator[tuple[str, str]]:
    for node in module.body:
        if isinstance(node, ast.Assign | ast.AnnAssign) and isinstance(node.value, ast.Constant):
            value = node.value.value
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name) and isinstance(value, str):
                    yield target.id, value


def _takes_a_code(node: ast.AST) -> str | None:
    """The name callers use for a function or class whose first parameter is `code`."""
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        parameters = [a.arg for a in node.args.args if a.arg not in ("self", "cls")]
        if parameters[:1] == ["code"]:
            return node.name
    if isinstance(node, ast.ClassDef):
        for item in node.body:
            if isinstance(item, ast.FunctionDef) and item.name == "__init__" and _takes_a_code(item):
                return node.name
    return None


@functools.cache
def problem_codes() -> set[str]:
    modules = _modules()
    constants: dict[str, set[str]] = {}
    codes: set[str] = set()
    for path, module in modules.items():
        for name, value in _string_constants(module):
            constants.setdefault(name, set()).add(value)
            if path.name == "codes.py" or (name == value and _CODE_NAME.fullmatch(name)):
                codes.add(value)
    callees = {"Problem"} | {n for m in modules.values() for node in ast.walk(m) if (n := _takes_a_code(node))}

    def values(node: ast.expr) -> set[str]:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return {node.value}
        if isinstance(node, ast.IfExp):
            return values(node.body) | values(node.orelse)
        if isinstance(node, ast.Name):
            return constants.get(node.id, set())
        if isinstance(node, ast.Attribute):
            return constants.get(node.attr, set())
        return set()

    for module in modules.values():
        for node in ast.walk(module):
            if not isinstance(node, ast.Call):
                continue
            callee = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)
            if callee not in callees or callee == "__init__":
                continue
            first = node.args[0] if node.args else next((k.value for k in node.keywords if k.arg == "code"), None)
            if first is not None and not isinstance(first, ast.Starred):
                codes |= {v for v in values(first) if re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", v)}
    return codes


def test_the_code_reader_finds_codes_of_every_form():
    codes = problem_codes()
    # a literal, a constant spelled as itself, a constant named otherwise, codes.py, a lowercase git code
    assert {"FILE_DIGEST", "JOURNAL_TRUNCATED", "GIT_TARGET_OUTSIDE_BASE", "SIGNATURE_MISSING", "git-fsck"} <= codes
    # an IfExp's both branches, a local function taking `code`
    assert {"VOLUME_MISSING", "VOLUME_NOT_REGULAR", "ROLE_CONFUSION"} <= codes


def test_the_page_lists_every_problem_code_of_the_code():
    page = PAGE.read_text(encoding="utf-8")
    assert sorted(code for code in problem_codes() if f"`{code}`" not in page) == []


def test_the_page_lists_every_exit_code():
    page = PAGE.read_text(encoding="utf-8")
    assert [code for code in (0, 1, 2, 3, 4, 5, 130) if not re.search(rf"^\| `{code}` \|", page, re.MULTILINE)] == []
