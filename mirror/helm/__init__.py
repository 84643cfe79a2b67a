"""Helm: chart archives, index files, image discovery and charts stored as OCI artifacts (the version engine,
shared with Git and Flux, is mirror/semver.py)."""
