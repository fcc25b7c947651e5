"""Live job events: PostgreSQL NOTIFY (sent by a trigger on `job`) fanned out to SSE streams."""
