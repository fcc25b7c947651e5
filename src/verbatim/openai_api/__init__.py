"""The OpenAI-compatible API (/v1/audio/transcriptions, /v1/audio/translations, /v1/models)."""
