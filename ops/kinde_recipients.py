"""Who a hand grant may go to, asked of Kinde (common/entitlements/grant_recipients.py): for `rolesync grants add`.

One `GET /user?id=…&expand=organizations`: Kinde's "no such user" is a refusal, and so is an org the
user's orgs do not list. Any other failure (Kinde down, a missing scope) stops the command as it is.
"""

from __future__ import annotations

from common.entitlements.grant_recipients import not_a_member, unknown_user
from common.errors import PermanentError
from worker.customers.placement import org_codes_of
from worker.kinde.answers import GONE_USER
from worker.kinde.api import KindeApi


class KindeRecipients:
    def __init__(self, kinde: KindeApi) -> None:
        self._kinde = kinde

    def check(self, user_id: str, org_code: str) -> None:
        try:
            user = self._kinde.get_user(user_id)
        except PermanentError as exc:
            if exc.reason in GONE_USER:
                raise unknown_user(user_id, "Kinde has no such user") from None
            raise
        orgs = org_codes_of(user)
        if org_code and org_code not in orgs:
            raise not_a_member(user_id, org_code, f"Kinde lists its orgs as {', '.join(orgs) or '(none)'}")
