"""Re-running a transcription with other settings; the result becomes a new version."""
