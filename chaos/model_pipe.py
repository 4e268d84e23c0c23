"""The long-lived pipe the model test drives, and what it needs between and after sequences.

One pipe (launch/pipe.py: Valkey, sandbox, ingest, worker launchers, with the entitlements table and
the app notifications on: chaos/model_sinks.py) serves every sequence of a run: starting processes
costs seconds, a sequence should cost about one. Between sequences the sandbox tenant is reset, our
Redis flushed, the table emptied and the captured notifications dropped. Quiescence means the sandbox
has delivered everything, no message (notifications included) is waiting, in flight, or delayed but
due soon (parked re-checks wait minutes; they are not waited for, as nothing would come of waiting),
and the table has every change.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import redis
from starlette.applications import Starlette

from api.app import create_app
from chaos.model_sinks import Sinks, model_sinks
from chaos.suites import FAST_RECOVERY, suite_pipe
from common import keys
from common.infra.deadletters import FORBIDDEN
from common.messages import NOTIFY_QUEUE, PASS_QUEUES, REBUILD_QUEUE
from common.settings import Settings
from common.table.table_outbox import TableOutbox
from launch.pipe import Pipe, running_pipe
from ops import customers, dlq
from ops.enqueue import converge_enqueuer, event_enqueuer
from ops.stores import Stores, open_stores
from sandbox.client import SandboxClient
from sandbox.tokens import ALL_SCOPES
from worker.customers.park import Enqueue
from worker.runtime.broker import build_broker
from worker.sweeps.reconcile import Fleet, Summary, sweep
from worker.sweeps.reconcile_schedule import build_fleet

# Past 5 billing events in 10 s, a customer with plans is routed bulk: random sequences take the bulk path
# too, and a regression burst (chaos/model_regressions.py) is bulk from its 6th event whenever its window began.
BULK_BURST = 5
# Seconds, not the production minute: a killed worker's lease and messages must come back within a sequence.
# Retries back off up to 2 s (not 30 min) so a healed Kinde is retried at once; the sandbox is unlimited
# unless a sequence throttles it, so the worker's own rate limit is not what is measured.
MODEL_ENV = {**FAST_RECOVERY, "KINDE_API_RPS": "200", "ROLESYNC_MAX_BACKOFF_MS": "2000",
             "ROLESYNC_SCOPE_PROBE_INTERVAL_S": "1", "ROLESYNC_BULK_BURST": str(BULK_BURST)}  # fmt: skip
FORBIDDEN_WAIT_S = 60.0
QUIET_POLLS = 4  # consecutive idle polls, 50 ms apart: a worker between two steps of a pass is not idle for 200 ms
DUE_SOON_S = 30.0
API_KEY = secrets.token_urlsafe(32)  # the read API refuses weak keys; the oracle holds the only copy
WORKERS, THREADS = 2, 4


class NotQuietError(AssertionError):
    """The pipe did not settle in time: itself a finding (a stuck retry, a lost lease)."""


@dataclass
class ModelPipe:
    pipe: Pipe
    settings: Settings
    stores: Stores
    enqueue: Enqueue
    fleet: Fleet
    sinks: Sinks

    @property
    def kinde(self) -> SandboxClient:
        return self.pipe.kinde

    @property
    def redis(self) -> redis.Redis:
        return self.stores.redis

    # --- quiescence ---
    def idle(self) -> bool:
        """Nothing to deliver, queued, in flight or due soon, and the table has every change.

        An index rebuild (organization.deleted asks for one) queues passes; a notification is sent off the pass.
        """
        queues = (*PASS_QUEUES, REBUILD_QUEUE, NOTIFY_QUEUE)
        return (self.kinde.pending_deliveries() == 0 and all(self._queue_idle(q) for q in queues)
                and TableOutbox(self.redis).lag(time.time()).pending == 0)  # fmt: skip

    def _queue_idle(self, queue: str) -> bool:
        if self.redis.llen(keys.queue_list(queue)) or self._in_flight(queue):
            return False
        horizon_ms = (time.time() + DUE_SOON_S) * 1000
        delayed = self.redis.hvals(keys.delay_queue_messages(queue))
        return not any(json.loads(raw)["options"].get("eta", 0) < horizon_ms for raw in delayed)

    def _in_flight(self, queue: str) -> int:
        sets = self.redis.scan_iter(match=keys.ack_sets_pattern(queue), count=500)
        return sum(int(self.redis.scard(name)) for name in sets)

    def wait_quiet(self, timeout_s: float = 60.0) -> float:
        """Seconds it took to settle; NotQuietError after `timeout_s`."""
        started, quiet = time.monotonic(), 0
        while quiet < QUIET_POLLS:
            if time.monotonic() - started > timeout_s:
                raise NotQuietError(f"the pipe did not settle within {timeout_s:.0f} s")
            quiet = quiet + 1 if self.idle() else 0
            time.sleep(0.05)
        return time.monotonic() - started

    # --- between sequences ---
    def heal(self) -> None:
        """Kinde answers everything again and deliveries flow in order, once each."""
        self.kinde.clear_faults()
        self.kinde.set_scopes(list(ALL_SCOPES))
        self.kinde.set_rate_limit(0)
        self.normal_delivery()

    def normal_delivery(self) -> None:
        self.kinde.set_webhooks(url=self.pipe.webhook_url, variant="mix", shuffle=False, duplicate_rate=0.0,
                                drop_rate=0.0, delay_ms=0, paused=False, lose_rate=0.0)  # fmt: skip

    def reset(self) -> None:
        self.heal()
        self.wait_quiet()
        self.kinde.reset()
        wipe_keeping_epoch(self.redis)
        self.sinks.clear()

    # --- on-call's tools ---
    def link_by_hand(self, customer_id: str, user_id: str | None, org_code: str | None) -> None:
        """`rolesync customers link` (ops/customers.py) in this process: no interpreter start per step."""
        customers.link(self.stores, self.enqueue, converge_enqueuer(self.fleet.broker), customer_id, user_id, org_code)

    def wait_forbidden_replayed(self) -> None:
        """After the scope is granted again nothing is done by hand (docs/on-call.md, `kinde_forbidden`):
        the workers' probe replays the held events. Wait until none is held."""
        deadline = time.monotonic() + FORBIDDEN_WAIT_S
        while dlq.select(self.stores.dead_letters, dlq.Filters(reason=FORBIDDEN)):
            if time.monotonic() > deadline:
                raise NotQuietError("events held as kinde_forbidden were not replayed by the scope probe")
            time.sleep(0.25)

    def wait_delivered(self, timeout_s: float = 30.0) -> None:
        """Wait until the sandbox has delivered every webhook (each queued by the ingest, not yet handled)."""
        deadline = time.monotonic() + timeout_s
        while self.kinde.pending_deliveries():
            if time.monotonic() > deadline:
                raise NotQuietError(f"the sandbox did not deliver its webhooks within {timeout_s:.0f} s")
            time.sleep(0.02)

    def wait_held(self, timeout_s: float = 10.0) -> None:
        """Wait until some event or pass is held as `kinde_forbidden` (a scope withdrawn under it)."""
        deadline = time.monotonic() + timeout_s
        while not dlq.select(self.stores.dead_letters, dlq.Filters(reason=FORBIDDEN)):
            if time.monotonic() > deadline:
                raise NotQuietError(f"nothing was held as kinde_forbidden within {timeout_s:.0f} s")
            time.sleep(0.05)

    def reconcile(self) -> Summary:
        """`rolesync reconcile`: discover, a pass per customer on the fleet, watched to the end."""
        return sweep(self.fleet, source="model", timeout_s=60.0)

    # --- the read API ---
    def read_api(self, user_ids: list[str]) -> dict[str, tuple[int, dict[str, Any]]]:
        """`GET /v1/users/{id}/entitlements` per user: (status, body). The API's own app (api/app.py) served
        in this process over our Redis: the answer `rolesync api` gives, without a process per run."""
        settings = Settings.from_env({**self.pipe.env, "ROLESYNC_API_KEYS": f"model:{API_KEY}"})
        return asyncio.run(_read_api(create_app(settings), user_ids))

    def restart_worker(self, slot: int) -> None:
        """SIGKILL a worker launcher and start it again, as a supervisor restarts a crashed pod."""
        self.pipe.kill_worker(slot)
        self.pipe.start_worker(slot)


