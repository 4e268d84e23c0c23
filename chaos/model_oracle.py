"""The model test's oracle: the roles every (org, user) should hold, from a sandbox snapshot alone.

The rule: the managed roles an (org, user) should hold are the union of what every customer
covering it grants, read from Kinde's state; a pass never removes what another covering customer
grants, and a customer that moves takes its roles with it. Unmanaged roles (not named in the plans
file) are exactly what the test gave by hand.

Who covers (org, user), for every existing org and every member user of it:

* the org's own billing customer, if the org has one (B2B: it covers every member);
* each billing customer of the user placed in that org. Placement mirrors the service's
  (worker/customers/resolve.py `user_links`, worker/convergence/converge.py `Converger.members`): the org the billing
  entry names; else the B2C org (`KINDE_ORG_CODE`, else the tenant's default org) when the user is a
  member there; else the user's only org when they have exactly one; else the B2C org again, where
  the user is no member, so the customer covers no (org, user) at all.

A customer grants the plans file's roles of its active plans (agreements without `expires_on`, or
with it in the future). Under `[payment_failed] action = "suspend"` a customer whose payment is
failing grants the policy's `grants` instead, while it has an active plan; Kinde's API has no
payment read, so which customers are failing comes from the caller (the payment webhooks it sent).
Under the default "keep" a failing payment changes nothing.

Pure functions over `GET /_sandbox/state` (sandbox/snapshot.py `dump`): never our Redis, never the
code under test, so a bug there cannot hide in the oracle too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from common.plans.mapping import PlanMap

State = Mapping[str, Any]


@dataclass(frozen=True, order=True)
class Target:
    org_code: str
    user_id: str


@dataclass(frozen=True)
class Covering:
    customer_id: str
    owner: str  # "org <code>" or "user <id>"
    plans: tuple[str, ...]  # active plan codes
    grants: frozenset[str]

    def describe(self) -> str:
        return f"{self.customer_id} ({self.owner}; plans {list(self.plans)} -> {sorted(self.grants)})"


@dataclass(frozen=True)
class Wrong:
    target: Target
    expected: frozenset[str]
    actual: frozenset[str]
    covering: tuple[Covering, ...]

    def describe(self) -> str:
        covers = "; ".join(c.describe() for c in self.covering) or "none"
        return (f"(org {self.target.org_code}, user {self.target.user_id}): expected {sorted(self.expected)}, "
                f"actual {sorted(self.actual)}, covering customers: {covers}")  # fmt: skip


def is_active(agreement: Mapping[str, Any], now: datetime) -> bool:
    expires = agreement.get("expires_on")
    if not expires:
        return True
    when = datetime.fromisoformat(str(expires).replace("Z", "+00:00"))
    return (when if when.tzinfo else when.replace(tzinfo=UTC)) > now


def b2c_org_of(state: State, configured: str | None = None) -> str:
    """`KINDE_ORG_CODE` when set, else the tenant's default org."""
    return configured or next(str(o["code"]) for o in state["orgs"] if o.get("is_default"))


def billing_entries(user: Mapping[str, Any]) -> list[tuple[str, str | None]]:
    """(customer id, org the entry names) per billing customer of the user."""
    listed = user.get("billing")
    if isinstance(listed, list):
        return [(str(e["customer_id"]), e.get("org_code")) for e in listed if e.get("customer_id")]
    return [(str(user["customer_id"]), None)] if user.get("customer_id") else []


def placement(user: Mapping[str, Any], named_org: str | None, b2c_org: str) -> str:
    orgs = [str(code) for code in user.get("org_codes", [])]
    if named_org:
        return named_org
    if b2c_org in orgs:
        return b2c_org
    return orgs[0] if len(orgs) == 1 else b2c_org


def customer_grants(
    state: State, plans: PlanMap, customer_id: str, owner: str, now: datetime, failing: frozenset[str]
) -> Covering:
    codes = sorted({str(a["plan_code"]) for a in state["agreements"] if a["customer_id"] == customer_id
                    and is_active(a, now)})  # fmt: skip
    suspended = bool(codes) and plans.suspends() and customer_id in failing
    grants = frozenset(plans.payment_failed.grants) if suspended else plans.desired_roles(codes)
    return Covering(customer_id, owner, tuple(codes), grants)


