"""Flux CD fleets: reading the objects under a path, resolving their sources, and writing them for the high side.

- objects.py reads YAML trees into FluxObject records, the way kustomize-controller builds a path (a
  kustomization.yaml when there is one, every manifest otherwise), with the kustomize features fleets use.
- plan.py resolves them into a FluxPlan: git sources, charts, OCI artifacts and images, following
  Kustomizations through a caller's callback with cycle protection and postBuild substitution.
- rewrite.py writes the objects rewritten for the internal endpoints, and registry mirror configurations.

Pure logic: nothing here touches the network, git or a registry.
"""
