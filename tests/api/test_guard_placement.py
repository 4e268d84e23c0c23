"""Where a link's roles land is one rule (common/customers/links.py `placed_org`); api/guard_store.py's Lua,
which reads the links inside Redis in the decision's one round trip, is its one Lua copy: held to it here.

Real Redis; each org a link could land in holds a different member count, so the count the Lua read names
the org it placed the link in.
"""

from __future__ import annotations

import asyncio

import pytest
import redis
import redis.asyncio

from api.guard_store import RedisGuardStore
from common import keys
from common.customers.links import CustomerLink
from common.customers.payer import members_org, payer_of

MEMBERS = {"org_x": 1, "org_b2c": 2, "org_cached": 3}
CASES = [  # (the link's org_code, the B2C org the API was given, the tenant default the worker cached)
    (None, "org_b2c", "org_cached"),
    ("", "org_b2c", "org_cached"),
    ("org_x", "org_b2c", "org_cached"),
    (None, "", "org_cached"),
    ("", "", "org_cached"),
    (None, "", ""),
]


@pytest.mark.parametrize(
    ("link_org", "given", "cached"), CASES, ids=[f"{o!r}-{g or '-'}-{c or '-'}" for o, g, c in CASES]
)
@pytest.mark.parametrize("kind", ["user", "org"])
def test_the_lua_counts_the_members_of_the_org_the_python_rule_places_the_link_in(
    redis_url: str, kind: str, link_org: str | None, given: str, cached: str
) -> None:
    link = CustomerLink("cus_1", "org" if kind == "org" else "user", "kp_1", link_org, "event", 1.0)
    client = redis.Redis.from_url(redis_url)
    client.set(keys.customer_link("cus_1"), link.to_json())
    client.sadd(keys.user_customers("kp_1"), "cus_1")
    if cached:
        client.set(keys.KINDE_DEFAULT_ORG, cached)
    for org, count in MEMBERS.items():
        client.sadd(keys.org_members(org), *[f"kp_{i}" for i in range(count)])
        client.set(keys.org_members_read(org), "5.0")
    client.close()

    async def placement() -> tuple[str, int | None]:
        aio = redis.asyncio.Redis.from_url(redis_url, decode_responses=True)  # as api/app.py builds it
        try:
            placed = await RedisGuardStore(aio).placement("kp_1", None, given, True)
        finally:
            await aio.aclose()
        found = placed.candidates["cus_1"].members
        return placed.b2c_org, found.count if found is not None else None

    b2c, counted = asyncio.run(placement())
    org = link.placed_org(lambda: b2c)
    assert counted == (MEMBERS[org] if org else None)
    if kind == "org":
        assert members_org(link, b2c) == (org or None)
    else:  # the payer of a selection in that org (or naming none, in the B2C org) is this user's customer
        assert payer_of(org or None, [link], [], {}, None, b2c) == ("cus_1" if org or not b2c else None)
