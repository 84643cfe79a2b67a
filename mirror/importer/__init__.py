"""The high side: `mirror import`, a transaction that plans and checks everything, and only then writes.

run.py is the transaction; registry.py loads images and charts into the internal registry, git.py git bundles
into the internal Git server (staged in quarantine.py's directories), expected.py checks what an incremental
bundle expects on the targets, flux_out.py writes `--flux-out`. Where things land is mirror/landing.py. This
package imports nothing from mirror.collector (tests/unit/test_import_rules.py).
"""
