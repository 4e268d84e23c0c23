"""Everything one running sandbox holds, and the act of announcing events as signed webhooks."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request

from sandbox import snapshot
from sandbox.config import SandboxConfig
from sandbox.delivery import Deliverer, WebhookSettings
from sandbox.events import Event, VariantPicker, envelope
from sandbox.faults import FaultPlan
from sandbox.plan_hook import PlanSelectionHook
from sandbox.scenario import Scenario, load_scenario, seed_tenant
from sandbox.signing import KeyRing
from sandbox.tenant import Tenant
from sandbox.tokens import ALL_SCOPES, TokenIssuer


@dataclass
class Switches:
    """Tenant quirks seen in the wild, on demand."""

    users_billing_expand: bool = True  # False: GET /users?expand=billing -> 400 INVALID_EXPAND_VALUES
    # Kinde's spec answers a bad token 403 INVALID_CREDENTIALS; tenants answer 401 in practice.
    invalid_token_status: int = 401
    orgs_billing_expand: bool = False  # True: GET /organizations?expand=billing lists each org's billing


@dataclass
class Sandbox:
    config: SandboxConfig
    scenario: Scenario
    keys: KeyRing
    tokens: TokenIssuer
    deliverer: Deliverer
    picker: VariantPicker
    faults: FaultPlan
    tenant: Tenant = field(default_factory=Tenant.initial)
    switches: Switches = field(default_factory=Switches)
    calls: list[dict[str, Any]] = field(default_factory=list)
    # The tenant's deployed plan-selection workflow; like webhook settings it survives reset().
    plan_hook: PlanSelectionHook | None = None

    @classmethod
    def build(cls, config: SandboxConfig) -> Sandbox:
        keys = KeyRing()
        tokens = TokenIssuer(keys, issuer=config.base_url, audience=config.audience, lifetime_s=config.token_lifetime_s)
        deliverer = Deliverer(
            WebhookSettings(url=config.webhook_url, variant=config.variant),
            keys.sign,
            time_scale=config.time_scale,
            timeout_s=config.delivery_timeout_s,
            rng=random.Random(config.random_seed),
        )
        picker = VariantPicker(config.variant, random.Random(config.random_seed))
        faults = FaultPlan(rng=random.Random(config.random_seed))
        sandbox = cls(config, load_scenario(config.seed_file), keys, tokens, deliverer, picker, faults)
        sandbox.reset()
        restored = snapshot.load(config.snapshot_file) if config.snapshot_file else None
        sandbox.tenant = restored or sandbox.tenant
        return sandbox

    def reset(self) -> None:
        """The starting tenant (seeded), faults, limits and switches; empty logs, zeroed counters.

        Signing keys, issued tokens and webhook settings survive, as they would on a real tenant.
        """
        self.tenant = Tenant.initial()
        seed_tenant(self.tenant, self.scenario)
        self.faults.rules = dict(self.scenario.faults)
        self.faults.bucket.configure(
            self.config.rate_limit or self.scenario.rate, self.config.rate_burst or self.scenario.burst
        )
        scenario = self.scenario
        self.switches = Switches(
            users_billing_expand=scenario.users_billing_expand, orgs_billing_expand=scenario.orgs_billing_expand
        )
        self.tokens.granted_scopes = self.scenario.scopes if self.scenario.scopes is not None else ALL_SCOPES
        self.calls.clear()
        self.deliverer.clear()
        self.tokens.issued = 0

    def save_snapshot(self) -> None:
        if self.config.snapshot_file:
            snapshot.save(self.tenant, self.config.snapshot_file)

    def announce(self, events: list[Event]) -> list[dict[str, str | None]]:
        return [self.send(event_type, data) for event_type, data in events]

    def send(
        self, event_type: str, data: dict[str, Any], *, event_id: str | None = None, timestamp: str | None = None
    ) -> dict[str, str | None]:
        claims = envelope(event_type, data, event_id=event_id, timestamp=timestamp)
        extra = self.tenant.endpoints_for(event_type)
        webhook_id = self.deliverer.submit(claims, extra)
        return {"event_id": claims["event_id"], "webhook_id": webhook_id}


def sandbox_of(request: Request) -> Sandbox:
    found: Sandbox = request.app.state.sandbox
    return found
