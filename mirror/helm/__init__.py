"""Helm: version constraints, chart archives, image discovery and charts stored as OCI artifacts."""
