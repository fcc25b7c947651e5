from __future__ import annotations

from pydantic import Field

from verbatim.downloads.guard import MAX_URL_LENGTH
from verbatim.kit.schemas import RequestModel
from verbatim.transcriptions.schemas import TranscriptionCreate


class DownloadCreate(RequestModel):
    url: str = Field(
        min_length=1,
        max_length=MAX_URL_LENGTH,
        description="http(s) link to a page yt-dlp supports or to a media file",
    )
    transcribe: TranscriptionCreate | None = Field(
        default=None,
        description="Start a transcription with these options once the download completes",
    )
