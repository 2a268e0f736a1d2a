"""Benchmarks: `./scripts/bench NAME` runs `python -m benchmarks.NAME`; the last line is a summary."""
