"""Dramatiq's message as its Redis broker stores it, written without building or copying a Message.

Dramatiq's JSONEncoder writes a message as compact `json.dumps` of `Message.asdict()`: queue_name, actor_name,
args, kwargs, options, message_id, message_timestamp, in that order. The ingest (ingest/event_body.py, its hot
path: docs/benchmarks.md, Ingest) and the API's member-refresh request (api/guard_store.py) write messages into
Redis themselves, in one Lua step with their other writes (docs/stack-notes.md, Enqueueing from an async
endpoint); both write them here, with f-strings, as fast as the ingest's own layout was
(tests/common/test_message_layout.py holds the bytes to Dramatiq's own encoding).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

_COMPACT = json.JSONEncoder(separators=(",", ":"))  # what Dramatiq's JSONEncoder writes


class QueuedMessage(Protocol):
    """The fields of a dramatiq.Message the layout writes."""

    @property
    def queue_name(self) -> str: ...
    @property
    def actor_name(self) -> str: ...
    @property
    def args(self) -> Sequence[Any]: ...
    @property
    def kwargs(self) -> Mapping[str, Any]: ...
    @property
    def message_id(self) -> str: ...
    @property
    def message_timestamp(self) -> int: ...


def message_head(queue_name: str, actor_name: str) -> str:
    """The encoded message's opening up to its args: `{"queue_name":…,"actor_name":…,`."""
    return _COMPACT.encode({"queue_name": queue_name, "actor_name": actor_name})[:-1] + ","


def message_tail(args_json: str, options: Mapping[str, Any], message_id: str, stamp_ms: int | None = None) -> bytes:
    """The encoded message after its head: `args_json` (the args list, already JSON), no kwargs, `options`, the id
    and the time (ms; now if None)."""
    stamp = int(time.time() * 1000) if stamp_ms is None else stamp_ms
    text = f'"args":{args_json},"kwargs":{{}},"options":{_COMPACT.encode(options)},'
    return f'{text}"message_id":"{message_id}","message_timestamp":{stamp}}}'.encode()


def encoded_message(message: QueuedMessage, options: Mapping[str, Any]) -> bytes:
    """The whole message with `options` (the message's own are replaced), as Dramatiq would encode it."""
    if message.kwargs:
        raise ValueError("the layout writes messages without kwargs, as every message of ours is")
    head = message_head(message.queue_name, message.actor_name)
    args = _COMPACT.encode(list(message.args))
    return head.encode() + message_tail(args, options, message.message_id, message.message_timestamp)
