"""Load and performance benchmarks (not part of the test suite)."""
