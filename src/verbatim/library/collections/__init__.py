"""Collections: ordered lists of a user's transcriptions."""
