"""Keeping storage and database in step: cleanup, media retention, consistency check."""
