"""plans.toml against the tenant: every role key exists in Kinde, every plan code is in use.

A role key Kinde lacks fails (the worker would dead-letter `role_not_found`); the closest existing
key is suggested. A plan code no current agreement uses is only a warning: it may be a typo, or a
plan nobody has bought yet. Kinde has no customer list, so the customers read are those the
service has linked plus those `GET /users?expand=billing` names, at most `MAX_CUSTOMERS`.
"""

from __future__ import annotations

import difflib
import itertools
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime

import redis

from common.customers.links import RedisLinkStore
from common.errors import PermanentError
from common.plans.mapping import PlanMap
from doctor.report import Result, fail, ok, skip, warn
from doctor.session import Session
from worker.convergence.in_force import active_plan_codes
from worker.kinde.api import HttpxKindeApi

MAX_CUSTOMERS = 50
ROLES_PAGE = "Kinde → Settings → Roles"


def closest(key: str, existing: Iterable[str]) -> str | None:
    matches = difflib.get_close_matches(key, list(existing), n=1, cutoff=0.6)
    return matches[0] if matches else None


def unknown_role_lines(plans: PlanMap, existing: frozenset[str]) -> list[str]:
    lines = []
    for key in sorted(plans.managed_roles - existing):
        guess = closest(key, existing)
        lines.append(f"{key} (did you mean {guess}?)" if guess else key)
    return lines


def check_role_keys(session: Session) -> Result:
    if session.kinde is None or session.plans is None or session.lacks("read:roles"):
        return skip("role keys", "an M2M token with read:roles and a valid plans file")
    existing = frozenset(str(r["key"]) for r in session.kinde.api.roles() if r.get("key"))
    unknown = unknown_role_lines(session.plans, existing)
    if unknown:
        fix = f"correct the key in {session.settings.plans_path}, or create the role with that key in {ROLES_PAGE}"
        return fail("role keys", f"not in Kinde: {'; '.join(unknown)}", fix)
    return ok("role keys", f"all {len(session.plans.managed_roles)} role key(s) in plans.toml exist in Kinde")


def _linked(client: redis.Redis | None) -> list[str]:
    return RedisLinkStore(client).all_customer_ids() if client is not None else []


def _billed_users(api: HttpxKindeApi) -> Iterator[str]:
    try:
        for user in api.list_users(expand_billing=True):
            billing = user.get("billing")
            if isinstance(billing, dict) and billing.get("customer_id"):
                yield str(billing["customer_id"])
    except PermanentError:  # INVALID_EXPAND_VALUES on some tenants (docs/kinde-facts.md, Management API)
        return


def customers(session: Session, api: HttpxKindeApi) -> list[str]:
    seen = dict.fromkeys(itertools.chain(_linked(session.redis), _billed_users(api)))
    return list(itertools.islice(seen, MAX_CUSTOMERS))


def plan_codes_in_use(api: HttpxKindeApi, customer_ids: Iterable[str]) -> set[str]:
    now = datetime.now(UTC)
    return {code for cid in customer_ids for code in active_plan_codes(api.agreements(cid), now)}


def check_plan_codes(session: Session) -> Result:
    needs = ("read:users", "read:billing_agreements")
    if session.kinde is None or session.plans is None or any(map(session.lacks, needs)):
        return skip("plan codes", "an M2M token with read:users, read:billing_agreements and a valid plans file")
    ids = customers(session, session.kinde.api)
    if not ids:
        return ok("plan codes", "no billing customers yet; nothing to compare plans.toml with")
    in_use = plan_codes_in_use(session.kinde.api, ids)
    return plan_codes_verdict(session.plans, in_use, len(ids))


def plan_codes_verdict(plans: PlanMap, in_use: set[str], customers_read: int) -> Result:
    unused = sorted(set(plans.roles_by_plan) - in_use)
    where = f"{customers_read} customer(s) read"
    if not unused:
        return ok("plan codes", f"every plan code in plans.toml has a current agreement ({where})")
    hints = [f"{code} (did you mean {guess}?)" if (guess := closest(code, in_use)) else code for code in unused]
    seen = ", ".join(sorted(in_use)) or "none"
    return warn(
        "plan codes",
        f"no current agreement uses {'; '.join(hints)} ({where}; plan codes in use: {seen})",
        "a typo? plan codes must match the plan keys in Kinde → Billing → Plans",
    )
