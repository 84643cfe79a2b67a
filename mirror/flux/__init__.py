"""Flux CD fleets: reading the objects under a path, resolving their sources, and writing them for the high side.

- objects.py reads YAML trees into FluxObject records, the way kustomize-controller builds a path (a
  kustomization.yaml when there is one, every manifest otherwise), with the kustomize features fleets use.
- plan.py resolves them into a FluxPlan: git sources, charts, OCI artifacts and images, following
  Kustomizations through a caller's callback with cycle protection and postBuild substitution.
- rewrite.py rewrites the objects for the internal endpoints and renders them, and registry mirror
  configurations, in memory (mirror/importer/flux_out.py writes them).
- blob.py is the FluxObjects blob that carries the objects read in the bundle, written and parsed.

Pure logic: nothing here touches the network, git or a registry.
"""
