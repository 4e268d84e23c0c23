"""1,000 random histories, delivered in random orders with duplicates and two racing threads.

Each history: a user signs up, then 2-4 plan changes or cancels, each firing 1-3 billing events
(cancelled / created / changed) of which some are delivered twice. Between state changes a random
subset of the events delivered so far is handled, by two threads at once; the rest after the
last change. The worker core runs for real (Redis generations, leases and links); only Kinde is
the recording fake. After every history the user's managed roles must be exactly the last plan's.
"""

from __future__ import annotations

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from common.errors import ContendedError
from tests.worker.conftest import World, build_world
from worker.events.handlers import handle_event

HISTORIES = 1_000
PLANS = ["plan_subscriber", "plan_client", None]
ROLE_OF = {"plan_subscriber": ["role_subscriber"], "plan_client": ["role_client"], None: []}
BILLING_TYPES = ["customer.agreement_cancelled", "customer.agreement_created", "customer.plan_changed"]


class History:
    def __init__(self, world: World, rng: random.Random, n: int) -> None:
        self.world, self.rng = world, rng
        self.user, self.customer = f"kp_h{n}", f"customer_h{n}"
        self.pending: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.counter = 0

    def emit(self, claims: dict[str, Any]) -> None:
        copies = 2 if self.rng.random() < 0.3 else 1
        self.pending.extend([claims] * copies)

    def event(self, type_: str) -> dict[str, Any]:
        self.counter += 1
        data = {"user": {"id": self.user}} if type_ == "user.created" else {"customer_id": self.customer}
        return {"type": type_, "event_id": f"ev_{self.customer}_{self.counter}", "data": data}

    def run(self) -> str | None:
        self.world.kinde.add_user(self.user, self.customer)
        self.emit(self.event("user.created"))
        plan: str | None = None
        for _ in range(self.rng.randint(2, 4)):
            plan = self.rng.choice([p for p in PLANS if p != plan])
            self.world.kinde.set_plan(self.customer, plan)
            for type_ in self.rng.sample(BILLING_TYPES, self.rng.randint(1, 3)):
                self.emit(self.event(type_))
            self.handle(self.rng.randint(0, len(self.pending)))
        while self.pending:
            self.handle(len(self.pending))
        return plan

    def handle(self, count: int) -> None:
        self.rng.shuffle(self.pending)
        batch, self.pending = self.pending[:count], self.pending[count:]
        with ThreadPoolExecutor(max_workers=2) as pool:
            waiting = [claims for claims in pool.map(self.deliver, batch) if claims is not None]
        self.pending.extend(waiting)  # back to the broker as a delayed retry: handled later

    def deliver(self, claims: dict[str, Any]) -> dict[str, Any] | None:
        """Handle one delivery; return it if it must come back later (lease held, link not known yet)."""
        try:
            handle_event(self.world.deps, claims, {"received_at": time.time()})
        except ContendedError:
            return claims
        return None


def test_every_ordering_ends_with_the_roles_of_the_last_plan(redis_url: str) -> None:
    world = build_world(redis_url, lease_poll_s=0.0)  # a held lease sends the event straight back
    rng = random.Random(20261122)
    wrong = []
    for n in range(HISTORIES):
        last_plan = History(world, rng, n).run()
        roles = world.kinde.role_keys("org_default", f"kp_h{n}")
        if roles != ROLE_OF[last_plan]:
            wrong.append((n, last_plan, roles))
    assert wrong == []
    assert world.kinde.calls.count("GET /roles") == 1  # role ids cached in Redis, read once


def test_a_duplicate_never_writes_twice(redis_url: str) -> None:
    world = build_world(redis_url)
    world.kinde.add_user("kp_d", "customer_d")
    handle_event(world.deps, {"type": "user.created", "event_id": "ev_u", "data": {"user": {"id": "kp_d"}}}, {})
    world.kinde.set_plan("customer_d", "plan_client")
    claims = {"type": "customer.plan_changed", "event_id": "ev_d", "data": {"customer_id": "customer_d"}}
    before = len(world.kinde.writes())

    def deliver(_: int) -> None:
        while True:
            try:
                handle_event(world.deps, claims, {"received_at": 0.0})
                return
            except ContendedError:
                time.sleep(0.001)

    with ThreadPoolExecutor(max_workers=3) as pool:
        list(pool.map(deliver, range(3)))
    assert world.kinde.writes()[before:] == ["POST org_default/kp_d r-cli"]
