"""The web UI: server-rendered pages (Jinja2) with small vanilla ES modules, on the same services
and the same REST API as every other client. A browser signs in with a cookie session."""
