"""What upstream vendors attach to their images (signatures, attestations, SBOMs): its shape in the inventory,
how it is read, and how it is verified. Shared by both sides; see docs/supply-chain.md."""
