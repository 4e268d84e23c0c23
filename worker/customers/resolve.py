"""Find who a billing customer is, and remember every answer as a customer link.

In order: ids the event itself carries (`user_id`, `org_code`, every variant in common/webhooks/events.py);
a link learned earlier (user/org look-ups on `user.created`, `user.updated`,
`organization.created`, or on-call); then an index rebuild that pages Kinde's users and orgs
(worker/customers/rebuild.py: its own actor, resumable, coalesced), while the event waits parked. Where each
answer places a customer is worker/customers/placement.py's, which the rebuild shares.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog

from common.customers.links import CustomerLink, LinkStore
from common.errors import PermanentError
from worker.customers.park import Parking
from worker.customers.placement import event_link, merged, org_codes_of, org_link, same_target, takes_over, user_links
from worker.kinde.answers import GONE_USER
from worker.kinde.api import KindeApi

if TYPE_CHECKING:
    from worker.customers.rebuild import Rebuilds

log = structlog.get_logger(__name__)


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
