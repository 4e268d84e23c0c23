"""POST one `entitlements.updated` webhook to the app, signed the Standard Webhooks way, and judge the answer.

Headers (Standard Webhooks, docs/stack-notes.md): `webhook-id` (chosen once when the change was
queued, worker/outputs/notify.py, so every retry and replay carries it and the receiver can drop
duplicates), `webhook-timestamp` (this attempt, integer Unix seconds: receivers reject stale
ones), `webhook-signature` = `v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`, made by the
`standardwebhooks` library of the spec's authors. The key is ROLESYNC_NOTIFY_SECRET
(common/settings.py `notify_key`: `whsec_<base64>` decoded, else the raw secret's bytes).

Answers: 2xx delivered; a network error, 408, 429 or 5xx is a `RetryableError`, retried by the one
retry policy (worker/runtime/retry_policy.py) within ROLESYNC_NOTIFY_MAX_RETRIES failures (the actor's
`max_retries`, spent as its `exhausted_as`: worker/runtime/actors.py); any other answer is permanent. Both
end as a dead letter `notify_failed` (`rolesync dlq replay` sends it again
with its webhook id). Neither the secret nor the URL (which may carry a token) is put in an error.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from standardwebhooks.webhooks import Webhook

from common.errors import PermanentError, RetryableError, ServiceError
from common.infra.deadletters import NOTIFY_FAILED


class NotifyFailedError(PermanentError):
    reason = NOTIFY_FAILED


def signed_headers(key: bytes, webhook_id: str, timestamp: int, body: str) -> dict[str, str]:
    signature = Webhook(key).sign(webhook_id, datetime.fromtimestamp(timestamp, UTC), body)
    return {"webhook-id": webhook_id, "webhook-timestamp": str(timestamp), "webhook-signature": signature,
            "content-type": "application/json"}  # fmt: skip


def judged(status: int) -> ServiceError | None:
    """The error an answer of the app means, or None when it took the webhook."""
    if 200 <= status < 300:
        return None
    if status in (408, 429) or status >= 500:
        return RetryableError(f"the app's webhook endpoint answered {status}", reason=f"notify_{status}")
    return NotifyFailedError(f"the app's webhook endpoint answered {status}, which is not retried")


@dataclass(frozen=True)
class WebhookSender:
    http: httpx.Client
    url: str
    key: bytes = field(repr=False)
    clock: Callable[[], float] = time.time

    def deliver(self, notification: dict[str, Any]) -> int:
        """POST it once; the status on success, else the error `judged` names."""
        body = str(notification["body"])
        headers = signed_headers(self.key, str(notification["event_id"]), int(self.clock()), body)
        try:
            response = self.http.post(self.url, content=body.encode(), headers=headers)
        except httpx.HTTPError as exc:
            raise RetryableError(f"the app's webhook endpoint did not answer: {type(exc).__name__}",
                                 reason="notify_unreachable") from None  # fmt: skip
        failure = judged(response.status_code)
        if failure is not None:
            raise failure
        return response.status_code
