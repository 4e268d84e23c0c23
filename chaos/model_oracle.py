"""The model test's oracle: the roles every (org, user) should hold, from a sandbox snapshot alone.

The rule: the managed roles an (org, user) should hold are the union of what every customer
covering it grants, read from Kinde's state, and what every hand grant covering it gives (a grant
listed by the grants store, `rolesync grants add`, active at the check's time: no `until`, or one
still to come); a pass never removes what another covering party gives, and a customer that moves
takes its roles with it. Unmanaged roles (not named in the plans file) are exactly what the test
gave by hand in Kinde.

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

A hand grant covers (its org, or the B2C org when it names none; its user) while the user is a member
there, and gives its managed roles. The grants come from the grants store's listing (what on-call
asked for: the input, like the sandbox's state), never from a snapshot or a pass.

Pure functions over `GET /_sandbox/state` (sandbox/snapshot.py `dump`) and the grants listed: never the
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


@dataclass(frozen=True)
class GrantGiven:
    """A hand grant as the grants store lists it (common/entitlements/manual_grants.py `HandGrant.to_dict`)."""

    grant_id: str
    user_id: str
    org_code: str  # "" = the B2C org
    roles: tuple[str, ...]
    reason: str
    until: float | None

    @classmethod
    def of(cls, listed: Mapping[str, Any]) -> GrantGiven:
        until = listed.get("until")
        return cls(str(listed["grant_id"]), str(listed["user_id"]), str(listed.get("org_code") or ""),
                   tuple(str(r) for r in listed.get("roles") or []), str(listed.get("reason") or ""),
                   float(until) if until is not None else None)  # fmt: skip

    def covers(self, target: Target, b2c_org: str, now: datetime) -> bool:
        active = self.until is None or self.until > now.timestamp()
        return active and self.user_id == target.user_id and (self.org_code or b2c_org) == target.org_code


Grants = tuple[GrantGiven, ...]
GrantShown = tuple[str, str, tuple[str, ...]]  # (grant id, reason, managed roles it gives)


def by_hand(grants: Iterable[GrantGiven], target: Target, b2c_org: str, now: datetime) -> list[GrantGiven]:
    """The hand grants covering the target at `now`."""
    return [g for g in grants if g.covers(target, b2c_org, now)]


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
    grants: Grants = (),
) -> list[Wrong]:
    """Every (org, user) whose roles differ from the covering customers' grants and the hand grants' managed roles,
    plus the unmanaged roles given by hand in Kinde (`hand`)."""
    actual, wrong, b2c = actual_roles(state), [], b2c_org_of(state, b2c_org)
    for target, covers in sorted(covering(state, plans, now=now, b2c_org=b2c_org, failing=failing).items()):
        managed = frozenset().union(*(c.grants for c in covers), *(g.roles for g in by_hand(grants, target, b2c, now)))
        expected = (managed & plans.managed_roles) | (hand.get(target, frozenset()) - plans.managed_roles)
        held = actual.get(target, frozenset())
        if held != expected:
            wrong.append(Wrong(target, expected, held, tuple(covers)))
    return wrong


# managed roles, (plan code, customer id) pairs, the hand grants covering it (GrantShown)
Held = tuple[frozenset[str], frozenset[tuple[str, str]], frozenset[GrantShown]]
_VOLATILE = frozenset({"computed_at", "read_at", "entitlements_read_at", "generation", "usage"})


def held_by(covers: Iterable[Covering], plans: PlanMap, hands: Iterable[GrantGiven] = ()) -> Held:
    """What the covering customers and hand grants give an (org, user): their managed roles, the customers' active
    plans, and each grant as the snapshot names it (`granted_by: {"grant": id, "reason": …}`, its roles)."""
    found, given = list(covers), [(g.grant_id, g.reason, tuple(sorted(set(g.roles) & plans.managed_roles)))
                                  for g in hands]  # fmt: skip
    roles = frozenset().union(*(c.grants for c in found), *(r for _, _, r in given)) & plans.managed_roles
    return roles, frozenset((p, c.customer_id) for c in found for p in c.plans), frozenset(given)


def holdings(
    state: State,
    plans: PlanMap,
    *,
    now: datetime,
    b2c_org: str | None = None,
    failing: Iterable[str] = (),
    grants: Grants = (),
) -> dict[Target, Held]:
    """Every (org, member user) that holds something (a managed role or an active plan); the rest hold nothing."""
    found, b2c = covering(state, plans, now=now, b2c_org=b2c_org, failing=failing), b2c_org_of(state, b2c_org)
    return {target: held for target, covers in found.items()
            if any(held := held_by(covers, plans, by_hand(grants, target, b2c, now)))}  # fmt: skip


def wrong_answers(
    state: State,
    plans: PlanMap,
    answers: Mapping[str, tuple[int, Mapping[str, Any]]],
    *,
    now: datetime,
    b2c_org: str | None = None,
    failing: Iterable[str] = (),
    grants: Grants = (),
    granted_before: Iterable[str] = (),
) -> list[str]:
    """Where the read API (`GET /v1/users/{id}/entitlements`, per user of the sandbox: status, body) differs
    from what the covering customers and hand grants give, each as a sentence.

    A user is known (200) when it has a billing customer, some customer covers it in an org it belongs
    to, or an active hand grant does; else 404, except for a user a hand grant named earlier in the
    sequence (`granted_before`): the grant's pass left a snapshot holding nothing, so 200 or 404. In a 200
    answer, each org the user belongs to shows the covering customers' managed roles and active plans,
    (code, customer) pairs, and the hand grants covering it: an org with nothing in force may be left out.
    An org the user does not belong to (left, or deleted) shows no roles, no plans and no grants.
    """
    expected, b2c = covering(state, plans, now=now, b2c_org=b2c_org, failing=failing), b2c_org_of(state, b2c_org)
    wrong: list[str] = []
    for user in state["users"]:
        user_id = str(user["id"])
        status, body = answers[user_id]
        targets = {t.org_code: covers for t, covers in expected.items() if t.user_id == user_id}
        hands = {org: by_hand(grants, Target(org, user_id), b2c, now) for org in targets}
        known = bool(billing_entries(user)) or any(targets.values()) or any(hands.values())
        allowed = {200, 404} if not known and user_id in set(granted_before) else {200 if known else 404}
        if status not in allowed:
            wrong.append(f"user {user_id}: the read API answered {status}, expected {200 if known else 404}")
            continue
        shown = {str(o["org_code"]): o for o in body.get("organizations", [])} if status == 200 else {}
        for org_code in sorted({*targets, *shown}):
            want = held_by(targets.get(org_code, []), plans, hands.get(org_code, []))
            got = _shown(shown.get(org_code, {}), plans)
            if got != want:
                where = "a member" if org_code in targets else "not a member"
                wrong.append(f"(org {org_code}, user {user_id}) [{where}]: the read API shows {_say(got)}, "
                             f"expected {_say(want)}")  # fmt: skip
    return wrong


def _shown(entry: Mapping[str, Any], plans: PlanMap) -> Held:
    """The managed roles, (plan, customer) pairs and hand grants an API entry, a table row or a notification shows."""
    roles = frozenset(str(r) for r in entry.get("roles", [])) & plans.managed_roles
    hands = frozenset(_grant_shown(g) for g in entry.get("hand_grants", []))
    if "granted_by" in entry and _per_role(entry["granted_by"]) != {(g, r, role) for g, r, gives in hands
                                                                    for role in gives}:  # fmt: skip
        hands |= {("(its granted_by per role names other grants)", "", ())}
    return roles, frozenset((str(p["code"]), str(p["customer_id"])) for p in entry.get("plans", [])), hands


def _grant_shown(entry: Mapping[str, Any]) -> GrantShown:
    given = entry["granted_by"]
    return str(given["grant"]), str(given["reason"]), tuple(sorted(str(r) for r in entry.get("roles", [])))


def _per_role(granted_by: Mapping[str, Any]) -> set[tuple[str, str, str]]:
    """(grant id, reason, role) for each role a hand grant gives in a snapshot's `granted_by` by role."""
    return {(str(g["grant"]), str(g.get("reason", "")), str(role)) for role, givers in granted_by.items()
            for g in givers if "grant" in g}  # fmt: skip


def _say(held: Held) -> str:
    hands = f" hand grants {sorted((g, r, list(roles)) for g, r, roles in held[2])}" if held[2] else ""
    return f"roles {sorted(held[0])} plans {sorted(held[1])}{hands}"


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
