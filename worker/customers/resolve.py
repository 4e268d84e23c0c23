"""Find who a billing customer is, and remember every answer as a customer link.

In order: ids the event itself carries (`user_id`, `org_code`, every variant in common/webhooks/events.py);
a link learned earlier (user/org look-ups on `user.created`, `user.updated`,
`organization.created`, or on-call); then an index rebuild that pages Kinde's users and orgs
(worker/customers/rebuild.py: its own actor, resumable, coalesced), while the event waits parked.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import structlog

from common.customers.links import CustomerLink, LinkStore
from common.errors import PermanentError
from common.webhooks.events import org_code_of, user_id_of
from worker.customers.park import Parking
from worker.kinde.api import Json, KindeApi

if TYPE_CHECKING:  # worker/customers/rebuild.py builds its links with this module's functions
    from worker.customers.rebuild import Rebuilds

log = structlog.get_logger(__name__)
INVALID_EXPAND = "kinde_INVALID_EXPAND_VALUES"
GONE_USER = frozenset({"kinde_USER_NOT_FOUND", "kinde_HTTP_404"})


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


@dataclass(frozen=True)
class Learned:
    """What a user or org look-up taught: the customers' links, and for a user, the orgs it is a member of."""

    links: list[CustomerLink]
    user_id: str | None = None
    org_codes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Resolver:
    kinde: KindeApi
    links: LinkStore
    parking: Parking
    org_code: str  # KINDE_ORG_CODE: preferred when a user belongs to several orgs
    rebuilds: Rebuilds

    def resolve(self, customer_id: str, claims: dict[str, Any]) -> CustomerLink | None:
        known, carried = self.links.get(customer_id), event_link(customer_id, claims)
        if carried is None:
            return known
        if carried.user_id and (known is None or known.source == "event"):
            looked = self._looked_up(customer_id, carried.user_id)
            if looked is not None:
                return looked
        link = merged(known, carried)
        if not same_target(known, link):
            self.parking.learned(link)
        return link

    def _looked_up(self, customer_id: str, user_id: str) -> CustomerLink | None:
        """The link Kinde's own data gives the customer, when the event names its user: placement
        follows Kinde's state (docs/architecture.md), not the event's ids. One GET /user, once per
        customer: a looked-up link is never asked again. None if Kinde does not list the customer there."""
        try:
            learned = self.learn_user(user_id)
        except PermanentError as exc:
            if exc.reason not in GONE_USER:
                raise
            return None
        return next((link for link in learned.links if link.customer_id == customer_id), None)

    def request_rebuild(self, meta: dict[str, Any]) -> bool:
        """An event's customer is unknown: make sure an index rebuild that started after it arrived runs."""
        received = meta.get("received_at")
        return self.rebuilds.request(float(received) if isinstance(received, int | float) else time.time())

    def learn_user(self, user_id: str) -> Learned:
        user = self.kinde.get_user(user_id)
        links = self._learn(list(user_links(user, self.org_code, "user_lookup")))
        return Learned(links, user_id, tuple(org_codes_of(user)))

    def learn_org(self, org_code: str) -> Learned:
        link = org_link(self.kinde.get_organization(org_code), "org_lookup")
        return Learned(self._learn([link] if link else []))

    def drop_user(self, user_id: str) -> list[str]:
        return self.links.drop_user(user_id)

    def drop_org(self, org_code: str) -> list[str]:
        return self.links.drop_org(org_code)

    def discover(self) -> list[CustomerLink]:
        """Every link an index rebuild would learn, learning nothing (`rolesync reconcile --dry-run`)."""
        return self.rebuilds.discover()

    def _learn(self, found: list[CustomerLink | None]) -> list[CustomerLink]:
        """Store what changed; the links in force afterwards (an on-call link stays)."""
        learned = []
        for link in (link for link in found if link is not None):
            known = self.links.get(link.customer_id)
            if takes_over(known, link):
                self.parking.learned(link)
                learned.append(link)
            else:
                learned.append(known or link)
        return learned
