"""The OCI data model: digests, references, media types, platforms and manifest documents."""
