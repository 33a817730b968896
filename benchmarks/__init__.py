"""The performance harness: `python -m benchmarks` (not part of the test run)."""
