"""Media from URLs: download jobs (yt-dlp in a guarded child process), then the upload path."""