def covering(
    state: State, plans: PlanMap, *, now: datetime, b2c_org: str | None = None, failing: Iterable[str] = ()
) -> dict[Target, list[Covering]]:
    """Every existing (org, member user), with the customers covering it (possibly none)."""
    b2c, failed = b2c_org_of(state, b2c_org), frozenset(failing)
    orgs = {str(o["code"]): o for o in state["orgs"]}
    found: dict[Target, list[Covering]] = {}
    for user in state["users"]:
        for code in (str(c) for c in user.get("org_codes", []) if c in orgs):
            org_customer = orgs[code].get("customer_id")
            grants = customer_grants(state, plans, str(org_customer), f"org {code}", now, failed)
            found[Target(code, str(user["id"]))] = [grants] if org_customer else []
        for customer_id, named in billing_entries(user):
            target = Target(placement(user, named, b2c), str(user["id"]))
            if target in found:
                found[target].append(customer_grants(state, plans, customer_id, f"user {user['id']}", now, failed))
    return found


def actual_roles(state: State) -> dict[Target, frozenset[str]]:
    keys = {str(r["id"]): str(r["key"]) for r in state["roles"]}
    return {Target(str(org), str(user)): frozenset(keys[r] for r in held if r in keys)
            for org, user, held in state["assignments"]}  # fmt: skip


def wrong_targets(
    state: State,
    plans: PlanMap,
    hand: Mapping[Target, frozenset[str]],
    *,
    now: datetime,
    b2c_org: str | None = None,
    failing: Iterable[str] = (),
) -> list[Wrong]:
    """Every (org, user) whose roles differ from the covering customers' grants plus the hand-given roles."""
    actual, wrong = actual_roles(state), []
    for target, covers in sorted(covering(state, plans, now=now, b2c_org=b2c_org, failing=failing).items()):
        managed = frozenset().union(*(c.grants for c in covers))
        expected = managed | (hand.get(target, frozenset()) - plans.managed_roles)
        held = actual.get(target, frozenset())
        if held != expected:
            wrong.append(Wrong(target, expected, held, tuple(covers)))
    return wrong


Held = tuple[frozenset[str], frozenset[tuple[str, str]]]  # managed roles, (plan code, customer id) pairs
_VOLATILE = frozenset({"computed_at", "read_at", "entitlements_read_at", "generation", "usage"})


def held_by(covers: Iterable[Covering], plans: PlanMap) -> Held:
    """What the covering customers give an (org, user): their managed roles and their active plans."""
    found = list(covers)
    roles = frozenset().union(*(c.grants for c in found)) & plans.managed_roles
    return roles, frozenset((p, c.customer_id) for c in found for p in c.plans)


def holdings(
    state: State, plans: PlanMap, *, now: datetime, b2c_org: str | None = None, failing: Iterable[str] = ()
) -> dict[Target, Held]:
    """Every (org, member user) that holds something (a managed role or an active plan); the rest hold nothing."""
    found = covering(state, plans, now=now, b2c_org=b2c_org, failing=failing)
    return {target: held for target, covers in found.items() if any(held := held_by(covers, plans))}


def wrong_answers(
    state: State,
    plans: PlanMap,
    answers: Mapping[str, tuple[int, Mapping[str, Any]]],
    *,
    now: datetime,
    b2c_org: str | None = None,
    failing: Iterable[str] = (),
) -> list[str]:
    """Where the read API (`GET /v1/users/{id}/entitlements`, per user of the sandbox: status, body) differs
    from what the covering customers give, each as a sentence.

    A user is known (200) when it has a billing customer or some customer covers it in an org it belongs
    to; else 404. In a 200 answer, each org the user belongs to shows the covering customers' managed
    roles and their active plans, (code, customer) pairs: an org with nothing in force may be left out.
    An org the user does not belong to (left, or deleted) shows no roles and no plans.
    """
    expected = covering(state, plans, now=now, b2c_org=b2c_org, failing=failing)
    wrong: list[str] = []
    for user in state["users"]:
        user_id = str(user["id"])
        status, body = answers[user_id]
        targets = {t.org_code: covers for t, covers in expected.items() if t.user_id == user_id}
        known = bool(billing_entries(user)) or any(targets.values())
        if status != (200 if known else 404):
            wrong.append(f"user {user_id}: the read API answered {status}, expected {200 if known else 404}")
            continue
        shown = {str(o["org_code"]): o for o in body.get("organizations", [])} if status == 200 else {}
        for org_code in sorted({*targets, *shown}):
            want, got = held_by(targets.get(org_code, []), plans), _shown(shown.get(org_code, {}), plans)
            if got != want:
                where = "a member" if org_code in targets else "not a member"
                wrong.append(f"(org {org_code}, user {user_id}) [{where}]: the read API shows {_say(got)}, "
                             f"expected {_say(want)}")  # fmt: skip
    return wrong


