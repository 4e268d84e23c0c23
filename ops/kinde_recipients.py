"""Who a hand grant may go to, asked of Kinde (common/entitlements/grant_recipients.py): for `rolesync grants add`.

One `GET /user?id=…&expand=organizations`: Kinde's "no such user" is a refusal, and so is an org the
user's orgs do not list. Any other failure (Kinde down, a missing scope) stops the command as it is.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import tenacity

from common.entitlements.grant_recipients import not_a_member, unknown_user
from common.errors import PermanentError, RateLimitedError, RetryableError
from worker.customers.placement import org_codes_of
from worker.kinde.answers import GONE_USER
from worker.kinde.api import KindeApi


class KindeRecipients:
    def __init__(self, kinde: KindeApi) -> None:
        self._kinde = kinde

    def check(self, user_id: str, org_code: str) -> None:
        try:
            user = _patiently(self._kinde.get_user)(user_id)
        except PermanentError as exc:
            if exc.reason in GONE_USER:
                raise unknown_user(user_id, "Kinde has no such user") from None
            raise
        orgs = org_codes_of(user)
        if org_code and org_code not in orgs:
            raise not_a_member(user_id, org_code, f"Kinde lists its orgs as {', '.join(orgs) or '(none)'}")


PATIENCE_S = 15.0  # a worker fetching the shared token, or Kinde's rate gate: on-call should not have to retry


def _waits(exc: BaseException) -> bool:
    return isinstance(exc, RateLimitedError) or (isinstance(exc, RetryableError) and exc.reason == "token_wait")


def _patiently(call: Callable[[str], dict[str, Any]]) -> Callable[[str], dict[str, Any]]:
    """`call`, tried again while another process fetches the token or Kinde says to slow down (not while it is
    down: that stops the command at once, with its one line)."""
    return tenacity.retry(retry=tenacity.retry_if_exception(_waits), wait=tenacity.wait_fixed(0.5),
                          stop=tenacity.stop_after_delay(PATIENCE_S), reraise=True)(call)  # fmt: skip
