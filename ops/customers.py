"""Customer links for on-call: link a billing customer to a user or org by hand, show, unlink.

Linking goes through the worker's own `link_customer` (worker/customers/park.py), so events parked as
`customer_unresolved` for that customer are re-enqueued at once, exactly as when the worker learns
a link itself.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from common.customers.history import CAP
from common.customers.links import CustomerLink
from common.errors import PermanentError
from common.guard import selection_log
from common.infra.deadletters import UNRESOLVED, DeadLetter
from ops.stores import Stores
from worker.customers.park import Enqueue, Parking, link_customer
from worker.kinde.api import Json, KindeApi

USER_PREFIX = "kp_"


class UnknownCustomerError(PermanentError):
    reason = "unknown_customer"


class BadIdError(PermanentError):
    reason = "bad_id"


def check_id(name: str, value: str | None) -> None:
    if value is not None and (not value.strip() or any(c.isspace() for c in value)):
        raise BadIdError(f"{name} {value!r} is empty or holds spaces")


def check_ids(customer_id: str, user_id: str | None, org_code: str | None) -> None:
    for name, value in (("customer id", customer_id), ("user id", user_id), ("org code", org_code)):
        check_id(name, value)
    if user_id is not None and not user_id.startswith(USER_PREFIX):
        raise BadIdError(f"user id {user_id!r} is not a Kinde user id (they start with {USER_PREFIX})")
    if user_id is None and org_code is None:
        raise BadIdError("give a USER_ID (B2C) or --org ORG (B2B)")


@dataclass(frozen=True)
class LinkChange:
    old: CustomerLink | None
    new: CustomerLink
    replayed: int


def link(
    stores: Stores,
    enqueue: Enqueue,
    converge: Callable[[str, str], None],
    customer_id: str,
    user_id: str | None,
    org_code: str | None,
) -> LinkChange:
    """Store the link, replay the customer's parked events, and queue one pass of the customer.

    The pass takes the customer's roles from where its old link put them (unless another customer
    covering that place grants them too) and gives them where the new link puts them.
    """
    check_ids(customer_id, user_id, org_code)
    old = stores.links.get(customer_id)
    parking = Parking(stores.links, stores.dead_letters, enqueue, grants=stores.grants)
    replayed = link_customer(parking, customer_id, user_id=user_id, org_code=org_code)
    converge(customer_id, "linked_by_hand")
    new = stores.links.get(customer_id)
    assert new is not None  # just written
    return LinkChange(old, new, replayed)


class NotInKindeError(PermanentError):
    reason = "not_in_kinde"


@dataclass(frozen=True)
class LinkPreview:
    """What `customers link` would do, read before it asks: who Kinde says the target is, and what moves."""

    customer_id: str
    old: CustomerLink | None
    target: str  # "user kp_1 (Ada Lovelace) in org org_1", as Kinde names it
    roles: list[str]  # the roles the customer's plans grant now: they move with the link
    parked: int  # events parked for want of this link: replayed at once

    def lines(self) -> list[str]:
        roles = ", ".join(self.roles) or "no roles yet"
        was = describe(self.old)
        found = [f"Customer {self.customer_id} is linked to {was}." if self.old else
                 f"Customer {self.customer_id} has no link yet."]  # fmt: skip
        if self.old is not None:
            found.append(f"Its roles ({roles}) leave {was} (unless another paying customer covers it) "
                         f"and arrive at {self.target}.")  # fmt: skip
        else:
            found.append(f"Its roles ({roles}) arrive at {self.target}.")
        found.append(f"{self.parked} parked event(s) for it are replayed.")
        return found


def preview_link(
    stores: Stores, kinde: KindeApi, customer_id: str, user_id: str | None, org_code: str | None
) -> LinkPreview:
    """Look the user or org up in Kinde (it must exist, the user in the org named) and say what would move."""
    check_ids(customer_id, user_id, org_code)
    target = _kinde_user(kinde, user_id, org_code) if user_id else _kinde_org(kinde, str(org_code))
    state = stores.states.get(customer_id)
    parked = sum(r.reason == UNRESOLVED for r in stores.dead_letters.of_customer(customer_id))
    roles = list(json.loads(state.get("desired_roles") or "[]"))
    return LinkPreview(customer_id, stores.links.get(customer_id), target, roles, parked)


def _kinde_user(kinde: KindeApi, user_id: str, org_code: str | None) -> str:
    user = _found(lambda: kinde.get_user(user_id), f"user {user_id}")
    orgs = [str(o) for o in user.get("organizations") or []]
    if org_code and org_code not in orgs:
        raise NotInKindeError(f"Kinde's user {user_id} is not a member of org {org_code} (theirs: {', '.join(orgs)})")
    name = " ".join(str(user.get(k) or "") for k in ("first_name", "last_name")).strip()
    where = f"org {org_code}" if org_code else "the B2C org"
    return f"user {user_id}{f' ({name})' if name else ''} in {where}"


def _kinde_org(kinde: KindeApi, org_code: str) -> str:
    org = _found(lambda: kinde.get_organization(org_code), f"org {org_code}")
    name = str(org.get("name") or "")
    return f"org {org_code}{f' ({name})' if name else ''} (B2B: every member)"


def _found(read: Callable[[], Json], what: str) -> Json:
    try:
        return read()
    except PermanentError as exc:
        if exc.reason.endswith("NOT_FOUND"):
            raise NotInKindeError(f"Kinde has no {what} ({exc.reason.removeprefix('kinde_')}): check the id") from None
        raise


def describe(link: CustomerLink | None) -> str:
    if link is None:
        return "nothing"
    if link.kind == "org":
        return f"org {link.org_code} (B2B)"
    return f"user {link.user_id} in " + (f"org {link.org_code}" if link.org_code else "the B2C org")


def mark_paid(stores: Stores, converge: Callable[[str, str], None], customer_id: str, now: float) -> None:
    """A `payment_succeeded` Kinde sent but we never got: record "ok" as of now and re-converge the customer."""
    check_id("customer id", customer_id)
    if stores.links.get(customer_id) is None:
        raise UnknownCustomerError(f"no link known for customer {customer_id}: link it first (rolesync customers link)")
    stores.payments.record(customer_id, "ok", now)
    converge(customer_id, "payment_marked_paid")


def unlink(stores: Stores, customer_id: str) -> CustomerLink:
    removed = stores.links.remove(customer_id)
    if removed is None:
        raise UnknownCustomerError(f"customer {customer_id} has no link (see: rolesync customers show {customer_id})")
    return removed


@dataclass(frozen=True)
class CustomerView:
    customer_id: str
    link: CustomerLink | None
    state: dict[str, str]
    dead_letters: list[DeadLetter]
    payment: dict[str, Any] | None = None  # {"standing": ok|failing, "at": event time}, from payment webhooks

    @property
    def parked(self) -> int:
        return sum(r.reason == UNRESOLVED for r in self.dead_letters)

    @property
    def desired_roles(self) -> list[str]:
        return list(json.loads(self.state.get("desired_roles") or "[]"))

    def as_dict(self) -> dict[str, Any]:
        return {
            "customer_id": self.customer_id,
            "link": json.loads(self.link.to_json()) if self.link else None,
            "last_converged_at": _float(self.state.get("converged_at")),
            "desired_roles": self.desired_roles,
            "last_error": self.state.get("last_error") or None,
            "last_error_reason": self.state.get("last_error_reason") or None,
            "last_failed_at": _float(self.state.get("failed_at")),
            "parked_events": self.parked,
            "dead_letters": [r.id for r in self.dead_letters],
            "payment": self.payment,
        }


def show(stores: Stores, customer_id: str) -> CustomerView:
    view = CustomerView(
        customer_id,
        stores.links.get(customer_id),
        stores.states.get(customer_id),
        stores.dead_letters.of_customer(customer_id),
        stores.payments.standing(customer_id),
    )
    if view.link is None and not view.state and not view.dead_letters:
        raise UnknownCustomerError(f"nothing is known about customer {customer_id}: no link, no pass, no dead letter")
    return view


def timeline(stores: Stores, customer_id: str, limit: int = CAP) -> list[dict[str, Any]]:
    """The customer's timeline and its plan-selection decisions (kept apart), merged, newest first."""
    entries = stores.history.recent(customer_id, limit)
    return selection_log.merged(entries, selection_log.recent(stores.redis, customer_id, limit), limit=limit)


def _float(raw: str | None) -> float | None:
    return float(raw) if raw else None
