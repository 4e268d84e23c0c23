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

from common.infra.redaction import MASK, redacted, secret_sounding


def redact(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """`redacted` on every value, with its common case inline: it runs for every key of every line."""
    for key, value in event.items():
        if secret_sounding(key):
            event[key] = MASK
        elif isinstance(value, str):
            if "@" in value or "=" in value:
                event[key] = redacted(key, value)
        elif isinstance(value, dict | list | tuple):
            event[key] = redacted(key, value)
    return event


class SteadyLogger:
    """`structlog.get_logger(name)` bound once per configuration, not on every call.

    structlog's lazy proxy (without `cache_logger_on_first_use`, which would keep a logger configured before
    `configure_logging` forever) binds a new logger, and makes a new output logger, for every line. This binds
    again only when the configuration changed (`configure`: new processors, level or stream); the processors
    list itself is shared, so `structlog.testing.capture_logs`, which edits it in place, still sees each line.
    """

    def __init__(self, name: str) -> None:
        self._name = name
        self._key: list[Any] = []  # the configuration it was bound under, held so no id is reused
        self._bound: Any = None

    def log(self, level: int, event: str, **fields: Any) -> None:
        config = structlog.get_config()
        key = [config[part] for part in _BINDING]
        if len(key) != len(self._key) or any(now is not then for now, then in zip(key, self._key, strict=False)):
            self._bound, self._key = structlog.get_logger(self._name).bind(), key
        self._bound.log(level, event, **fields)


_BINDING = ("processors", "wrapper_class", "logger_factory", "context_class")


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
