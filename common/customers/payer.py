"""Which billing customer pays for an (org, user) in a plan selection, from the customer links alone.

Kinde's `user:plan_selection` context names a user and (usually) an org, not a billing customer.
Candidates: the user's own customers placed at that org (a user link with no org is placed in the B2C
org: KINDE_ORG_CODE, else the tenant's default), and the org's own customers (org links). The one
whose last pass recorded the plan the user is moving from wins; else, with an org named, the org's own
customer (the self-serve portal of an org changes the org's plan), else the user's. Without an org
(`missing organization`), the user's customer at its default placement, or its only customer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from common.customers.links import CustomerLink
from common.guard.decision import Observed


def payer_of(org_code: str | None, user_links: Sequence[CustomerLink], org_payers: Sequence[str],
             plans: Mapping[str, Sequence[str]], current_plan: str | None, b2c_org: str) -> str | None:  # fmt: skip
    own = [link for link in user_links if link.kind == "user"]
    here = b2c_org if org_code is None else org_code  # no org named: the user's default placement
    placed = [link.customer_id for link in own if link.placed_org(lambda: b2c_org) == here]
    if org_code is None and not placed and len(own) == 1:
        placed = [own[0].customer_id]
    candidates = [*org_payers, *placed] if org_code else placed
    paying = [c for c in candidates if current_plan and current_plan in plans.get(c, ())]
    return next(iter(paying or candidates), None)


def members_org(link: CustomerLink, b2c_org: str) -> str | None:
    """The org whose members count for an org customer's `org_members`: the org it pays for.

    None for a personal customer: its team is its one user (`PERSONAL_TEAM`), never the org its roles
    are placed in, which for B2C is the whole default org (every B2C user would be refused)."""
    return (link.placed_org(lambda: b2c_org) or None) if link.kind == "org" else None


PERSONAL_TEAM = Observed(1, "personal")


def personal_team(link: CustomerLink | None) -> Observed | None:
    """A personal customer's `org_members`: its team is its one user, whatever org its roles land in (the one
    rule the API's guard and `rolesync guard check` apply); None for an org customer or an unknown one."""
    return PERSONAL_TEAM if link is not None and link.kind == "user" else None
