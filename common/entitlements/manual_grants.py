"""Hand grants: managed roles given by hand to one (org, user), with a reason and an optional expiry.

Not to be confused with a customer's *grant record* (common/entitlements/grants.py: what a billing customer's plans
grant, written by its passes). A hand grant is written by a person (`rolesync grants add`, or
`PUT /v1/grants/{id}`): a partner comped on a role, staff on the paid role, a trial extended by
support, a user adopted from before the service. It covers its target exactly like a customer does:
the target's managed roles are the union of what every covering customer *and* every active hand
grant gives (worker/convergence/targets.py), so a pass never removes what a hand grant gives. A grant is active
until its `until` (by the clock of whoever reads it); the worker's hand-grant schedule
(worker/sweeps/grant_schedule.py) converges its target when it is added, removed, and when it ends.

Redis (common/keys.py): `hand_grant(id)` the JSON record, `user_hand_grants(user)` the ids naming a
user, `HAND_GRANTS` every id by `until`, and `HAND_GRANTS_DUE` the targets to converge and when.
"""

from __future__ import annotations

import json
import math
import re
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

import redis

from common import keys
from common.customers.links import placed_org
from common.entitlements.grants import Target
from common.errors import PermanentError
from common.infra.audit_trail import BLANKS
from common.infra.connections import redis_errors

ID_PREFIX = "hg_"
USER_PREFIX = "kp_"
ID_PATTERN = r"[A-Za-z0-9_-]{1,64}"  # a grant id; an org code, a user id (after kp_) likewise (the API's schema too)
_ID = re.compile(ID_PATTERN)
MAX_REASON = 200
DueKind = Literal["changed", "expires"]


# KEYS: the schedule. ARGV: member, now. Takes the member off only if it is still due by now.
_DONE = """
local when = redis.call('ZSCORE', KEYS[1], ARGV[1])
if when and tonumber(when) <= tonumber(ARGV[2]) then return redis.call('ZREM', KEYS[1], ARGV[1]) end
return 0
"""


class BadGrantError(PermanentError):
    reason = "bad_grant"


@dataclass(frozen=True)
class HandGrant:
    grant_id: str
    user_id: str
    org_code: str  # "" = the B2C org (KINDE_ORG_CODE, else the tenant's default org)
    roles: tuple[str, ...]
    reason: str
    by: str  # the operator (`--by`) or the API key's label
    created_at: float
    until: float | None = None  # epoch s; None = until removed

    def active(self, now: float) -> bool:
        return self.until is None or self.until > now

    def granted_by(self) -> dict[str, str]:
        return {"grant": self.grant_id, "reason": self.reason}

    def to_dict(self) -> dict[str, Any]:
        return {
            "grant_id": self.grant_id,
            "user_id": self.user_id,
            "org_code": self.org_code,
            "roles": list(self.roles),
            "reason": self.reason,
            "by": self.by,
            "created_at": self.created_at,
            "until": self.until,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, raw: str) -> HandGrant:
        data: dict[str, Any] = json.loads(raw)
        until = data.get("until")
        return cls(str(data["grant_id"]), str(data["user_id"]), str(data.get("org_code") or ""),
                   tuple(str(r) for r in data.get("roles") or []), str(data.get("reason") or ""),
                   str(data.get("by") or ""), float(data.get("created_at") or 0.0),
                   float(until) if until is not None else None)  # fmt: skip


def covering(found: Iterable[HandGrant], target: Target, b2c_org: Callable[[], str], now: float) -> list[HandGrant]:
    """The grants among `found` (a user's) that cover the target now: active, and in its org."""
    return [g for g in found if g.active(now) and placed_org(g.org_code, b2c_org) == target.org_code]


def new_grant_id() -> str:
    return ID_PREFIX + secrets.token_urlsafe(9).replace("-", "x").replace("_", "y")


