"""Benchmarks that measure the product through its own code paths."""
