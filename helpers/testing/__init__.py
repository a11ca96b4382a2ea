"""Test doubles shared by the tests, the benchmarks and the notebooks (standard library only)."""
