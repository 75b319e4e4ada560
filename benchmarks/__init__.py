"""Benchmarks: a load generator for the gateway and side-by-side suites, run by `wren bench`."""
