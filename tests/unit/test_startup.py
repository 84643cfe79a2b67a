"""Start-up stays light: a command that draws no progress bar never imports tqdm, and the CLI never pydantic.

Every mirror command pays its imports before any work; on small nights they are most of the run.
"""

from __future__ import annotations

import subprocess
import sys

_PROBE = """
import atexit, sys
atexit.register(lambda: print(sorted(m for m in ("tqdm", "pydantic") if m in sys.modules)))
from mirror.cli import main
sys.argv = ["mirror", *sys.argv[1:]]
main()
"""


def _heavy_modules_after(*arguments: str) -> str:
    done = subprocess.run([sys.executable, "-c", _PROBE, *arguments], capture_output=True, text=True, timeout=60)
    return done.stdout.strip().splitlines()[-1]


def test_a_collect_without_a_terminal_imports_neither_tqdm_nor_pydantic(tmp_path):
    manifest = tmp_path / "empty.yaml"
    manifest.write_text("apiVersion: mirror/v1\nkind: MirrorSet\nmetadata: {name: x}\nspec: {images: []}\n")
    assert _heavy_modules_after("collect", str(manifest), "-o", str(tmp_path / "out")) == "[]"


def test_an_import_refused_for_usage_imports_neither(tmp_path):
    assert _heavy_modules_after("import", str(tmp_path), "--registry", "https://127.0.0.1:1") == "[]"
