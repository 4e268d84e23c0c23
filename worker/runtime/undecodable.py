"""A message body Dramatiq cannot decode, as a dead letter on-call can read.

Such a body never reached an actor, so there are no verified claims to keep: the record holds the
body itself, cut to a few kB, as text when it is UTF-8 and base64 otherwise. Bodies carry verified
claims, never a webhook token; anything token-shaped is masked all the same, since an unreadable
body proves nothing about what it holds.
"""

from __future__ import annotations

import base64
import re
import time
from typing import Any

from common.infra.deadletters import UNDECODABLE, DeadLetter

MAX_BODY_CHARS = 4096
_JWT_SHAPE = re.compile(r"eyJ[\w-]+\.[\w-]+\.[\w-]*")


def undecodable_letter(queue: str, message_id: str, body: bytes) -> DeadLetter:
    """Keyed by the Redis message id, so a retried write updates the same record."""
    claims = {"queue": queue, "redis_message_id": message_id, **excerpt(body)}
    why = f"Dramatiq cannot decode message {message_id} of queue {queue}"
    now = time.time()
    return DeadLetter(f"message_{message_id}", claims, UNDECODABLE, why, 1, now, now, None, None)


def excerpt(body: bytes) -> dict[str, Any]:
    try:
        text, encoding = body.decode("utf-8")[:MAX_BODY_CHARS], "text"
    except UnicodeDecodeError:
        text, encoding = base64.b64encode(body[: MAX_BODY_CHARS * 3 // 4]).decode(), "base64"
    return {"body": _JWT_SHAPE.sub("<token masked>", text), "body_encoding": encoding, "body_bytes": len(body)}
