"""structlog configured once per process: one JSON object per line, bound context first.

WriteLoggerFactory, not BytesLoggerFactory: under the Dramatiq CLI stdout is a pipe object with
no `.buffer` (docs/stack-notes.md, structlog inside Dramatiq). Foreign stdlib logs (dramatiq, uvicorn, httpx)
go through the same JSON renderer. A last processor masks any value under a secret-sounding key, and
credentials inside other strings (common/infra/redaction.py, the timeline's rule too), as a net under the
rule that secrets are never logged at all.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

from common.infra.redaction import redacted


def redact(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in event.items():
        event[key] = redacted(key, value)
    return event


def _shared_processors() -> list[Any]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact,
    ]


def configure_logging(level: str = "info", stream: TextIO | None = None) -> None:
    out = stream or sys.stdout
    numeric = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    structlog.configure(
        processors=[*_shared_processors(), structlog.processors.format_exc_info, structlog.processors.JSONRenderer()],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.WriteLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=_shared_processors(),
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.JSONRenderer(),
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(max(numeric, logging.INFO))
    logging.getLogger("httpx").setLevel(logging.WARNING)
