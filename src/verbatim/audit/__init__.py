"""The audit log: append-only rows for security-relevant actions (decision 0019)."""
