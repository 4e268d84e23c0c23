"""Customer links: which Kinde user (B2C) or organization (B2B) a billing `customer_id` belongs to.

Kinde's billing webhooks name only the billing customer and no endpoint maps a customer back to
a user (docs/kinde-facts.md, Management API), so every answer the worker learns is kept here: from ids the
event carries, from `user.created`/`organization.created` look-ups, from an index rebuild, or set by
on-call (`rolesync customers link`). Records never expire; `user.deleted` drops a user's links and
`organization.deleted` every link naming the org.

Redis layout (common/keys.py): `link:{customer}` holds the JSON record, `user-customers:{user}` and
`org-customers:{org}` the customers whose link names that user or org (so a deletion can drop
them), `org-payers:{org}` those whose link is the org's own (they cover every member), `links`
every linked customer.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal, Protocol

import redis

from common import keys
from common.infra.connections import redis_errors

LinkKind = Literal["user", "org"]
INDEX_CHUNK = 500


def placed_org(org_code: str | None, b2c_org: Callable[[], str]) -> str:
    """The org roles land in: the one named, else (none, or '') the B2C org: KINDE_ORG_CODE, else the tenant's
    default. `b2c_org` is asked only when needed (the default may cost a Kinde call). The one home of the
    rule, for links, targets noted before and hand grants alike; api/guard_store.py's Lua is its one Lua copy
    (it reads the links inside Redis), held to it by tests/api/test_guard_placement.py."""
    return org_code or b2c_org()


@dataclass(frozen=True)
class CustomerLink:
    """`kind="user"`: roles go to `user_id` in `org_code` (or the default org); `kind="org"`: to every member."""

    customer_id: str
    kind: LinkKind
    user_id: str | None
    org_code: str | None
    source: str  # event | user_lookup | org_lookup | rebuild | on_call
    learned_at: float

    def placed_org(self, b2c_org: Callable[[], str]) -> str:
        """The org this link's roles land in (a user link's user there; an org link's every member)."""
        return placed_org(self.org_code, b2c_org)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, raw: str) -> CustomerLink:
        data = json.loads(raw)
        return cls(
            customer_id=data["customer_id"],
            kind="org" if data.get("kind") == "org" else "user",
            user_id=data.get("user_id"),
            org_code=data.get("org_code"),
            source=data.get("source", "unknown"),
            learned_at=float(data.get("learned_at", 0.0)),
        )


class LinkStore(Protocol):
    def get(self, customer_id: str) -> CustomerLink | None: ...

    def put(self, link: CustomerLink) -> None:
        """Create or replace the link of `link.customer_id`."""

    def drop_user(self, user_id: str) -> list[str]:
        """Remove every link naming `user_id`; return the customer ids that lost their link."""

    def drop_org(self, org_code: str) -> list[str]:
        """Remove every link naming `org_code` (the org's own and its members'); return their customer ids."""

    def customers_of_user(self, user_id: str) -> list[str]: ...

    def customers_of_org(self, org_code: str) -> list[str]:
        """Customers whose link names the org: its own and its members' placed there."""

    def payers_of_org(self, org_code: str) -> list[str]:
        """Customers whose link is the org's own (they cover every member)."""

    def all_customer_ids(self) -> list[str]: ...


class RedisLinkStore:
    def __init__(self, client: redis.Redis) -> None:
        self._redis = client

    def get(self, customer_id: str) -> CustomerLink | None:
        with redis_errors("reading a customer link"):
            raw = self._redis.get(keys.customer_link(customer_id))
        return CustomerLink.from_json(str(raw)) if raw else None

    def put(self, link: CustomerLink) -> None:
        old = self.get(link.customer_id)
        with redis_errors("writing a customer link"), self._redis.pipeline(transaction=True) as pipe:
            if old:
                _unindex(pipe, old)
            pipe.set(keys.customer_link(link.customer_id), link.to_json())
            if link.user_id:
                pipe.sadd(keys.user_customers(link.user_id), link.customer_id)
            if link.org_code:
                pipe.sadd(keys.org_customers(link.org_code), link.customer_id)
            if link.kind == "org" and link.org_code:
                pipe.sadd(keys.org_payers(link.org_code), link.customer_id)
            pipe.sadd(keys.LINKS_INDEX, link.customer_id)
            pipe.execute()

    def drop_user(self, user_id: str) -> list[str]:
        return self._drop(self.customers_of_user(user_id), "dropping a user's links")

    def drop_org(self, org_code: str) -> list[str]:
        return self._drop(self.customers_of_org(org_code), "dropping an org's links")

    def _drop(self, customers: list[str], doing: str) -> list[str]:
        dropped = [link for link in map(self.get, customers) if link is not None]
        with redis_errors(doing), self._redis.pipeline(transaction=True) as pipe:
            for link in dropped:
                _unindex(pipe, link)
                pipe.delete(keys.customer_link(link.customer_id))
                pipe.srem(keys.LINKS_INDEX, link.customer_id)
            pipe.execute()
        return [link.customer_id for link in dropped]

    def customers_of_user(self, user_id: str) -> list[str]:
        with redis_errors("reading a user's links"):
            return sorted(str(c) for c in self._redis.smembers(keys.user_customers(user_id)))

    def customers_of_org(self, org_code: str) -> list[str]:
        with redis_errors("reading an org's links"):
            return sorted(str(c) for c in self._redis.smembers(keys.org_customers(org_code)))

    def payers_of_org(self, org_code: str) -> list[str]:
        with redis_errors("reading an org's payers"):
            return sorted(str(c) for c in self._redis.smembers(keys.org_payers(org_code)))

    def index_payers(self) -> int:
        """Index every org link as its org's payer (idempotent); how many org links there are.

        Run at each worker start: links written by a version without the index (or by an old worker
        during a rolling deploy) are indexed by the next start.
        """
        ids, found = self.all_customer_ids(), 0
        for start in range(0, len(ids), INDEX_CHUNK):
            chunk = ids[start : start + INDEX_CHUNK]
            with redis_errors("indexing org payers"):
                raws = self._redis.mget([keys.customer_link(c) for c in chunk])
            orgs = [link for raw in raws if raw and (link := CustomerLink.from_json(str(raw))).kind == "org"]
            found += self._index(orgs)
        return found

    def _index(self, org_links: list[CustomerLink]) -> int:
        with redis_errors("indexing org payers"), self._redis.pipeline(transaction=False) as pipe:
            for link in org_links:
                pipe.sadd(keys.org_payers(str(link.org_code)), link.customer_id)
            pipe.execute()
        return len(org_links)

    def all_customer_ids(self) -> list[str]:
        with redis_errors("listing customer links"):
            return sorted(str(c) for c in self._redis.smembers(keys.LINKS_INDEX))

    def remove(self, customer_id: str) -> CustomerLink | None:
        """Forget one customer's link (on-call's `customers unlink`); the removed link, or None."""
        old = self.get(customer_id)
        with redis_errors("removing a customer link"), self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(keys.customer_link(customer_id))
            pipe.srem(keys.LINKS_INDEX, customer_id)
            if old:
                _unindex(pipe, old)
            pipe.execute()
        return old


def _unindex(pipe: Any, link: CustomerLink) -> None:
    """Take a link out of its user's and its org's sets (queued on a MULTI pipeline)."""
    if link.user_id:
        pipe.srem(keys.user_customers(link.user_id), link.customer_id)
    if link.org_code:
        pipe.srem(keys.org_customers(link.org_code), link.customer_id)
        pipe.srem(keys.org_payers(link.org_code), link.customer_id)
