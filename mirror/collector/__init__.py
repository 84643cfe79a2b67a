"""Resolvers turn manifest entries into immutable references; one module per source kind."""
