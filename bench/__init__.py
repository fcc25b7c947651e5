"""Benchmarks for Verbatim: `python -m bench.run [pipeline|ingest|all]`."""
