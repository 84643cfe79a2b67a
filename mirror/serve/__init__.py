"""`mirror serve`: a read-only OCI distribution endpoint straight from verified bundles. See docs/serve.md."""
