"""Flux CD fleets: reading the objects under a path, resolving their sources, and writing them for the high side.

- objects.py reads YAML into FluxObject records (kustomize's YAML 1.2, within the YAML budget of Limits).
- kustomize.py builds a path the way kustomize-controller does (a kustomization.yaml when there is one, every
  manifest otherwise), with the kustomize features fleets use: resources, patches, images, namespace, generators.
- substitute.py is Flux's postBuild variable substitution (envsubst) of the fields mirror reads.
- walk.py follows a fleet's Kustomizations through a caller's callback, with cycle protection, and resolves the
  objects collected into a FluxPlan (plan.py: the records: git sources, charts, OCI artifacts and images).
- rewrite.py rewrites the objects for the internal endpoints and renders them in memory
  (mirror/importer/flux_out.py writes them, with the nodes' registry mirror files of mirror/nodeconfig/).
- blob.py is the FluxObjects blob that carries the objects read in the bundle, written and parsed.
- patterns.py runs the regular expressions fleets write (patch targets, semverFilter) with RE2, as Flux does.

Pure logic: nothing here touches the network, git or a registry.
"""
