"""Problem codes of upstream signature checks (at collect, verify and import), for `--json` and scripts."""

from __future__ import annotations

SIGNATURE_MISSING = "SIGNATURE_MISSING"  # a rule matches the image, and nothing signs it
SIGNATURE_INVALID = "SIGNATURE_INVALID"  # signatures are there; none verifies (forged, wrong key, tampered payload)
SIGNATURE_DIGEST_MISMATCH = "SIGNATURE_DIGEST_MISMATCH"  # a valid signature over another digest
SIGNATURE_IDENTITY_MISMATCH = "SIGNATURE_IDENTITY_MISMATCH"  # a valid keyless signature by another identity/issuer
ATTACHED_SUBJECT_FILTERED = "ATTACHED_SUBJECT_FILTERED"  # a platform filter leaves attached manifests' subject behind
