"""How the local sandbox Kinde says it is one, so doctor gives advice that fits it.

The sandbox delivers every event to its own `--webhook-url` without any registration, so a webhook
registered there as well doubles each delivery. Its `GET /api/v1/webhooks` answer carries one field
a real Kinde never sends, naming that URL ("" when it has none); doctor reads it.
"""

from __future__ import annotations

DELIVERS_TO = "sandbox_delivers_to"
