"""Benchmarks: `python -m benches` runs the load benchmark of issue 4 (see benches/load/)."""