def parse_until(text: str) -> float:
    """`2027-03-01` (midnight UTC) or an ISO date-time (UTC unless it names an offset), as epoch seconds."""
    raw = text.strip()
    try:
        when = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise BadGrantError(f"--until {text!r} is not a date; use e.g. 2027-03-01 or 2027-03-01T12:00:00Z") from None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


def checked(grant: HandGrant, managed: frozenset[str], now: float) -> HandGrant:
    """The grant if it can be stored; BadGrantError saying what is wrong otherwise (nothing is stored)."""
    _check_ids(grant)
    if not grant.roles:
        raise BadGrantError("name at least one role (--role)")
    unmanaged = sorted(set(grant.roles) - managed)
    if unmanaged:
        raise BadGrantError(f"role(s) {', '.join(unmanaged)} are not managed (not in plans.toml's [plans]); "
                            f"only these can be granted: {', '.join(sorted(managed)) or '(none)'}")  # fmt: skip
    if not grant.reason.strip(BLANKS):
        raise BadGrantError("say why with a reason: it is shown wherever the grant is")
    if len(grant.reason) > MAX_REASON:
        raise BadGrantError(f"the reason is longer than {MAX_REASON} characters")
    if grant.until is not None and (not math.isfinite(grant.until) or grant.until <= now):
        raise BadGrantError("--until is not in the future: the grant would end before it starts")
    return grant


def _check_ids(grant: HandGrant) -> None:
    if not _ID.fullmatch(grant.grant_id):
        raise BadGrantError(f"grant id {grant.grant_id!r} must be 1-64 letters, digits, '-' or '_'")
    if not grant.user_id.startswith(USER_PREFIX) or not _ID.fullmatch(grant.user_id):
        raise BadGrantError(f"user id {grant.user_id!r} is not a Kinde user id (they start with {USER_PREFIX})")
    if grant.org_code and not _ID.fullmatch(grant.org_code):
        raise BadGrantError(f"org code {grant.org_code!r} must be letters, digits, '-' or '_'")


@dataclass(frozen=True, order=True)
class Due:
    """A hand grant's target to converge: it `changed` (added, replaced, removed) or it `expires` now."""

    kind: DueKind
    grant_id: str
    org_code: str  # "" = the B2C org
    user_id: str

    @property
    def member(self) -> str:
        return f"{self.kind}|{self.grant_id}|{self.org_code}|{self.user_id}"

    @classmethod
    def from_member(cls, member: str) -> Due:
        kind, grant_id, org_code, user_id = member.split("|", 3)
        return cls("expires" if kind == "expires" else "changed", grant_id, org_code, user_id)

    @classmethod
    def of(cls, kind: DueKind, grant: HandGrant) -> Due:
        return cls(kind, grant.grant_id, grant.org_code, grant.user_id)


class HandGrantStore(Protocol):
    def put(self, grant: HandGrant, now: float) -> HandGrant | None:
        """Store (or replace) the grant and mark its target, and a replaced one's, due now; the old grant."""

    def remove(self, grant_id: str, now: float) -> HandGrant | None:
        """Forget the grant and mark its target due now; None if there was none."""

    def get(self, grant_id: str) -> HandGrant | None: ...

    def of_user(self, user_id: str) -> list[HandGrant]:
        """Every grant naming the user, in any org, active or not."""

    def listed(self, ending_before: float | None = None) -> list[HandGrant]:
        """Every grant, or only those whose `until` is before `ending_before`; soonest ending first."""

    def counts(self, ending_before: float) -> tuple[int, int]:
        """How many grants there are, and how many of them end before `ending_before`."""

    def due(self, now: float) -> list[Due]:
        """The targets whose convergence is due by `now`."""

    def done(self, due: Due, now: float) -> bool:
        """Take `due` off the schedule unless it was marked due again after `now`; True if taken off."""


