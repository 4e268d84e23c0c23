"""In-memory fakes that record state: the stores and Kinde itself (for pure-logic tests only)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from common.customers.links import CustomerLink
from common.entitlements.manual_grants import Due, HandGrant
from common.errors import ForbiddenError, PermanentError, RetryableError
from common.infra.deadletters import DeadLetter, matches
from worker.kinde.api import EntitlementRows, Page


class FakeLinkStore:
    def __init__(self) -> None:
        self.links: dict[str, CustomerLink] = {}

    def get(self, customer_id: str) -> CustomerLink | None:
        return self.links.get(customer_id)

    def put(self, link: CustomerLink) -> None:
        self.links[link.customer_id] = link

    def drop_user(self, user_id: str) -> list[str]:
        return self._drop(self.customers_of_user(user_id))

    def drop_org(self, org_code: str) -> list[str]:
        return self._drop(sorted(c for c, link in self.links.items() if link.org_code == org_code))

    def _drop(self, customers: list[str]) -> list[str]:
        for customer_id in customers:
            del self.links[customer_id]
        return customers

    def customers_of_user(self, user_id: str) -> list[str]:
        return sorted(c for c, link in self.links.items() if link.user_id == user_id)

    def customers_of_org(self, org_code: str) -> list[str]:
        return sorted(c for c, link in self.links.items() if link.org_code == org_code)

    def payers_of_org(self, org_code: str) -> list[str]:
        return sorted(c for c, link in self.links.items() if link.kind == "org" and link.org_code == org_code)

    def all_customer_ids(self) -> list[str]:
        return sorted(self.links)


class FakePaymentStore:
    def __init__(self) -> None:
        self.records: dict[str, dict[str, Any]] = {}

    def record(self, customer_id: str, standing: str, at: float, event_id: str = "") -> bool:
        old = self.records.get(customer_id) or {}
        mine = bool(event_id) and old.get("flipped_by") == event_id
        if old and (at < old["at"] or (at == old["at"] and standing == "failing")):
            return mine
        flipped = (old.get("standing") == "failing") != (standing == "failing")
        by = event_id if flipped else old.get("flipped_by")
        self.records[customer_id] = {"standing": standing, "at": at, "flipped_by": by}
        return flipped or mine

    def standing(self, customer_id: str) -> dict[str, Any] | None:
        found = self.records.get(customer_id)
        return {"standing": found["standing"], "at": found["at"]} if found else None


class FakeDeadLetterStore:
    def __init__(self) -> None:
        self.records: dict[str, DeadLetter] = {}
        self.replayed: dict[str, DeadLetter] = {}  # no expiry: a test's lifetime is far below REPLAYED_TTL_S

    def put(self, record: DeadLetter) -> DeadLetter:
        merged = record.merged_into(self.records.get(record.id) or self.replayed.pop(record.id, None)).new_version()
        self.records[record.id] = merged
        return merged

    def get(self, record_id: str) -> DeadLetter | None:
        return self.records.get(record_id)

    def list(self, *, reason: str | None = None, customer_id: str | None = None, limit: int = 100) -> list[DeadLetter]:
        newest = sorted(self.records.values(), key=lambda r: (r.last_failed_at, r.id), reverse=True)
        return [r for r in newest if matches(r, reason, customer_id)][:limit]

    def remove(self, record_id: str) -> bool:
        self.replayed.pop(record_id, None)
        return self.records.pop(record_id, None) is not None

    def remove_if_current(self, record: DeadLetter) -> bool:
        stored = self.records.get(record.id)
        return stored is not None and stored.version == record.version and self.remove(record.id)

    def remove_replayed(self, record: DeadLetter) -> bool:
        stored = self.records.get(record.id)
        if not self.remove_if_current(record):
            return False
        assert stored is not None
        self.replayed[record.id] = stored
        return True

    def of_customer(self, customer_id: str) -> list[DeadLetter]:
        return sorted((r for r in self.records.values() if r.customer_id == customer_id), key=lambda r: r.id)

    def count_by_reason(self) -> dict[str, int]:
        return dict(Counter(r.reason for r in self.records.values()))


@dataclass
class FakeKinde:
    """A tiny Kinde tenant: users, orgs, agreements and org roles; records every call it serves."""

    roles_by_key: dict[str, str] = field(
        default_factory=lambda: {"role_subscriber": "r-sub", "role_client": "r-cli", "role_admin": "r-adm"}
    )
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    orgs: dict[str, dict[str, Any]] = field(default_factory=dict)
    members: dict[str, list[str]] = field(default_factory=dict)
    agreements_of: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    held: dict[tuple[str, str], set[str]] = field(default_factory=dict)  # (org, user) -> role ids
    calls: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    features_by_plan: dict[str, dict[str, int]] = field(default_factory=dict)  # plan -> feature -> limit max
    fail_next: int = 0  # the next N reads of a user's roles fail as a Kinde 503 would (mid-pass)
    entitlements_refused: bool = False  # the entitlements read answers 403 (no read:billing_entitlements)
    plans_expanded: bool = True  # False: the entitlements answer carries no `plans` (expand=plans ignored)
    deleted_orgs: set[str] = field(default_factory=set)  # listing their members answers ORGANIZATION_NOT_FOUND
    page_size: int = 100

    # --- test set-up ---
    def add_user(self, user_id: str, customer_id: str | None, org: str = "org_default") -> None:
        billing = {"customer_id": customer_id} if customer_id else {}
        self.users[user_id] = {"id": user_id, "organizations": [org], "billing": billing}
        self.members.setdefault(org, []).append(user_id)

    def set_plan(self, customer_id: str, plan_code: str | None) -> None:
        with self.lock:
            for agreement in self.agreements_of.get(customer_id, []):
                agreement["expires_on"] = agreement["expires_on"] or "2000-01-01T00:00:00Z"
            if plan_code:
                self.agreements_of.setdefault(customer_id, []).append(
                    {"id": f"agreement_{len(self.calls)}_{plan_code}", "plan_code": plan_code, "expires_on": None}
                )

    def role_keys(self, org: str, user_id: str) -> list[str]:
        names = {v: k for k, v in self.roles_by_key.items()}
        return sorted(names[r] for r in self.held.get((org, user_id), set()))

    def writes(self) -> list[str]:
        return [c for c in self.calls if c.startswith(("POST", "DELETE"))]

    # --- the KindeApi port ---
    def _record(self, call: str) -> None:
        with self.lock:
            self.calls.append(call)

    def get_user(self, user_id: str) -> dict[str, Any]:
        self._record(f"GET /user {user_id}")
        if user_id not in self.users:
            raise PermanentError("Kinde answered 404 USER_NOT_FOUND", reason="kinde_USER_NOT_FOUND")
        return dict(self.users[user_id])

    def list_users(self, *, expand_billing: bool) -> Iterator[dict[str, Any]]:
        self._record("GET /users")
        yield from (dict(u) if expand_billing else {"id": u["id"]} for u in list(self.users.values()))

    def users_page(self, *, expand_billing: bool, next_token: str | None) -> Page:
        self._record(f"GET /users page {next_token or 0}")
        rows = [dict(u) if expand_billing else {"id": u["id"]} for u in list(self.users.values())]
        return self._page(rows, next_token)

    def organizations_page(self, *, expand_billing: bool, next_token: str | None) -> Page:
        self._record(f"GET /organizations page {next_token or 0}")
        return self._page([{"code": code, "is_default": code == "org_default"} for code in list(self.orgs)], next_token)

    def _page(self, rows: list[dict[str, Any]], next_token: str | None) -> Page:
        start = int(next_token or 0)
        end = start + self.page_size
        return Page(rows[start:end], str(end) if end < len(rows) else None)

    def get_organization(self, org_code: str) -> dict[str, Any]:
        self._record(f"GET /organization {org_code}")
        return dict(self.orgs[org_code])

    def list_organizations(self, *, expand_billing: bool) -> Iterator[dict[str, Any]]:
        self._record("GET /organizations")
        yield from ({"code": code, "is_default": code == "org_default"} for code in list(self.orgs))

    def org_members(self, org_code: str) -> Iterator[dict[str, Any]]:
        self._record(f"GET /organizations/{org_code}/users")
        if org_code in self.deleted_orgs:
            raise PermanentError("Kinde answered 404 ORGANIZATION_NOT_FOUND", reason="kinde_ORGANIZATION_NOT_FOUND")
        for user_id in list(self.members.get(org_code, [])):
            yield {"id": user_id, "roles": self.role_keys(org_code, user_id)}

    def agreements(self, customer_id: str) -> list[dict[str, Any]]:
        self._record(f"GET /billing/agreements {customer_id}")
        with self.lock:
            return [dict(a) for a in self.agreements_of.get(customer_id, [])]

    def entitlements(self, customer_id: str) -> EntitlementRows:
        self._record(f"GET /billing/entitlements {customer_id}")
        if self.entitlements_refused:
            scope = "read:billing_entitlements"
            raise ForbiddenError("Kinde refused", endpoint="GET /billing/entitlements", scope=scope)
        with self.lock:
            active = [a for a in self.agreements_of.get(customer_id, []) if not a["expires_on"]]
        rows = [{"id": f"entitlement_{a['id']}_{f}", "feature_code": f, "feature_name": f.title(),
                 "entitlement_limit_max": limit, "entitlement_limit_min": None}
                for a in active for f, limit in self.features_by_plan.get(a["plan_code"], {}).items()]  # fmt: skip
        plans = [{"code": a["plan_code"], "subscribed_on": f"2026-01-01T00:00:{n:02d}Z"} for n, a in enumerate(active)]
        return EntitlementRows(rows, plans if self.plans_expanded else [], plans_listed=self.plans_expanded)

    def roles(self) -> list[dict[str, Any]]:
        self._record("GET /roles")
        return [{"id": v, "key": k} for k, v in self.roles_by_key.items()]

    def user_roles(self, org_code: str, user_id: str) -> list[dict[str, Any]]:
        self._record(f"GET roles {org_code}/{user_id}")
        if self.fail_next > 0:
            self.fail_next -= 1
            raise RetryableError("Kinde answered 503", reason="kinde_unavailable")
        names = {v: k for k, v in self.roles_by_key.items()}
        with self.lock:
            return [{"id": r, "key": names[r]} for r in sorted(self.held.get((org_code, user_id), set()))]

    def add_role(self, org_code: str, user_id: str, role_id: str) -> None:
        self._record(f"POST {org_code}/{user_id} {role_id}")
        if role_id not in self.roles_by_key.values():
            raise PermanentError("no such role", reason="kinde_ROLE_NOT_FOUND")
        with self.lock:
            self.held.setdefault((org_code, user_id), set()).add(role_id)

    def remove_role(self, org_code: str, user_id: str, role_id: str) -> bool:
        self._record(f"DELETE {org_code}/{user_id} {role_id}")
        with self.lock:
            held = self.held.get((org_code, user_id), set())
            found = role_id in held
            held.discard(role_id)
            return found


class FakeHandGrantStore:
    """In memory, the HandGrantStore contract (common/entitlements/manual_grants.py; its test_manual_grants.py)."""

    def __init__(self) -> None:
        self.grants: dict[str, HandGrant] = {}
        self.schedule: dict[Due, float] = {}

    def put(self, grant: HandGrant, now: float) -> HandGrant | None:
        old = self.grants.get(grant.grant_id)
        self.grants[grant.grant_id] = grant
        for changed in (old, grant):
            if changed is not None:
                self.schedule[Due.of("changed", changed)] = now
        if grant.until is not None:
            self.schedule[Due.of("expires", grant)] = grant.until
        return old

    def remove(self, grant_id: str, now: float) -> HandGrant | None:
        old = self.grants.pop(grant_id, None)
        if old is not None:
            self.schedule[Due.of("changed", old)] = now
        return old

    def get(self, grant_id: str) -> HandGrant | None:
        return self.grants.get(grant_id)

    def of_user(self, user_id: str) -> list[HandGrant]:
        return sorted((g for g in self.grants.values() if g.user_id == user_id), key=lambda g: g.grant_id)

    def listed(self, ending_before: float | None = None) -> list[HandGrant]:
        ends = {g.grant_id: g.until if g.until is not None else float("inf") for g in self.grants.values()}
        kept = [g for g in self.grants.values() if ending_before is None or ends[g.grant_id] <= ending_before]
        return sorted(kept, key=lambda g: (ends[g.grant_id], g.grant_id))

    def counts(self, ending_before: float) -> tuple[int, int]:
        return len(self.grants), len(self.listed(ending_before))

    def due(self, now: float) -> list[Due]:
        return sorted(d for d, when in self.schedule.items() if when <= now)

    def done(self, due: Due, now: float) -> bool:
        if self.schedule.get(due, float("inf")) > now:
            return False
        del self.schedule[due]
        return True
