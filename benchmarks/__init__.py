"""Benchmarks (``make bench``): scripts that print tables and append to benchmarks/RESULTS.md. Not timed tests."""