async def _read_api(app: Starlette, user_ids: list[str]) -> dict[str, tuple[int, dict[str, Any]]]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        headers = {"Authorization": f"Bearer {API_KEY}"}
        async with httpx.AsyncClient(transport=transport, base_url="http://api", headers=headers) as client:
            answers = {u: await client.get(f"/v1/users/{u}/entitlements") for u in user_ids}
    return {u: (r.status_code, r.json()) for u, r in answers.items()}


@contextmanager
def model_pipe(log_dir: Path) -> Iterator[ModelPipe]:
    with (
        model_sinks() as sinks,
        running_pipe(log_dir, suite_pipe(workers=WORKERS, threads=THREADS, env={**MODEL_ENV, **sinks.env()})) as pipe,
    ):
        settings = Settings.from_env(pipe.env)
        stores = open_stores(settings)
        enqueue, fleet = event_enqueuer(build_broker(settings)), build_fleet(settings)
        model = ModelPipe(pipe, settings, stores, enqueue, fleet, sinks)
        model.normal_delivery()
        yield model


def wipe_keeping_epoch(client: redis.Redis) -> None:
    """Empty the database between sequences but keep its epoch: a planned reset, not a loss for the running
    processes to heal (common/infra/data_epoch.py) behind the next sequence's back."""
    doomed = [key for key in client.scan_iter(count=1000) if _text(key) != keys.DATA_EPOCH]
    for start in range(0, len(doomed), 1000):
        client.delete(*doomed[start : start + 1000])


def _text(key: str | bytes) -> str:
    return key.decode() if isinstance(key, bytes) else key
