"""The Dramatiq message of one verified event, minus its queue and actor (the enqueue script adds those).

The claims go into the message as the signed payload's own JSON text when the caller has it: the
token's payload was decoded once to verify and check it, and encoding the parsed claims back to JSON
would only rebuild what the token already holds (docs/benchmarks.md, Ingest). Parsing that text gives
the same claims the ingest checked (the same `json.loads`), so the worker sees what was verified.
The rest is written in Dramatiq's JSON layout by common/message_layout.py (the one writer of it), the fields of
`common.messages.event_message` in `Message.asdict()`'s order, without building a Message to copy
(tests/ingest/test_event_body.py holds the two to the same decoded message).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from common.infra import tracing
from common.message_layout import message_tail
from common.messages import TRACE_OPTION

_COMPACT = json.JSONEncoder(separators=(",", ":"))  # what Dramatiq's JSONEncoder writes


def encoded_event(
    claims: dict[str, Any], webhook_id: str | None, received_at: float, payload: str | None = None
) -> tuple[str, bytes]:
    """A fresh redis_message_id and the encoded message carrying it, without its opening `{"queue_name":…,
    "actor_name":…,`. `payload`: the verified token's payload JSON, whose parse is `claims`."""
    # Dramatiq's own enqueue copies the message to add a second uuid4 as its Redis id. The message id is
    # already a fresh uuid4, unique the same way, so it serves as both (a requeue by Dramatiq assigns a
    # new Redis id anyway).
    message_id = str(uuid.uuid4())
    trace = tracing.carrier()
    options = {TRACE_OPTION: trace, "redis_message_id": message_id} if trace else {"redis_message_id": message_id}
    meta = _COMPACT.encode({"webhook_id": webhook_id, "received_at": received_at})
    args = f"[{_COMPACT.encode(claims) if payload is None else payload},{meta}]"
    return message_id, message_tail(args, options, message_id)
