"""Trust: keys, DSSE envelopes over in-toto statements, the trust policy and its verdict."""
