"""Topics: the user's own subjects, suggested for transcriptions by embedding similarity."""
