"""Signed webhooks (Standard Webhooks): endpoints, messages written with their event, delivery
as a job type of its own behind the downloads' network guard."""
