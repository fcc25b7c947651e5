"""The procrastinate app: one PostgreSQL-backed queue shared by the API and every worker.

Task arguments are ids only; task names are `domain.verb`. Transcriptions have their own queue so
a worker takes only as many as its engine processes can run.
"""

from __future__ import annotations

from typing import Any

from procrastinate import App, PsycopgConnector
from sqlalchemy.ext.asyncio import AsyncSession

TRANSCRIPTION_QUEUE = "transcription"
# Cloud engine transcriptions wait on a provider, not a local CPU: their own queue and slots, so
# an hour of polling neither holds an engine process's slot nor the default queue's.
CLOUD_TRANSCRIPTION_QUEUE = "transcription_cloud"
DEFAULT_QUEUE = "default"

queue = App(
    connector=PsycopgConnector(),
    import_paths=[
        "verbatim.transcriptions.tasks",
        "verbatim.reprocess.tasks",
        "verbatim.jobs.tasks",
        "verbatim.downloads.tasks",
        "verbatim.housekeeping.tasks",
        "verbatim.library.tasks",
        "verbatim.search.tasks",
        "verbatim.webhooks.tasks",
        "verbatim.reconciliation.tasks",
    ],
)


async def raw_connection(session: AsyncSession) -> Any:
    """The psycopg connection under the session, so a defer joins the session's transaction."""
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    return raw.driver_connection