class RedisHandGrantStore:
    def __init__(self, client: redis.Redis) -> None:
        self._redis = client
        self._done = client.register_script(_DONE)

    def put(self, grant: HandGrant, now: float) -> HandGrant | None:
        record, found = keys.hand_grant(grant.grant_id), list[HandGrant | None]([None])

        def write(pipe: redis.client.Pipeline) -> None:  # WATCHed: a concurrent change of the id runs this again
            raw = pipe.get(record)
            old = found[0] = HandGrant.from_json(str(raw)) if raw else None
            pipe.multi()
            if old is not None and old.user_id != grant.user_id:
                pipe.srem(keys.user_hand_grants(old.user_id), old.grant_id)
            pipe.set(record, grant.to_json())
            pipe.sadd(keys.user_hand_grants(grant.user_id), grant.grant_id)
            pipe.zadd(keys.HAND_GRANTS, {grant.grant_id: grant.until if grant.until is not None else "+inf"})
            due = {Due.of("changed", g).member: now for g in (old, grant) if g is not None}
            if grant.until is not None:
                due[Due.of("expires", grant).member] = grant.until
            pipe.zadd(keys.HAND_GRANTS_DUE, due)

        with redis_errors("writing a hand grant"):
            self._redis.transaction(write, record)
        return found[0]

    def remove(self, grant_id: str, now: float) -> HandGrant | None:
        record, found = keys.hand_grant(grant_id), list[HandGrant | None]([None])

        def drop(pipe: redis.client.Pipeline) -> None:
            raw = pipe.get(record)
            old = found[0] = HandGrant.from_json(str(raw)) if raw else None
            if old is None:
                return
            pipe.multi()
            pipe.delete(record)
            pipe.srem(keys.user_hand_grants(old.user_id), grant_id)
            pipe.zrem(keys.HAND_GRANTS, grant_id)
            pipe.zadd(keys.HAND_GRANTS_DUE, {Due.of("changed", old).member: now})

        with redis_errors("removing a hand grant"):
            self._redis.transaction(drop, record)
        return found[0]

    def get(self, grant_id: str) -> HandGrant | None:
        with redis_errors("reading a hand grant"):
            raw = self._redis.get(keys.hand_grant(grant_id))
        return HandGrant.from_json(str(raw)) if raw else None

    def of_user(self, user_id: str) -> list[HandGrant]:
        with redis_errors("reading a user's hand grants"):
            ids = sorted(str(i) for i in self._redis.smembers(keys.user_hand_grants(user_id)))
        return self._many(ids)

    def listed(self, ending_before: float | None = None) -> list[HandGrant]:
        with redis_errors("listing hand grants"):
            ids = self._redis.zrangebyscore(keys.HAND_GRANTS, "-inf", ending_before if ending_before else "+inf")
        return self._many([str(i) for i in ids])

    def _many(self, ids: Iterable[str]) -> list[HandGrant]:
        wanted = list(ids)
        if not wanted:
            return []
        with redis_errors("reading hand grants"):
            raws = self._redis.mget([keys.hand_grant(i) for i in wanted])
        return [HandGrant.from_json(str(raw)) for raw in raws if raw]

    def counts(self, ending_before: float) -> tuple[int, int]:
        with redis_errors("counting hand grants"), self._redis.pipeline(transaction=False) as pipe:
            pipe.zcard(keys.HAND_GRANTS)
            pipe.zcount(keys.HAND_GRANTS, "-inf", ending_before)
            total, ending = pipe.execute()
        return int(total), int(ending)

    def due(self, now: float) -> list[Due]:
        with redis_errors("reading the hand grants' schedule"):
            found = self._redis.zrangebyscore(keys.HAND_GRANTS_DUE, "-inf", now)
        return [Due.from_member(str(m)) for m in found]

    def done(self, due: Due, now: float) -> bool:
        with redis_errors("updating the hand grants' schedule"):
            return bool(self._done(keys=[keys.HAND_GRANTS_DUE], args=[due.member, repr(now)]))
