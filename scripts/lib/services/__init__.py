"""The local services of mirror's integration tests, run by ``scripts/services``.

ports (where they listen: the one place), layout (services, components, state files), material
(CA, certificates, passwords), configs (the ``*.in`` templates rendered), processes (pid files,
launch, stop), probes (readiness), cli (the commands).
"""
