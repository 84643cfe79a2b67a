"""Bundles: an OCI image layout plus an inventory, as a directory or a plain ustar file."""
