"""Where a billing customer's roles land: its link, from Kinde's user or org data or an event's own ids.

Pure functions of what Kinde (or the event) said, shared by resolve (worker/customers/resolve.py) and the index
rebuild (worker/customers/rebuild.py): which customer a user or org bills as, which org its roles go to, and
whether a newly taught link replaces the known one.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import structlog

from common.customers.links import CustomerLink
from common.webhooks.events import org_code_of, user_id_of
from worker.kinde.api import Json

log = structlog.get_logger(__name__)
INVALID_EXPAND = "kinde_INVALID_EXPAND_VALUES"


def billing_entries(entity: Json) -> list[Json]:
    """`billing` as a list: an object on every documented shape, a list where a user has one billing
    customer per org (docs/kinde-facts.md: "one per user per organization")."""
    billing = entity.get("billing")
    entries = billing if isinstance(billing, list) else [billing]
    return [entry for entry in entries if isinstance(entry, dict)]


def customer_id_in(entry: Json) -> str | None:
    """`customer_id` on users, `billing_customer_id` on orgs; tolerate either on both."""
    found = entry.get("customer_id") or entry.get("billing_customer_id")
    return str(found) if found else None


def billing_customer_of(entity: Json) -> str | None:
    return next(filter(None, map(customer_id_in, billing_entries(entity))), None)


def org_codes_of(user: Json) -> list[str]:
    orgs = user.get("organizations") or []
    codes = (o.get("code") if isinstance(o, dict) else o for o in orgs if o)
    return [str(c) for c in codes if c]


def user_links(user: Json, preferred_org: str, source: str) -> list[CustomerLink]:
    """One link per billing customer of the user; an entry naming its org puts the roles there.

    Placement is a function of Kinde's state alone (docs/architecture.md): the org the billing entry
    names; else `preferred_org` (KINDE_ORG_CODE) when the user is a member; else the user's only org;
    else none (the B2C org: KINDE_ORG_CODE or the tenant's default).
    """
    user_id, orgs = user.get("id"), org_codes_of(user)
    if not user_id:
        return []
    fallback = preferred_org if preferred_org in orgs else orgs[0] if len(orgs) == 1 else None
    links = []
    for entry in billing_entries(user):
        customer_id, org = customer_id_in(entry), entry.get("org_code") or entry.get("organization_code")
        if customer_id:
            placed = str(org or fallback or "") or None
            links.append(CustomerLink(customer_id, "user", str(user_id), placed, source, time.time()))
    return links


def org_link(org: Json, source: str) -> CustomerLink | None:
    customer_id, code = billing_customer_of(org), org.get("code")
    if not customer_id or not code:
        return None
    return CustomerLink(customer_id, "org", None, str(code), source, time.time())


def event_link(customer_id: str, claims: dict[str, Any]) -> CustomerLink | None:
    user_id, org_code = user_id_of(claims), org_code_of(claims)
    if user_id:
        return CustomerLink(customer_id, "user", user_id, org_code, "event", time.time())
    if org_code:
        return CustomerLink(customer_id, "org", None, org_code, "event", time.time())
    return None


def merged(known: CustomerLink | None, carried: CustomerLink) -> CustomerLink:
    """The link after an event's own ids: they only fill gaps in what earlier events taught.

    Kinde's billing data (user/org look-ups, a rebuild) and on-call outrank ids an event carries,
    whose fields Kinde does not document: such a link is kept as it is (were an event allowed to fill
    its org, the next look-up would take it back, and the roles would move at every event). An event
    never turns an org link into a user link (nor back), never drops a known org, and replaces a user
    only in a link that an earlier event taught.
    """
    if known is None:
        return carried
    if known.source != "event" or carried.kind != known.kind:
        return known
    if known.kind == "org" or carried.user_id != known.user_id:
        return carried
    org = carried.org_code or known.org_code
    return known if org == known.org_code else replace(known, org_code=org, learned_at=time.time())


def takes_over(known: CustomerLink | None, found: CustomerLink) -> bool:
    """Whether a link Kinde's data taught replaces the known one: whenever its target differs.

    Kinde's billing data is the truth roles are judged by (docs/architecture.md), so it also wins
    over an on-call link, which is for customers Kinde's data does not explain; that case is logged,
    so on-call sees the correction undone and can fix the billing data in Kinde instead.
    """
    if same_target(known, found):
        return False
    if known is not None and known.source == "on_call" and found.source != "on_call":
        log.warning("on_call_link_replaced", customer_id=found.customer_id, found_source=found.source,
                    found_user_id=found.user_id, found_org_code=found.org_code)  # fmt: skip
    return True


def same_target(known: CustomerLink | None, found: CustomerLink) -> bool:
    return known is not None and (known.kind, known.user_id, known.org_code) == (
        found.kind,
        found.user_id,
        found.org_code,
    )
