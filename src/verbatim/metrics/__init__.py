"""Prometheus metrics: per-process instruments, cluster gauges read from the database, and the
protected /metrics endpoint (decision 0017)."""