def _shown(entry: Mapping[str, Any], plans: PlanMap) -> Held:
    """The managed roles and (plan, customer) pairs an API entry, a table row or a notification shows."""
    roles = frozenset(str(r) for r in entry.get("roles", [])) & plans.managed_roles
    return roles, frozenset((str(p["code"]), str(p["customer_id"])) for p in entry.get("plans", []))


def _say(held: Held) -> str:
    return f"roles {sorted(held[0])} plans {sorted(held[1])}"


def api_entry(answers: Mapping[str, tuple[int, Mapping[str, Any]]], target: Target) -> Mapping[str, Any]:
    """The read API's entry for the (org, user), or {} when it shows none."""
    _, body = answers.get(target.user_id, (404, {}))
    return next((o for o in body.get("organizations", []) if o.get("org_code") == target.org_code), {})


def steady(value: Any) -> Any:
    """A snapshot's public shape without read times, generations and metered usage: what a change changes."""
    if isinstance(value, Mapping):
        return {k: steady(v) for k, v in value.items() if k not in _VOLATILE}
    if isinstance(value, list):
        return [steady(v) for v in value]
    return value


def wrong_rows(
    held: Mapping[Target, Held],
    rows: Mapping[Target, Mapping[str, Any]],
    answers: Mapping[str, tuple[int, Mapping[str, Any]]],
    plans: PlanMap,
) -> list[str]:
    """Where the entitlements table differs: a row for every (org, user) that holds something (`holdings`) and
    for no other, with the roles and plans the covering customers give and the features the read API shows."""
    wrong: list[str] = []
    for target in sorted({*held, *rows}):
        where = f"(org {target.org_code}, user {target.user_id})"
        row, want = rows.get(target), held.get(target)
        if want is None or row is None:
            what = "no row, but it holds " + _say(want) if want else f"a row ({_say(_shown(row or {}, plans))})"
            wrong.append(f"{where}: the table has {what}" + ("" if want else ", but it holds nothing"))
        elif _shown(row, plans) != want:
            wrong.append(f"{where}: the table's row shows {_say(_shown(row, plans))}, expected {_say(want)}")
        elif steady(row["features"]) != steady(api_entry(answers, target).get("features", [])):
            wrong.append(f"{where}: the table's row has other features than the read API")
    return wrong


def wrong_notifications(
    held: Mapping[Target, Held],
    last: Mapping[Target, Mapping[str, Any]],
    answers: Mapping[str, tuple[int, Mapping[str, Any]]],
    plans: PlanMap,
) -> list[str]:
    """Where the last notification per (org, user) differs from what it holds now: for a target that holds
    something, its body is the final snapshot (the roles and plans the covering customers give; the read API's
    entry, times and usage aside); for one notified before that holds nothing now, `removed`."""
    wrong: list[str] = []
    for target in sorted({*held, *last}):
        where = f"(org {target.org_code}, user {target.user_id})"
        data, want = last.get(target), held.get(target)
        if want is None:
            if data is not None and not data.get("removed"):
                wrong.append(f"{where}: the last notification shows {_say(_shown(data, plans))}, not removed, "
                             "but it holds nothing")  # fmt: skip
        elif data is None or data.get("removed"):
            wrong.append(f"{where}: holds {_say(want)}, but the last notification is {'removed' if data else 'none'}")
        elif _shown(data, plans) != want:
            wrong.append(f"{where}: the last notification shows {_say(_shown(data, plans))}, expected {_say(want)}")
        elif steady(data) != steady(api_entry(answers, target)):
            wrong.append(f"{where}: the last notification's body differs from the read API's final snapshot")
    return wrong
