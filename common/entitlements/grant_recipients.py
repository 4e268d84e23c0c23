"""Who a hand grant may go to: a user Kinde has, and (for a grant in an org) a member of that org.

A grant for a user id with a typo, a deleted user, or a user outside the org would be stored, shown
and audited, yet give nothing; so a grant is checked before it is stored and refused with the reason
(nothing kept). Two checks, one port:

* `rolesync grants add` asks Kinde (ops/kinde_recipients.py: `GET /user` with its organizations).
* The read API never calls Kinde (docs/architecture.md), so `PUT /v1/grants/{id}` checks what the
  service knows in Redis (`KnownRecipients`): a user Kinde deleted (the `user.deleted` mark) or an org
  it deleted is refused; so is a user the service has never seen (no billing customer linked to it, no
  snapshot of it, no user event's look-up listing its orgs, no hand grant), and, for an org grant, a
  user the service has not seen in that org (neither a snapshot there, nor the org's cached members,
  nor the user's last look-up list it). A user the service has not met yet is granted with the CLI,
  which asks Kinde.

`rolesync adopt` checks nothing more: its users are those the shadow passes just read from Kinde.
"""

from __future__ import annotations

from typing import Literal, Protocol

import redis

from common import keys
from common.entitlements.manual_grants import BadGrantError
from common.infra.connections import redis_errors

NEVER_SEEN = (
    "the service has never seen it (no billing customer linked to it, no snapshot, no user event, no grant); "
    "check the id, or grant it with `rolesync grants add`, which asks Kinde"
)
# A user the service has seen: a customer linked to it, a snapshot of it, the orgs a user event's look-up
# listed (common/guard/members.py; for a user with no billing customer too), a hand grant.
SEEN_BY = (keys.user_customers, keys.user_snapshots, keys.user_orgs, keys.user_hand_grants)
NOT_SEEN_THERE = (
    "the service has not seen it there (no snapshot, not in the org's cached members); if it "
    "joined lately, grant it with `rolesync grants add`, which asks Kinde"
)
Refusal = Literal["user_not_found", "not_a_member"]


class UnknownRecipientError(BadGrantError):
    """The grant's user does not exist (as far as the checker knows), or is not in the grant's org."""

    reason = "unknown_recipient"

    def __init__(self, message: str, refusal: Refusal) -> None:
        super().__init__(message)
        self.refusal: Refusal = refusal


class Recipients(Protocol):
    def check(self, user_id: str, org_code: str) -> None:
        """Return if a grant to `user_id` (in `org_code`; "" for the B2C org) can give something; else
        raise UnknownRecipientError saying why."""


class AnyRecipient:
    """No check: for users just read from Kinde (`rolesync adopt`)."""

    def check(self, user_id: str, org_code: str) -> None:
        return None


def unknown_user(user_id: str, why: str) -> UnknownRecipientError:
    return UnknownRecipientError(f"no user {user_id}: {why}; nothing was stored", "user_not_found")


def not_a_member(user_id: str, org_code: str, why: str) -> UnknownRecipientError:
    return UnknownRecipientError(f"user {user_id} is not a member of org {org_code}: {why}; nothing was stored",
                                 "not_a_member")  # fmt: skip


class KnownRecipients:
    """What the service knows of Kinde's users, from Redis (for the read API, which never calls Kinde)."""

    def __init__(self, client: redis.Redis) -> None:
        self._redis = client

    def check(self, user_id: str, org_code: str) -> None:
        with redis_errors("reading what the service knows of a user"), self._redis.pipeline(False) as pipe:
            pipe.exists(keys.deleted_user(user_id))
            pipe.exists(*(key(user_id) for key in SEEN_BY))
            user_gone, known = pipe.execute()
        if user_gone:
            raise unknown_user(user_id, "Kinde deleted it")
        if not known:
            raise unknown_user(user_id, NEVER_SEEN)
        if org_code:
            self._check_member(user_id, org_code)

    def _check_member(self, user_id: str, org_code: str) -> None:
        with redis_errors("reading what the service knows of an org's members"), self._redis.pipeline(False) as pipe:
            pipe.exists(keys.deleted_org(org_code))
            pipe.hexists(keys.user_snapshots(user_id), org_code)
            pipe.sismember(keys.user_orgs(user_id), org_code)
            pipe.sismember(keys.org_members(org_code), user_id)
            org_gone, *seen_there = pipe.execute()
        if org_gone:
            raise not_a_member(user_id, org_code, "Kinde deleted the org")
        if not any(seen_there):
            raise not_a_member(user_id, org_code, NOT_SEEN_THERE)
