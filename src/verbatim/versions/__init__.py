"""Transcript versions and edits: every change to a transcript's segments, words or speakers
is a new `transcription_version` (a snapshot), and edited text is re-aligned to the old word
times (align.py)."""
