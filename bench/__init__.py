"""Benchmarks: each script prints one JSON object (see docs/performance.md)."""
