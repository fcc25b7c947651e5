"""Per-tenant quotas, checked before work is queued (decision 0019)."""
