"""One simulated Kinde business: roles, organizations, users, billing customers and agreements.

Pure in-memory state, mutated only from the event loop (no locks needed). Lookups raise
`ApiProblem` with Kinde's codes so the HTTP layer answers the way the Management API does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sandbox import ids
from sandbox.clock import now_iso, now_iso_seconds
from sandbox.model import Agreement, Customer, Org, OwnerKind, Role, User, Webhook
from sandbox.problems import ApiProblem, not_found

DEFAULT_ROLES = (("role_subscriber", "Subscriber"), ("role_client", "Client"), ("role_admin", "Admin"))
DEFAULT_ORG = "org_default"


@dataclass
class PlanChange:
    """What a plan change did, so the caller can announce it with webhooks."""

    customer: Customer
    created: Agreement | None
    cancelled: list[Agreement]
    was_subscribed: bool


@dataclass
class Tenant:
    roles: dict[str, Role] = field(default_factory=dict)
    orgs: dict[str, Org] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)
    customers: dict[str, Customer] = field(default_factory=dict)
    agreements: dict[str, Agreement] = field(default_factory=dict)
    assignments: dict[tuple[str, str], list[str]] = field(default_factory=dict)  # (org, user) -> role ids
    plans: dict[str, dict[str, int]] = field(default_factory=dict)  # plan code -> feature code -> limit
    webhooks: dict[str, Webhook] = field(default_factory=dict)

    @classmethod
    def initial(cls) -> Tenant:
        tenant = cls()
        for key, name in DEFAULT_ROLES:
            tenant.add_role(key, name)
        default = Org(code=DEFAULT_ORG, name="Default Organization", created_on=now_iso(), is_default=True)
        tenant.orgs[default.code] = default
        return tenant

    # --- roles ---
    def add_role(self, key: str, name: str) -> Role:
        role = Role(id=ids.opaque_id(), key=key, name=name)
        self.roles[role.id] = role
        return role

    def role(self, role_id: str) -> Role:
        if role_id not in self.roles:
            raise not_found("ROLE_NOT_FOUND", "Role")
        return self.roles[role_id]

    def role_by_key(self, key: str) -> Role:
        found = next((r for r in self.roles.values() if r.key == key), None)
        if found is None:
            raise not_found("ROLE_NOT_FOUND", "Role")
        return found

    # --- organizations and users ---
    def org(self, code: str) -> Org:
        if code not in self.orgs:
            raise not_found("ORGANIZATION_NOT_FOUND", "Organization")
        return self.orgs[code]

    def default_org(self) -> Org:
        return next(o for o in self.orgs.values() if o.is_default)

    def user(self, user_id: str) -> User:
        if user_id not in self.users:
            raise not_found("USER_NOT_FOUND", "User")
        return self.users[user_id]

    def create_org(self, name: str, *, with_customer: bool, code: str | None = None) -> Org:
        org = Org(code=code or ids.org_code(), name=name, created_on=now_iso())
        self.orgs[org.code] = org
        if with_customer:
            org.customer_id = self._new_customer("org", org.code).id
        return org

    def create_user(
        self, email: str | None, org_code: str | None, *, with_customer: bool, user_id: str | None = None
    ) -> User:
        org = self.org(org_code) if org_code else self.default_org()
        user_id = user_id or ids.user_id()
        user = User(id=user_id, email=email or f"{user_id}@example.test", created_on=now_iso())
        self.users[user.id] = user
        self.add_member(user.id, org.code)
        if with_customer:
            user.customer_id = self._new_customer("user", user.id).id
        return user

    def seed_many(self, *, users: int, orgs: int, plan: str | None = None, roles: Sequence[str] = ()) -> None:
        """A big tenant at once, without webhooks (load tests): orgs and default-org users, each with a customer;
        with `plan`, each customer already on it, and each user already holding the roles keyed `roles`."""
        role_ids = [self.role_by_key(key).id for key in roles]
        home = self.default_org().code
        for n in range(orgs):
            org = self.create_org(f"Bulk org {n}", with_customer=True)
            if plan:
                self._agree(str(org.customer_id), plan)
        for _ in range(users):
            user = self.create_user(None, None, with_customer=True)
            if plan:
                self._agree(str(user.customer_id), plan)
            self.assignments[(home, user.id)].extend(role_ids)

    def add_member(self, user_id: str, org_code: str) -> None:
        user, org = self.user(user_id), self.org(org_code)
        if org.code not in user.org_codes:
            user.org_codes.append(org.code)
        self.assignments.setdefault((org.code, user.id), [])

    def remove_member(self, user_id: str, org_code: str) -> None:
        user, org = self.user(user_id), self.org(org_code)
        if org.code in user.org_codes:
            user.org_codes.remove(org.code)
        self.assignments.pop((org.code, user.id), None)

    def delete_user(self, user_id: str) -> User:
        user = self.user(user_id)
        for code in list(user.org_codes):
            self.remove_member(user.id, code)
        del self.users[user.id]
        return user

    def delete_org(self, org_code: str) -> Org:
        """Kinde refuses to delete the default org; every membership (and its roles) goes with the org."""
        org = self.org(org_code)
        if org.is_default:
            raise ApiProblem(400, "DEFAULT_ORGANIZATION", "The default organization cannot be deleted")
        for user in self.members(org.code):
            self.remove_member(user.id, org.code)
        del self.orgs[org.code]
        return org

    def members(self, org_code: str) -> list[User]:
        org = self.org(org_code)
        return [u for u in self.users.values() if org.code in u.org_codes]

    # --- role assignments ---
    def _membership(self, org_code: str, user_id: str) -> list[str]:
        self.org(org_code)
        self.user(user_id)
        if (org_code, user_id) not in self.assignments:
            raise ApiProblem(400, "USER_NOT_IN_ORGANIZATION", "User is not a member of this organization")
        return self.assignments[(org_code, user_id)]

    def roles_of(self, org_code: str, user_id: str) -> list[Role]:
        return [self.roles[rid] for rid in self._membership(org_code, user_id) if rid in self.roles]

    def grant(self, org_code: str, user_id: str, role_id: str) -> None:
        held = self._membership(org_code, user_id)
        self.role(role_id)
        if role_id not in held:
            held.append(role_id)

    def revoke(self, org_code: str, user_id: str, role_id: str) -> None:
        held = self._membership(org_code, user_id)
        self.role(role_id)
        if role_id in held:
            held.remove(role_id)

    # --- billing ---
    def define_plan(self, code: str, features: dict[str, int]) -> None:
        self.plans[code] = dict(features)

    def _new_customer(self, kind: OwnerKind, owner_id: str) -> Customer:
        customer = Customer(id=ids.customer_id(), owner_kind=kind, owner_id=owner_id)
        self.customers[customer.id] = customer
        return customer

    def customer(self, customer_id: str) -> Customer:
        if customer_id not in self.customers:
            raise not_found("CUSTOMER_NOT_FOUND", "Customer")
        return self.customers[customer_id]

    def agreements_of(self, customer_id: str) -> list[Agreement]:
        self.customer(customer_id)
        return [a for a in self.agreements.values() if a.customer_id == customer_id]

    def active_agreements(self, customer_id: str) -> list[Agreement]:
        return [a for a in self.agreements_of(customer_id) if a.active]

    def change_plan(self, customer_id: str, plan_code: str) -> PlanChange:
        """A new agreement on `plan_code`; every active one is cancelled (Kinde's POST /billing/agreements)."""
        cancelled = self.cancel(customer_id).cancelled
        agreement = self._agree(customer_id, plan_code)
        return PlanChange(self.customer(customer_id), agreement, cancelled, was_subscribed=bool(cancelled))

    def _agree(self, customer_id: str, plan_code: str) -> Agreement:
        agreement = Agreement(
            id=ids.agreement_id(),
            customer_id=customer_id,
            plan_code=plan_code,
            created_on=now_iso_seconds(),
            billing_group_id=ids.new_id("sbg"),
        )
        self.agreements[agreement.id] = agreement
        return agreement

    def cancel(self, customer_id: str) -> PlanChange:
        cancelled = self.active_agreements(customer_id)
        for agreement in cancelled:
            agreement.expires_on = now_iso_seconds()
        return PlanChange(self.customer(customer_id), None, cancelled, was_subscribed=bool(cancelled))

    # --- webhooks registered through the Management API ---
    def webhook(self, webhook_id: str) -> Webhook:
        if webhook_id not in self.webhooks:
            raise not_found("WEBHOOK_NOT_FOUND", "Webhook")
        return self.webhooks[webhook_id]

    def endpoints_for(self, event_type: str) -> list[str]:
        return [w.endpoint for w in self.webhooks.values() if event_type in w.event_types]
