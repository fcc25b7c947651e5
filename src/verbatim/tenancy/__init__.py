"""Tenants: membership, roles, the active tenant of a request and the one ownership filter."""
