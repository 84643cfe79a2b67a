"""`mirror audit`: the targets compared with what the import journal says was imported (high side, read-only).

See docs/audit.md. `expected.py` folds the journal into what the targets should hold, `targets.py` reads what
they hold (shared with `prune`), `registry.py` and `git.py` compare the two, `statement.py` signs a clean result,
`run.py` is the one function the command line calls.
"""
