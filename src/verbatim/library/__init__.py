"""The organised library: topics (suggested by embedding similarity, reviewed by the user) and
collections (ordered lists of transcriptions, exported as a zip)."""
