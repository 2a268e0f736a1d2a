"""Benchmarks: `./scripts/bench NAME` runs `python -m benchmarks.NAME`; last line: a summary."""
