"""Search: transcripts cut into chunks (chunking.py), embedded (embedding.py) and indexed
(indexing.py, the `search.index` job) in `transcription_chunk`."""
