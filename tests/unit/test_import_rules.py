"""The air gap in the imports: the contracts of [tool.importlinter] in pyproject.toml hold for mirror/.

The high side (mirror.importer) never imports the connected side (mirror.collector); only the CLI reaches
either side; what both share (bundle, trust, flux, landing, ...) imports neither; bundle/opening.py dispatches
above reader.py and volumes.py, which do not import each other. Imports inside functions count too.
"""

from pathlib import Path

from importlinter.cli import lint_imports

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def test_the_import_contracts_are_kept(capsys):
    code = lint_imports(config_filename=str(PYPROJECT), no_cache=True, no_logo=True)
    assert code == 0, capsys.readouterr().out
