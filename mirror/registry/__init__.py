"""A client for the OCI distribution API on httpx: auth, retries, streaming with digest checks."""
