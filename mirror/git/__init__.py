"""Git sources: list and resolve refs as Flux does, carry them as git bundles, check and push them inside.

See docs/collector.md ("Git sources") and docs/importer.md ("Git pushes"). Import the module you need
(mirror.git.runner, refs, bundles, relocate): this package imports none of them, so a command that only builds
a Git transport does not pay for the rest (docs/development.md, "Start-up").
"""
