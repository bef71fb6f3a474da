"""Benchmarks of the placement strategies on synthetic clusters (not part of the package)."""
