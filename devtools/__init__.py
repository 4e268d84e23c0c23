"""Maintainers' tools that never ship: the dependency lock (`make lock`, `make test-latest`)."""
