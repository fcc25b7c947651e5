"""Platform administration (users with `role: admin`)."""
