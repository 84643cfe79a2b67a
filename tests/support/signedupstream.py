"""scripts/demo's signed upstream image: `demo/signed:1.0` on the local upstream registry, signed as
`cosign sign --key` signs (a simple-signing payload under the tag `sha256-<hex>.sig`) with a key made for the
run, and with an SPDX SBOM attached as an OCI 1.1 client attaches one where the registry has no referrers API
(listed in the `sha256-<hex>` tag schema index, distribution 2.8 having no referrers API).

`python -m tests.support.signedupstream --public-key PATH` writes the public key (cosign.pub) to PATH and
prints what it pushed as JSON. The private key is never written: the demo plays the vendor for one run, and the
next run signs again with a new key. The image's bytes are the same on every run; its signature is replaced.
Like tests/support/cosign.py and attach.py, it does not use the `mirror` package.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tests.support import cosign
from tests.support.attach import Artifact, Attacher, sbom, subject_descriptor
from tests.support.images import Image, Layer
from tests.support.services import UPSTREAM_REGISTRY

REPOSITORY = "demo/signed"
TAG = "1.0"
PACKAGES = ("busybox", "ca-certificates", "musl", "zlib")  # what the SBOM says the image holds


def publish(registry: str, public_key: Path) -> dict[str, str]:
    """Push the image, its signature and its SBOM to `registry`; write the public key; what was pushed."""
    image = Image([Layer.from_seed(f"{REPOSITORY}/layer", files=2, file_size=512)], labels={"demo": "signed"})
    blobs = {digest: data for digest, data in image.blobs() if digest != image.digest and data is not None}
    key = cosign.generate_key()
    cosign.write_public_key(key, public_key)
    name = f"{registry}/{REPOSITORY}"
    signature = cosign.signature_manifest([cosign.signed_layer(key, name, image.digest)])
    document = sbom(subject_descriptor(image.digest, len(image.manifest.data)), REPOSITORY, PACKAGES)
    with Attacher(registry) as attacher:
        attacher.push(REPOSITORY, Artifact(image.manifest.data, blobs), TAG)
        attacher.push(REPOSITORY, Artifact(signature.raw, signature.blobs), cosign.cosign_tag(image.digest))
        attacher.attach(REPOSITORY, document)
    return {
        "reference": f"{name}:{TAG}",
        "digest": image.digest,
        "signature": signature.digest,
        "sbom": document.digest,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--public-key", type=Path, required=True, help="where to write the signer's cosign.pub")
    parser.add_argument("--registry", default=UPSTREAM_REGISTRY, help="the upstream registry (plain HTTP)")
    args = parser.parse_args(argv)
    print(json.dumps(publish(args.registry, args.public_key), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
