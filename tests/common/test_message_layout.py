"""The one writer of Dramatiq's message layout (common/message_layout.py) writes Dramatiq's own bytes.

The ingest and the API each wrote the layout by hand (issue 25, item 5); both now write it there. Byte for byte
what Dramatiq's JSONEncoder writes for `Message.asdict()`, so a worker decodes it exactly as a sent message.
"""

from __future__ import annotations

from typing import Any

import dramatiq
import pytest

from common.message_layout import encoded_message, message_head, message_tail
from common.messages import converge_message, event_message, refresh_members_message

OPTIONS: dict[str, Any] = {"redis_message_id": "r-1", "otel": {"traceparent": "00-ab-cd-01"}}
MESSAGES = {
    "refresh-members": lambda: refresh_members_message("org_\u00e9"),
    "converge": lambda: converge_message("cus_1", "test"),
    "event": lambda: event_message({"type": "x", "note": "caf\u00e9 \u2603", "n": [1.5, None]}, "wh_1", 1.5),
    "bulk-event": lambda: event_message({"type": "x"}, None, 2.0, bulk=True),
}


def dramatiq_bytes(message: dramatiq.Message[Any], options: dict[str, Any]) -> bytes:
    return dramatiq.get_encoder().encode({**message.asdict(), "options": options})


@pytest.mark.parametrize("name", sorted(MESSAGES))
def test_a_written_message_is_byte_for_byte_what_dramatiq_encodes(name: str) -> None:
    message = MESSAGES[name]()
    assert encoded_message(message, OPTIONS) == dramatiq_bytes(message, OPTIONS)
    assert dramatiq.Message.decode(encoded_message(message, OPTIONS)).args == message.args


def test_the_head_and_tail_the_ingest_splices_are_the_whole_message() -> None:
    message = event_message({"type": "x"}, "wh_1", 1.5, bulk=True)
    args = '[{"type":"x"},{"webhook_id":"wh_1","received_at":1.5}]'
    spliced = message_head(message.queue_name, message.actor_name).encode() + message_tail(
        args, OPTIONS, message.message_id, message.message_timestamp
    )
    assert spliced == dramatiq_bytes(message, OPTIONS)


def test_a_message_with_kwargs_is_refused_rather_than_written_without_them() -> None:
    message = dramatiq.Message(queue_name="q", actor_name="a", args=(), kwargs={"k": 1}, options={})
    with pytest.raises(ValueError, match="kwargs"):
        encoded_message(message, {})
